"""Admin tab: the folders admins may ingest from; ingest one, or uploaded files, into a collection; live progress."""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

import gradio as gr

from assistant.jobs import UploadResult
from ui.admin_tab import AdminTab
from ui.errors import shows_errors
from ui.job_progress import job_html
from ui.payloads import uploaded_file
from ui.render import text_html


class IngestTab(AdminTab):
    """Start ingest jobs and watch them; jobs run in the background while everyone keeps chatting."""

    def build(self) -> None:
        """Lay out the tab (inside the admin page's Tabs)."""
        with gr.Tab("Ingest", id="ingest"):
            gr.Markdown("### Folders admins may ingest from")
            self.roots = gr.HTML(js_on_load=None, elem_id="ingest-roots")
            with gr.Row(equal_height=True):
                self.root_path = gr.Textbox(label="Folder on the server to add or remove", scale=4,
                                            placeholder="/srv/shares/hr", elem_id="root-path")
                self.add_root = gr.Button("Add folder", scale=1, elem_id="root-add")
                self.remove_root = gr.Button("Remove folder", variant="stop", scale=1, elem_id="root-remove")
            gr.Markdown("### Ingest into a collection")
            self.collection = gr.Dropdown(label="Collection", choices=[], value=None, allow_custom_value=True,
                                          info="Pick one, or type a new name", elem_id="ingest-collection")
            with gr.Row():
                self.folder = gr.Textbox(label="Folder on the server", scale=4, elem_id="ingest-folder")
                self.sync = gr.Checkbox(label="Remove documents whose files are gone", scale=1, elem_id="ingest-sync")
            self.start_folder = gr.Button("Ingest folder", variant="primary", elem_id="ingest-start")
            with gr.Row():
                self.uploads = gr.File(label="Or upload files", file_count="multiple", elem_id="ingest-upload", scale=3)
                self.formats = gr.HTML(js_on_load=None, elem_id="upload-formats")
            self.start_upload = gr.Button("Upload and ingest", elem_id="upload-start")
            self.upload_result = gr.HTML(js_on_load=None, elem_id="upload-result")
            gr.Markdown("### Progress")
            self.progress = gr.HTML(js_on_load=None, elem_id="ingest-progress")
            self.timer = gr.Timer(1.0, active=True)

    def wire(self, blocks: gr.Blocks) -> None:
        """Connect the tab's events."""
        blocks.load(self._load, outputs=[self.roots, self.collection, self.formats])
        self.add_root.click(self._add_root, inputs=[self.root_path], outputs=[self.roots, self.root_path])
        self.remove_root.click(self._remove_root, inputs=[self.root_path], outputs=[self.roots, self.root_path])
        self.start_folder.click(self._start_folder, inputs=[self.folder, self.collection, self.sync],
                                outputs=[self.progress])
        self.start_upload.click(self._start_upload, inputs=[self.uploads, self.collection],
                                outputs=[self.progress, self.uploads, self.upload_result])
        self.timer.tick(self._progress, outputs=[self.progress], show_progress="hidden")

    @shows_errors
    def _load(self, request: gr.Request) -> tuple[str, Any, str]:
        principal = self.session.principal(request)
        names = self.web.access.readable(principal)
        # Choices only: no collection is picked for the admin, and a name typed while the page loads stays.
        return self._roots_html(request), gr.update(choices=names), formats_html(self.web.jobs.accepted_formats())

    @shows_errors
    def _add_root(self, folder: str, request: gr.Request) -> tuple[str, str]:
        path = self.web.roots.add(self.session.principal(request), folder or "")
        gr.Info(f"Added {path}: admins may ingest from it and its subfolders now, in every app process.")
        return self._roots_html(request), ""

    @shows_errors
    def _remove_root(self, folder: str, request: gr.Request) -> tuple[str, str]:
        path = self.web.roots.remove(self.session.principal(request), folder or "")
        gr.Info(f"Removed {path}: admins may no longer ingest from it; its documents stay.")
        return self._roots_html(request), ""

    def _roots_html(self, request: gr.Request) -> str:
        roots = self.web.roots.folders(self.session.principal(request))
        if not roots:
            return ("<p>Admins may ingest from no server folder yet: add one below (uploads work without one).</p>")
        items = "".join(f"<li><code>{text_html(root)}</code></li>" for root in roots)
        return f"<p>Admins may ingest from these server folders and their subfolders:</p><ul>{items}</ul>"

    @shows_errors
    def _start_folder(self, folder: str, collection: str, sync: bool, request: gr.Request) -> str:
        job = self.web.jobs.start_folder(self.session.principal(request), folder, collection or "", sync)
        gr.Info(f"Started job {job}: ingesting {folder.strip()} into {collection.strip()}")
        return self._progress(request)

    @shows_errors
    def _start_upload(self, files: list[str] | None, collection: str, request: gr.Request) -> tuple[str, None, str]:
        # Only Gradio's own uploads: a forged path is neither ingested nor deleted below.
        paths = [(uploaded_file(f, self.uploads.GRADIO_CACHE), Path(f).name) for f in files or []]
        try:
            result = self.web.jobs.start_upload(self.session.principal(request), paths, collection or "")
        finally:
            for tmp, _ in paths:  # Gradio's copy is not kept: the good files were copied to the collection
                tmp.unlink(missing_ok=True)
        return self._progress(request), None, upload_html(result)

    @shows_errors
    def _progress(self, request: gr.Request) -> str:
        jobs = self.web.jobs.jobs(self.session.principal(request), limit=5)  # from the database: any worker's
        return "".join(job_html(j) for j in jobs) or "<p>No ingest jobs yet.</p>"


def formats_html(formats: list[tuple[str, tuple[str, ...]]]) -> str:
    """The accepted formats, shown beside the upload box."""
    items = "".join(f"<li><b>{escape(name)}</b> {escape(' '.join(suffixes))}</li>" for name, suffixes in formats)
    return f'<p>Accepted formats:</p><ul class="formats">{items}</ul>'


def upload_html(result: UploadResult) -> str:
    """What an upload kept, and each refused file with its reason."""
    kept = (f"<p>{len(result.stored)} file(s) queued for ingestion as job {result.job_id}.</p>" if result.stored
            else "<p>No file was kept.</p>")
    refused = "".join(f"<li><b>{escape(name)}</b>: {escape(reason)}</li>" for name, reason in result.refused)
    return kept + (f'<p class="failed">Not uploaded ({len(result.refused)}):</p><ul class="refused">{refused}</ul>'
                   if refused else "")
