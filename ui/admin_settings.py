"""Admin tab: which model answers (Ollama, an OpenAI-compatible server, or the embedded fallback) and top-k."""

from __future__ import annotations

from typing import Any

import gradio as gr

from assistant.web_services import WebServices
from ui.errors import shows_errors
from ui.session import SessionReader


class SettingsTab:
    """Change generation settings while the server runs; they apply to the next question."""

    def __init__(self, web: WebServices, session: SessionReader) -> None:
        self.web = web
        self.session = session

    def build(self) -> None:
        """Lay out the tab."""
        with gr.Tab("Settings", id="settings"):
            self.backend = gr.Radio(["auto", "ollama", "openai", "embedded"], label="Answering model",
                                    elem_id="backend", info="auto: Ollama when it answers with the model, else the "
                                    "OpenAI-compatible server when set and answering, else the embedded model")
            with gr.Row():
                self.host = gr.Textbox(label="Ollama host", elem_id="ollama-host")
                self.list_models = gr.Button("List the server's models", size="sm", elem_id="list-models")
            self.model = gr.Dropdown(label="Ollama model", choices=[], allow_custom_value=True, elem_id="ollama-model")
            with gr.Row():
                self.openai_url = gr.Textbox(label="OpenAI-compatible server (vLLM, llama.cpp, TGI)",
                                             placeholder="http://10.0.0.7:8000/v1", elem_id="openai-url")
                self.openai_model = gr.Textbox(label="Its model", elem_id="openai-model")
            self.embedded = gr.Textbox(label="Embedded fallback", interactive=False, elem_id="embedded")
            self.top_k = gr.Slider(1, 20, step=1, label="Passages per answer (top-k)", elem_id="top-k")
            self.save = gr.Button("Save settings", variant="primary", elem_id="save-settings")

    def wire(self, blocks: gr.Blocks) -> None:
        """Connect the tab's events."""
        blocks.load(self._load, outputs=[self.backend, self.host, self.model, self.embedded, self.top_k,
                                         self.openai_url, self.openai_model])
        self.list_models.click(self._models, inputs=[self.host], outputs=[self.model])
        self.save.click(self._save, inputs=[self.backend, self.host, self.model, self.top_k, self.openai_url,
                                            self.openai_model])

    @shows_errors
    def _load(self, request: gr.Request) -> tuple[Any, ...]:
        self.session.principal(request)
        now = self.web.runtime.current()
        return (now["backend"], now["ollama_host"], gr.update(choices=[now["ollama_model"]], value=now["ollama_model"]),
                now["embedded"], now["top_k"], now["openai_url"], now["openai_model"])

    @shows_errors
    def _models(self, host: str, request: gr.Request) -> Any:
        models = self.web.runtime.ollama_models(self.session.principal(request), host)
        return gr.update(choices=models, value=models[0] if models else None)

    @shows_errors
    def _save(self, backend: str, host: str, model: str, top_k: float, openai_url: str, openai_model: str,
              request: gr.Request) -> None:
        self.web.runtime.change(self.session.principal(request), backend, host, model or "", int(top_k),
                                openai_url or "", openai_model or "")
        gr.Info("Saved: the next question uses these settings.")
