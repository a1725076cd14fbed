"""Settings admins change while the server runs: which model answers, and how many passages it gets.

Changes are applied to the one settings object, saved in the database (so a restart keeps
them) and take effect with the next question.
"""

from __future__ import annotations

import json
from typing import Any

from assistant import audit_events
from assistant.answer import AnswerService
from assistant.audit import AuditLog, Principal, require_admin
from assistant.errors import InvalidInput
from assistant.settings import Settings
from storage.documents import DocumentStore

SAVED_KEY = "web_runtime_settings"
BACKENDS = ("auto", "ollama", "embedded", "openai")


class RuntimeSettings:
    """Reads and changes the generation backend, Ollama host and model, OpenAI-compatible server and model, top-k."""

    def __init__(self, settings: Settings, answers: AnswerService, store: DocumentStore, audit: AuditLog) -> None:
        self.settings = settings
        self.answers = answers
        self.store = store
        self.audit = audit

    def current(self) -> dict[str, Any]:
        """The values the settings page shows."""
        gen = self.settings.generation
        return {"backend": gen.backend, "ollama_host": gen.ollama.hosts[0] if gen.ollama.hosts else "",
                "ollama_model": gen.ollama.model, "top_k": self.settings.retrieval.top_k,
                "embedded": gen.embedded.gguf_path or gen.embedded.label(),
                "openai_url": gen.openai.base_urls[0] if gen.openai.base_urls else "",
                "openai_model": gen.openai.model}

    def model_label(self) -> str:
        """Which model answers, in words every user may see."""
        chosen = self.answers.chosen_model_name
        if chosen:
            return chosen
        gen = self.settings.generation
        ollama = f"Ollama {gen.ollama.model} at {', '.join(gen.ollama.hosts)}"
        if gen.backend == "ollama":
            return ollama
        if gen.backend == "embedded":
            return f"embedded {gen.embedded.label()}"
        if gen.backend == "openai":
            return f"{gen.openai.model} at {', '.join(gen.openai.base_urls)} (OpenAI-compatible)"
        return f"{ollama}, else the embedded {gen.embedded.label()}"

    def load_saved(self) -> None:
        """Apply the values an admin saved earlier (at app start)."""
        saved = self.store.get_meta(SAVED_KEY)
        if saved:
            self._apply(json.loads(saved))

    def ollama_models(self, actor: Principal, host: str) -> list[str]:
        """The models an Ollama server has (admins only); raises BackendUnavailable when it does not answer."""
        require_admin(actor)
        return list_ollama_models(host.strip(), self.settings.generation.ollama.connect_timeout_s)

    def change(self, actor: Principal, backend: str, ollama_host: str, ollama_model: str, top_k: int,
               openai_url: str = "", openai_model: str = "") -> None:
        """Change the answering model and top-k (admins only); the OpenAI-compatible server is optional."""
        require_admin(actor)
        host, top_k = ollama_host.strip(), int(top_k)
        if backend not in BACKENDS:
            raise InvalidInput(f"backend must be one of {', '.join(BACKENDS)}")
        if not host.startswith(("http://", "https://")):
            raise InvalidInput("the Ollama host is a URL such as http://10.0.0.5:11434")
        if not 1 <= top_k <= 20:
            raise InvalidInput("top-k must be between 1 and 20")
        values: dict[str, Any] = {"backend": backend, "ollama_host": host, "ollama_model": ollama_model.strip(),
                                  "top_k": top_k, **_openai_values(backend, openai_url, openai_model)}
        self._apply(values)
        self.store.set_meta(SAVED_KEY, json.dumps(values))
        self.audit.record(actor, audit_events.SettingsChanged("generation", values))

    def _apply(self, values: dict[str, Any]) -> None:
        gen = self.settings.generation
        gen.backend = values.get("backend", gen.backend)
        if values.get("ollama_host"):
            gen.ollama.hosts = [values["ollama_host"]]
        gen.ollama.model = values.get("ollama_model") or gen.ollama.model
        if values.get("openai_url"):
            gen.openai.base_urls = [values["openai_url"]]
        gen.openai.model = values.get("openai_model") or gen.openai.model
        self.settings.retrieval.top_k = int(values.get("top_k", self.settings.retrieval.top_k))
        self.answers.reset_chat_model()


def _openai_values(backend: str, url: str, model: str) -> dict[str, str]:
    """The OpenAI-compatible server and model to save; both are required when that backend is chosen."""
    url, model = url.strip(), model.strip()
    if url and not url.startswith(("http://", "https://")):
        raise InvalidInput("the OpenAI-compatible server is a URL with its API path, such as http://10.0.0.7:8000/v1")
    if backend == "openai" and not (url and model):
        raise InvalidInput("the OpenAI-compatible backend needs the server URL and the model name it serves")
    return {"openai_url": url, "openai_model": model}


def list_ollama_models(host: str, timeout_s: float) -> list[str]:
    """Names of the models an Ollama server has, within a short timeout."""
    import httpx
    import ollama

    from assistant.errors import BackendUnavailable

    if not host.startswith(("http://", "https://")):
        raise InvalidInput("the Ollama host is a URL such as http://10.0.0.5:11434")
    try:
        with ollama.Client(host=host, timeout=httpx.Timeout(timeout_s)) as client:
            listed = client.list()
    except (ollama.ResponseError, httpx.HTTPError, ConnectionError, ValueError) as exc:
        raise BackendUnavailable(f"Ollama at {host} did not list its models: {exc}") from exc
    return sorted(item.model for item in listed.models if item.model)
