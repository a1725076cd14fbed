"""Admin tab: the documents of a collection; remove one, or sync a folder (dropping files that are gone)."""

from __future__ import annotations

from typing import Any

import gradio as gr

from ui.admin_tab import AdminTab
from ui.errors import shows_errors
from ui.render import table_html


class DocumentsTab(AdminTab):
    """List, remove and sync documents."""

    def build(self) -> None:
        """Lay out the tab."""
        with gr.Tab("Documents", id="documents") as self.tab:
            gr.Markdown("### Documents of a collection")
            with gr.Row():
                self.collection = gr.Dropdown(label="Collection", choices=[], elem_id="docs-collection")
                self.refresh = gr.Button("Refresh", size="sm", elem_id="docs-refresh")
            self.table = gr.HTML(js_on_load=None, elem_id="docs-table")
            gr.Markdown("### Remove a document")
            with gr.Row():
                self.document_id = gr.Number(label="Document id", precision=0, elem_id="doc-id")
                self.remove = gr.Button("Remove document", variant="stop", elem_id="doc-remove")
            gr.Markdown("### Sync a folder (drop documents whose files are gone)")
            with gr.Row():
                self.root = gr.Dropdown(label="Folder to sync", choices=[], elem_id="sync-root")
                self.sync = gr.Button("Sync folder", elem_id="sync-start")

    def wire(self, blocks: gr.Blocks) -> None:
        """Connect the tab's events."""
        blocks.load(self._collections, outputs=[self.collection])
        listing = [self.table, self.root]
        self.collection.change(self._list, inputs=[self.collection], outputs=listing)
        self.refresh.click(self._list, inputs=[self.collection], outputs=listing)
        self.tab.select(self._list, inputs=[self.collection], outputs=listing)
        self.remove.click(self._remove, inputs=[self.document_id, self.collection], outputs=listing)
        self.sync.click(self._sync, inputs=[self.root, self.collection])

    @shows_errors
    def _collections(self, request: gr.Request) -> Any:
        names = self.web.access.readable(self.session.principal(request))
        return gr.update(choices=names, value=names[0] if names else None)

    @shows_errors
    def _list(self, collection: str | None, request: gr.Request) -> tuple[str, Any]:
        documents = self.web.library.documents(self.session.principal(request), collection) if collection else []
        rows = [{"id": d.id, "path": d.path, "pages": d.page_count, "chunks": d.chunk_count, "folder": d.root,
                 "ingested": d.ingested_at} for d in documents]
        roots = sorted({d.root for d in documents})
        return (table_html(rows, ["id", "path", "pages", "chunks", "folder", "ingested"]),
                gr.update(choices=roots, value=roots[0] if roots else None))

    @shows_errors
    def _remove(self, document_id: float | None, collection: str | None, request: gr.Request) -> tuple[str, Any]:
        if document_id is None:
            raise gr.Error("type the id of the document to remove")
        path = self.web.library.remove(self.session.principal(request), int(document_id))
        gr.Info(f"Removed {path} (document {int(document_id)}) from {collection}")
        return self._list(collection, request)

    @shows_errors
    def _sync(self, root: str | None, collection: str | None, request: gr.Request) -> None:
        if not root or not collection:
            raise gr.Error("choose a collection and a folder")
        job = self.web.jobs.start_folder(self.session.principal(request), root, collection, sync=True)
        gr.Info(f"Started syncing {root} into {collection} as job {job}: follow it on the Ingest tab")
