"""Admin tab: how questions fare, the ones the documents failed, the answers admins expect, and their export."""

from __future__ import annotations

from typing import Any

import gradio as gr

from assistant.quality import CollectionFigures, ProblemQuestion
from ui.admin_tab import AdminTab
from ui.errors import shows_errors
from ui.render import table_html, text_html

DAYS = 30


def _totals(figures: CollectionFigures) -> dict[str, Any]:
    rate = figures.refusal_rate
    return {"collection": figures.collection, "questions": figures.asked, "refused": figures.refused,
            "refusal rate": "" if rate is None else f"{rate:.0%}", "thumbs up": figures.up,
            "thumbs down": figures.down}


def _problem_row(p: ProblemQuestion) -> dict[str, Any]:
    why = f"refused: {p.refusal_reason or ''}" if p.refused else "marked down"
    if p.marked_down:
        why += f" ({p.marked_down} down{': ' + p.comment if p.comment else ''})"
    expected = ("" if p.expected is None else (p.expected.answer or "") if p.expected.answerable
                else "not in the documents")
    if p.expected is not None and p.expected.file:
        expected += f" [{p.expected.file}{f' p. {p.expected.page}' if p.expected.page else ''}]"
    return {"id": p.message_id, "asked": p.at, "collections": p.collections, "question": p.question, "why": why,
            "sources": [s.label for s in p.sources], "expected answer": expected}


class QualityTab(AdminTab):
    """Questions per day, refusals and ratings per collection; write expected answers; export them as a QA set."""

    def build(self) -> None:
        """Lay out the tab."""
        with gr.Tab("Quality", id="quality") as self.tab:
            with gr.Row():
                self.collection = gr.Dropdown(label="Collection", choices=[("All collections", "")], value="",
                                              elem_id="quality-collection")
                self.refresh = gr.Button("Refresh", size="sm", elem_id="quality-refresh")
            self.figures = gr.HTML(js_on_load=None, elem_id="quality-figures")
            self.problems = gr.HTML(js_on_load=None, elem_id="quality-problems")
            gr.Markdown("#### Write the expected answer")
            self.question = gr.Dropdown(label="Question", choices=[], elem_id="quality-question")
            with gr.Row():
                self.page = gr.Dropdown(label="Page (one of its sources, or type 'file p. N')", choices=[],
                                        allow_custom_value=True, elem_id="quality-page")
                self.missing = gr.Checkbox(label="Not in the documents", elem_id="quality-missing")
            self.answer = gr.Textbox(label="Expected answer", lines=3, elem_id="quality-answer")
            self.save = gr.Button("Save expected answer", variant="primary", elem_id="quality-save")
            with gr.Row():
                self.export = gr.Button("Export QA set (docs/ + qa.jsonl)", elem_id="quality-export")
                self.download = gr.File(label="QA set", interactive=False, visible=False, elem_id="quality-download")

    def wire(self, blocks: gr.Blocks) -> None:
        """Connect the tab's events."""
        shown = [self.collection, self.figures, self.problems, self.question]
        self.tab.select(self._show, inputs=[self.collection], outputs=shown)
        self.refresh.click(self._show, inputs=[self.collection], outputs=shown)
        self.collection.input(self._show, inputs=[self.collection], outputs=shown)
        self.question.change(self._choose, inputs=[self.question], outputs=[self.page, self.answer, self.missing])
        self.save.click(self._save, inputs=[self.question, self.page, self.answer, self.missing,
                                            self.collection], outputs=shown)
        self.export.click(self._export, inputs=[self.collection], outputs=[self.download])

    @shows_errors
    def _show(self, collection: str | None, request: gr.Request) -> tuple[Any, str, str, Any]:
        return self._shown(collection, request, None)

    def _shown(self, collection: str | None, request: gr.Request, keep: int | None) -> tuple[Any, str, str, Any]:
        """The figures and the listed questions; ``keep`` stays the chosen question while it is listed."""
        principal = self.session.principal(request)
        report = self.web.quality.report(principal, DAYS)
        chosen = next((f for f in report.collections if f.collection == collection), report.overall)
        days = [{"day": d.day.isoformat(), "questions": d.asked, "refused": d.refused, "thumbs up": d.up,
                 "thumbs down": d.down} for d in reversed(chosen.days) if d.asked or d.up or d.down]
        columns = ["questions", "refused", "refusal rate", "thumbs up", "thumbs down"]
        figures = (f"<h4>The last {DAYS} days</h4>"
                   + table_html([_totals(f) for f in [report.overall, *report.collections]], ["collection", *columns])
                   + f"<h4>Per day: {text_html(chosen.collection)}</h4>"
                   + table_html(days, ["day", "questions", "refused", "thumbs up", "thumbs down"]))
        problems = self.web.quality.problems(principal, collection or None)
        listing = ("<h4>Refused or marked down: what the documents are missing</h4>"
                   + table_html([_problem_row(p) for p in problems],
                                ["id", "asked", "collections", "question", "why", "sources", "expected answer"]))
        names = self.web.access.readable(principal)
        choices = [(f"{p.message_id}: {p.question[:80]}", p.message_id) for p in problems]
        kept = keep if any(p.message_id == keep for p in problems) else None
        return (gr.update(choices=[("All collections", ""), *[(n, n) for n in names]]), figures, listing,
                gr.update(choices=choices, value=kept))

    @shows_errors
    def _choose(self, message_id: int | None, request: gr.Request) -> tuple[Any, str, bool]:
        if message_id is None:
            return gr.update(choices=[], value=None), "", False
        principal = self.session.principal(request)
        problem = next((p for p in self.web.quality.problems(principal) if p.message_id == message_id), None)
        if problem is None:
            raise gr.Error("that question is no longer listed: refresh the tab")
        labels = [s.label for s in problem.sources]
        expected = problem.expected
        page = None if expected is None or not expected.file else (
            f"{expected.file} p. {expected.page}" if expected.page else expected.file)
        return (gr.update(choices=labels, value=page or (labels[0] if labels else None)),
                (expected.answer or "") if expected else "", bool(expected and not expected.answerable))

    @shows_errors
    def _save(self, message_id: int | None, page: str | None, answer: str, missing: bool, collection: str | None,
              request: gr.Request) -> tuple[Any, str, str, Any]:
        if message_id is None:
            raise gr.Error("choose a question first")
        saved = self.web.quality.save_expected(self.session.principal(request), int(message_id), answer or "",
                                               page or "", missing)
        gr.Info(f"Expected answer saved in {saved.collection}.")
        return self._shown(collection, request, int(message_id))  # the question stays chosen, as written

    @shows_errors
    def _export(self, collection: str | None, request: gr.Request) -> Any:
        archive, summary = self.web.quality.export_zip(self.session.principal(request), collection or None)
        note = f"; {len(summary.missing)} documents are no longer on disk" if summary.missing else ""
        gr.Info(f"{summary.questions} question(s) and {summary.documents} document(s) exported{note}.")
        return gr.update(value=str(archive), visible=True)
