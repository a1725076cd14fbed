"""Admin tab: which backend answers, its servers and model, and top-k, built from the backend registry."""

from __future__ import annotations

from typing import Any

import gradio as gr

from assistant.llm.base import BackendSpec, FormField
from assistant.web_services import WebServices
from ui.admin_tab import AdminTab
from ui.errors import shows_errors
from ui.session import SessionReader


def _elem_id(spec: BackendSpec, field: FormField) -> str:
    return f"{spec.name}-{field.name}".replace("_", "-")


class SettingsTab(AdminTab):
    """Change generation settings while the server runs; every app process uses them for its next question."""

    def __init__(self, web: WebServices, session: SessionReader) -> None:
        super().__init__(web, session)
        self.specs = web.runtime.backends
        self.fields: list[tuple[BackendSpec, FormField, Any]] = []  # every backend's field and its component
        self.listings: list[tuple[BackendSpec, gr.Button]] = []

    def build(self) -> None:
        """Lay out the tab: the backend choice, then each backend's fields, then top-k."""
        with gr.Tab("Settings", id="settings"):
            gr.Markdown("### Answering model")
            self.backend = gr.Radio([("auto", "auto"), *((spec.label, spec.name) for spec in self.specs)],
                                    label="Answering model", elem_id="backend",
                                    info="auto: " + ", else ".join(s.label for s in self.specs if s.auto is not None)
                                    + ": the first that answers")
            for spec in self.specs:
                self._build_backend(spec)
            gr.Markdown("### Retrieval")
            self.top_k = gr.Slider(1, 20, step=1, label="Passages per answer (top-k)", elem_id="top-k")
            self.save = gr.Button("Save settings", variant="primary", elem_id="save-settings")

    def _build_backend(self, spec: BackendSpec) -> None:
        if spec.fields or spec.list_models is not None:
            gr.Markdown(f"#### {spec.label}")
        with gr.Row():
            for field in spec.fields:
                component: Any
                if field.read_only:
                    component = gr.Textbox(label=field.label, interactive=False, elem_id=_elem_id(spec, field))
                elif field.listed:
                    component = gr.Dropdown(label=field.label, choices=[], allow_custom_value=True,
                                            elem_id=_elem_id(spec, field))
                else:
                    component = gr.Textbox(label=field.label, placeholder=field.placeholder,
                                           elem_id=_elem_id(spec, field))
                self.fields.append((spec, field, component))
            if spec.list_models is not None:
                self.listings.append((spec, gr.Button("List the server's models", size="sm",
                                                      elem_id=f"{spec.name}-list-models")))

    def wire(self, blocks: gr.Blocks) -> None:
        """Connect the tab's events."""
        components = [component for _, _, component in self.fields]
        blocks.load(self._load, outputs=[self.backend, self.top_k, *components])
        self.save.click(self._save, inputs=[self.backend, self.top_k, *components])
        for spec, button in self.listings:
            mine = [(field, component) for owner, field, component in self.fields if owner is spec]
            listed = [component for field, component in mine if field.listed]
            button.click(self._lister(spec, [field for field, _ in mine]), inputs=[c for _, c in mine],
                         outputs=listed[:1])

    @shows_errors
    def _load(self, request: gr.Request) -> tuple[Any, ...]:
        self.session.principal(request)
        now = self.web.runtime.current()
        shown = [now.values[spec.name][field.name] for spec, field, _ in self.fields]
        updates = [gr.update(choices=[text], value=text) if isinstance(c, gr.Dropdown) else text
                   for (_, _, c), text in zip(self.fields, shown, strict=True)]
        return (now.backend, now.top_k, *updates)

    def _lister(self, spec: BackendSpec, fields: list[FormField]) -> Any:
        @shows_errors
        def list_models(request: gr.Request, *texts: str) -> Any:
            values = {field.name: text or "" for field, text in zip(fields, texts, strict=True)}
            models = self.web.runtime.server_models(self.session.principal(request), spec.name, values)
            return gr.update(choices=models, value=models[0] if models else None)

        return list_models

    @shows_errors
    def _save(self, request: gr.Request, backend: str, top_k: float, *texts: str | None) -> None:
        values: dict[str, dict[str, str]] = {}
        for (spec, field, _), text in zip(self.fields, texts, strict=True):
            values.setdefault(spec.name, {})[field.name] = text or ""
        self.web.runtime.change(self.session.principal(request), backend, int(top_k), values)
        label = next((spec.label for spec in self.specs if spec.name == backend), backend)
        gr.Info(f"Saved: answering with {label}, {int(top_k)} passages per answer, from the next question "
                "in every app process")
