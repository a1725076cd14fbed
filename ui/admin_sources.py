"""Admin tab: sources, folders kept in step with a collection; add them, run, pause, confirm held removals, history."""

from __future__ import annotations

from typing import Any

import gradio as gr

from assistant.sources import Source, SourceRun
from ui.admin_tab import AdminTab
from ui.errors import shows_errors
from ui.render import table_html, text_html

COUNTS = ("added", "updated", "renamed", "removed", "unchanged", "failed")


def _patterns(text: str) -> list[str]:
    return [p.strip() for p in text.replace("\n", ",").split(",") if p.strip()]


def _state(source: Source) -> str:
    if source.running:
        return "running"
    if source.queued:
        return "run queued"
    return "on" if source.enabled else "paused"


def sources_html(sources: list[Source]) -> str:
    """The sources, with a held source's reason in its own line where no admin can miss it."""
    if not sources:
        return "<p>No sources yet: add a folder below to keep a collection in step with it.</p>"
    rows = [{"source": s.name, "folder": s.folder, "collection": s.collection, "schedule": s.schedule,
             "state": _state(s), "last run": _summary(s.last_run)} for s in sources]
    held = "".join(f'<p class="held"><strong>{text_html(s.name)} is held:</strong> {text_html(s.held)}. Nothing was '
                   "removed; confirm its removals once the folder is as it should be.</p>"
                   for s in sources if s.held)
    return held + table_html(rows, ["source", "folder", "collection", "schedule", "state", "last run"])


def _summary(run: SourceRun | None) -> str:
    if run is None:
        return "never run"
    return f"{run.state}: " + ", ".join(f"{run.counts.get(c, 0)} {c}" for c in COUNTS)


def history_html(runs: list[SourceRun]) -> str:
    """A source's runs, newest first, then each run's failed files with their reasons."""
    if not runs:
        return "<p>No runs yet.</p>"
    rows = [{"job": r.job, "trigger": r.trigger, "state": r.state, "started": r.started, "finished": r.finished,
             **{c: r.counts.get(c, 0) for c in COUNTS},
             "phases (s)": ", ".join(f"{k} {v:.1f}" for k, v in r.phases.items()), "reason": r.reason} for r in runs]
    failures = [{"job": r.job, "file": f.path, "reason": f.reason} for r in runs for f in r.failures]
    shown = table_html(rows, ["job", "trigger", "state", "started", "finished", *COUNTS, "phases (s)", "reason"])
    if failures:
        shown += "<h4>Failed files</h4>" + table_html(failures, ["job", "file", "reason"])
    return shown


class SourcesTab(AdminTab):
    """Register folders to follow and watch them stay in step."""

    def build(self) -> None:
        """Lay out the tab."""
        with gr.Tab("Sources", id="sources") as self.tab:
            self.listing = gr.HTML(js_on_load=None, elem_id="sources-table")
            with gr.Row():
                self.chosen = gr.Dropdown(label="Source", choices=[], value=None, elem_id="sources-chosen")
                self.sync = gr.Button("Sync now", elem_id="sources-sync")
                self.confirm = gr.Button("Confirm removals", variant="stop", elem_id="sources-confirm")
                self.pause = gr.Button("Pause", size="sm", elem_id="sources-pause")
                self.resume = gr.Button("Resume", size="sm", elem_id="sources-resume")
                self.remove = gr.Button("Remove", size="sm", variant="stop", elem_id="sources-remove")
            self.history = gr.HTML(js_on_load=None, elem_id="sources-history")
            with gr.Accordion("Add a source", open=False):
                with gr.Row():
                    self.name = gr.Textbox(label="Name", elem_id="source-name")
                    self.folder = gr.Textbox(label="Folder on the server", scale=3, elem_id="source-folder")
                    self.collection = gr.Dropdown(label="Collection", choices=[], allow_custom_value=True,
                                                  elem_id="source-collection")
                with gr.Row():
                    self.schedule = gr.Textbox(label="Schedule", placeholder="every 1h, or a cron expression in UTC",
                                               elem_id="source-schedule")
                    self.include = gr.Textbox(label="Only files matching", placeholder="*.pdf, policies/*",
                                              elem_id="source-include")
                    self.exclude = gr.Textbox(label="Leave out", placeholder="drafts, *.bak", elem_id="source-exclude")
                with gr.Row():
                    self.max_file_mb = gr.Number(label="Largest file (MB; empty: ingest.max_file_mb)", value=None,
                                                 elem_id="source-max-mb")
                    self.max_share = gr.Number(label="Hold a run removing more than this share", value=0.2,
                                               minimum=0, maximum=1, step=0.05, elem_id="source-max-share")
                self.add = gr.Button("Add source", variant="primary", elem_id="source-add")
            self.timer = gr.Timer(2.0, active=True)

    def wire(self, blocks: gr.Blocks) -> None:
        """Connect the tab's events."""
        shown = [self.listing, self.chosen, self.history]
        blocks.load(self._load, inputs=[self.chosen], outputs=[*shown, self.collection])
        self.tab.select(self._show, inputs=[self.chosen], outputs=shown)
        self.timer.tick(self._show, inputs=[self.chosen], outputs=shown, show_progress="hidden")
        self.chosen.change(self._show, inputs=[self.chosen], outputs=shown)
        form = [self.name, self.folder, self.collection, self.schedule, self.include, self.exclude, self.max_file_mb,
                self.max_share]
        self.add.click(self._add, inputs=form, outputs=shown)
        for button, action in ((self.sync, self._sync), (self.confirm, self._confirm), (self.pause, self._pause),
                               (self.resume, self._resume), (self.remove, self._remove)):
            button.click(action, inputs=[self.chosen], outputs=shown)

    @shows_errors
    def _load(self, chosen: str | None, request: gr.Request) -> tuple[Any, ...]:
        names = self.web.access.readable(self.session.principal(request))
        return (*self._show(chosen, request), gr.update(choices=names))

    @shows_errors
    def _show(self, chosen: str | None, request: gr.Request) -> tuple[str, Any, str]:
        principal = self.session.principal(request)
        sources = self.web.sources.sources(principal)
        names = [s.name for s in sources]
        chosen = chosen if chosen in names else (names[0] if names else None)
        history = history_html(self.web.sources.runs(principal, chosen)) if chosen else ""
        return sources_html(sources), gr.update(choices=names, value=chosen), history

    @shows_errors
    def _add(self, name: str, folder: str, collection: str | None, schedule: str, include: str, exclude: str,
             max_file_mb: float | None, max_share: float | None, request: gr.Request) -> tuple[str, Any, str]:
        added = self.web.sources.add(self.session.principal(request), name, folder, collection or "",
                                     schedule.strip() or None, _patterns(include), _patterns(exclude),
                                     max_file_mb or None, max_share)
        gr.Info(f"{added.name} added; its first run is queued.")
        return self._show(added.name, request)

    def _chosen(self, chosen: str | None) -> str:
        if not chosen:
            raise gr.Error("choose a source")
        return chosen

    @shows_errors
    def _sync(self, chosen: str | None, request: gr.Request) -> tuple[str, Any, str]:
        job, new = self.web.sources.sync(self.session.principal(request), self._chosen(chosen))
        gr.Info(f"Run queued as job {job}." if new else f"A run is queued already (job {job}).")
        return self._show(chosen, request)

    @shows_errors
    def _confirm(self, chosen: str | None, request: gr.Request) -> tuple[str, Any, str]:
        job = self.web.sources.confirm(self.session.principal(request), self._chosen(chosen))
        gr.Info(f"Confirmed: job {job} removes the documents whose files are gone.")
        return self._show(chosen, request)

    @shows_errors
    def _pause(self, chosen: str | None, request: gr.Request) -> tuple[str, Any, str]:
        self.web.sources.set_enabled(self.session.principal(request), self._chosen(chosen), False)
        return self._show(chosen, request)

    @shows_errors
    def _resume(self, chosen: str | None, request: gr.Request) -> tuple[str, Any, str]:
        self.web.sources.set_enabled(self.session.principal(request), self._chosen(chosen), True)
        return self._show(chosen, request)

    @shows_errors
    def _remove(self, chosen: str | None, request: gr.Request) -> tuple[str, Any, str]:
        self.web.sources.remove(self.session.principal(request), self._chosen(chosen))
        gr.Info(f"{chosen} removed; its documents stay in their collection.")
        return self._show(None, request)
