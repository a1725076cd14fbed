"""Admin tab: corpus status, recent ingest jobs with failures, the audit log and answer feedback."""

from __future__ import annotations

import gradio as gr

from assistant.audit_events import EVENT_TYPES
from ui.admin_tab import AdminTab
from ui.errors import shows_errors
from ui.render import table_html, text_html


class ActivityTab(AdminTab):
    """What is in the corpus and what happened, read-only."""

    def build(self) -> None:
        """Lay out the tab."""
        with gr.Tab("Status and audit", id="activity") as self.tab:
            self.refresh = gr.Button("Refresh", size="sm", elem_id="activity-refresh")
            self.status = gr.HTML(js_on_load=None, elem_id="corpus-status")
            self.action = gr.Dropdown(label="Audit events", allow_custom_value=True, value="", elem_id="audit-action",
                                      choices=["", *sorted(EVENT_TYPES)])  # every kind the app records
            self.audit = gr.HTML(js_on_load=None, elem_id="audit-log")
            self.feedback = gr.HTML(js_on_load=None, elem_id="feedback-log")

    def wire(self, blocks: gr.Blocks) -> None:
        """Connect the tab's events."""
        outputs = [self.status, self.audit, self.feedback]
        blocks.load(self._show, inputs=[self.action], outputs=outputs)
        self.refresh.click(self._show, inputs=[self.action], outputs=outputs)
        self.tab.select(self._show, inputs=[self.action], outputs=outputs)
        self.action.change(self._show, inputs=[self.action], outputs=outputs)

    @shows_errors
    def _show(self, action: str | None, request: gr.Request) -> tuple[str, str, str]:
        principal = self.session.principal(request)
        status = self.web.library.status(principal)
        jobs = self.web.jobs.jobs(principal, 10, include_command_line=True)
        totals = (f"<p>{status['documents']} documents, {status['chunks']} chunks, index "
                  f"{status['index_bytes'] / 2**20:.1f} MB, embedding model {text_html(str(status['embedding_model']))}"
                  f"; answers by {text_html(self.web.runtime.model_label())}</p>")
        rows = [{"id": j.id, "collection": j.collection, "root": j.source, "status": j.state, "started": j.started,
                 "finished": j.finished, "failures": len(j.failures)} for j in jobs]
        failures = [{"job": j.id, "file": f.path, "reason": f.reason} for j in jobs for f in j.failures]
        audit = [entry.as_row() for entry in self.web.audit.events(principal, 200, action or None)]
        feedback = self.web.chats.feedback_log(principal, 50)
        return (
            totals + table_html(status["collections"], ["name", "documents", "pages", "chunks"])
            + "<h4>Recent ingest jobs</h4>"
            + table_html(rows, ["id", "collection", "root", "status", "started", "finished", "failures"])
            + table_html(failures, ["job", "file", "reason"]),
            "<h4>Audit log</h4>" + table_html(audit, ["at", "user", "action", "target", "detail"]),
            "<h4>Feedback</h4>" + table_html(feedback, ["at", "helpful", "comment", "question", "answer", "backend"]),
        )
