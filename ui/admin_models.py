"""Admin tab: the models the install can answer with, which one answers, and the model-size advisor's last advice."""

from __future__ import annotations

import base64
from html import escape
from typing import Any

import gradio as gr

from assistant.models.service import LastAdvice, ModelsView
from ui.admin_tab import AdminTab
from ui.errors import shows_errors
from ui.model_table import ADVICE_COLUMNS, MODEL_COLUMNS, advice_rows, model_row
from ui.render import table_html, text_html

ADDING = (
    "To add a model, copy its `.gguf` file onto the server (on an air-gapped machine: from removable media) and "
    "run `run.py models add FILE.gguf`, or drop it into `DATA_DIR/models/`; this page uploads no model files. "
    "To measure models on your own questions, run `run.py advise QA_FOLDER`: the newest advice shows below."
)


class ModelsTab(AdminTab):
    """The catalogue with "use this model", and the last advice with "use the advised model"."""

    def build(self) -> None:
        """Lay out the tab."""
        with gr.Tab("Models", id="models") as self.tab:
            gr.Markdown(ADDING, elem_id="models-adding")
            self.refresh = gr.Button("Refresh", size="sm", elem_id="models-refresh")
            self.answering = gr.HTML(js_on_load=None, elem_id="models-answering")
            self.table = gr.HTML(js_on_load=None, elem_id="models-table")
            with gr.Row():
                self.choice = gr.Dropdown(label="Model", choices=[], allow_custom_value=True, elem_id="model-choice")
                self.use = gr.Button("Use this model", variant="primary", elem_id="use-model")
            self.advice = gr.HTML(js_on_load=None, elem_id="advice")
            self.use_advised = gr.Button("Use the advised model", elem_id="use-advised")

    def wire(self, blocks: gr.Blocks) -> None:
        """Connect the tab's events; the catalogue is read when the tab opens, not with every admin page."""
        outputs = [self.answering, self.table, self.choice, self.advice]
        self.refresh.click(self._show, outputs=outputs)
        self.tab.select(self._show, outputs=outputs)
        self.use.click(self._use, inputs=[self.choice], outputs=outputs)
        self.use_advised.click(self._use_advised, outputs=outputs)

    @shows_errors
    def _show(self, request: gr.Request) -> tuple[str, str, Any, str]:
        principal = self.session.principal(request)
        view = self.web.models.models(principal)
        return (*_catalogue_html(view), _advice_html(self.web.models.last_advice(principal)))

    @shows_errors
    def _use(self, name: str | None, request: gr.Request) -> tuple[str, str, Any, str]:
        if not name:
            raise gr.Error("Choose a model first.")
        entry = self.web.models.use(self.session.principal(request), name)
        gr.Info(f"{entry.name} answers the next question, in every app process.")
        return self._show(request)

    @shows_errors
    def _use_advised(self, request: gr.Request) -> tuple[str, str, Any, str]:
        entry = self.web.models.use_advised(self.session.principal(request))
        gr.Info(f"{entry.name} answers the next question, in every app process.")
        return self._show(request)


def _catalogue_html(view: ModelsView) -> tuple[str, str, Any]:
    """The line saying who answers, the catalogue table (with its problems), and the model choice."""
    rows = [model_row(m, m.key == view.answering_key) for m in view.catalogue.models]
    problems = "".join(f"<p class='note'>{text_html(p)}</p>" for p in view.catalogue.problems)
    names = [(f"{m.name} ({m.source})", m.key) for m in view.catalogue.models]
    chosen = view.answering_key if view.answering_key else (names[0][1] if names else None)
    return (f"<p>Answers now: {text_html(view.answering)}</p>", table_html(rows, MODEL_COLUMNS) + problems,
            gr.update(choices=names, value=chosen))


def _advice_html(last: LastAdvice | None) -> str:
    """The newest advice: its table, the advised model and why, the rule, and the plot."""
    if last is None:
        return "<h4>Last advice</h4><p>No advice yet: run <code>run.py advise QA_FOLDER</code> on the server.</p>"
    advice = last.advice
    advised = advice.chosen.model.name if advice.chosen else "none"
    notes = "".join(f"<p class='note'>{text_html(n)}</p>" for n in advice.notes)
    plot = ""
    if last.plot_png:
        encoded = base64.b64encode(last.plot_png).decode("ascii")
        plot = (f'<img src="data:image/png;base64,{encoded}" alt="quality against size on disk" '
                'style="max-width:100%" id="advice-plot">')
    return (f"<h4>Last advice: {text_html(advice.dataset)}, {advice.questions} questions</h4>"
            f"<p>Advised model: <b>{escape(advised)}</b>. {text_html(advice.reason)}</p>"
            + table_html(advice_rows(advice), ADVICE_COLUMNS)
            + f"<p class='note'>Rule: {text_html(advice.rule)}. From {text_html(str(last.folder))}.</p>"
            + notes + plot)
