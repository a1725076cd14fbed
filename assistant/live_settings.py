"""The settings a process answers with: the configured ones, plus what admins saved in the database.

``Settings`` never change once loaded. Admin changes (the answering backend, its servers and
model, top-k, the folders admins may ingest from) are saved under one meta key; every process
(each ``serve --no-worker`` app, ``run.py ask``) reads that key at most every
``jobs.settings_check_s`` seconds and, when it changed, builds a new ``Settings`` snapshot from
the configured one, much as serving processes pick up index versions (storage/index_reload.py).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from assistant.errors import ConfigError
from assistant.llm.backends import find_backend
from assistant.llm.base import BackendSpec
from assistant.settings import Settings
from storage.documents import DocumentStore

SAVED_KEY = "web_runtime_settings"
log = logging.getLogger(__name__)

# Keys of the flat form saved before the backend registry: (backend, field) each one sets.
_LEGACY_KEYS = {"ollama_host": ("ollama", "hosts"), "ollama_model": ("ollama", "model"),
                "openai_url": ("openai", "base_urls"), "openai_model": ("openai", "model")}


class SavedSettings(BaseModel):
    """What admins changed on the settings page; an empty value keeps the configured one."""

    model_config = ConfigDict(frozen=True)

    backend: str | None = None
    """generation.backend, or None for the configured one."""
    top_k: int | None = None
    """retrieval.top_k, or None for the configured one."""
    sections: dict[str, dict[str, str]] = Field(default_factory=dict)
    """Form values by backend name, then by field of its settings section."""
    ingest_roots: list[str] | None = None
    """web.ingest_roots (the whole list, once an admin added or removed one), or None for the configured ones."""

    @model_validator(mode="before")
    @classmethod
    def _legacy_form(cls, data: Any) -> Any:
        """Read values saved in the flat form (``ollama_host``, ``openai_model``...) too."""
        if not isinstance(data, dict) or not _LEGACY_KEYS.keys() & data.keys():
            return data
        sections: dict[str, dict[str, str]] = {}
        for key, (backend, field) in _LEGACY_KEYS.items():
            if data.get(key):
                sections.setdefault(backend, {})[field] = str(data[key])
        return {"backend": data.get("backend"), "top_k": data.get("top_k"), "sections": sections}


def apply_saved(base: Settings, saved: SavedSettings) -> Settings:
    """``base`` with the saved values in place; raises ConfigError when one no longer fits its setting."""
    gen = base.generation
    updates: dict[str, Any] = {}
    for name, values in saved.sections.items():
        spec = find_backend(name)
        if spec is None:
            log.warning("saved settings name backend %r, which is registered no more; ignored", name)
            continue
        updates[name] = section_with(spec, gen.section(name), values, read_only=True)
    if saved.backend:
        updates["backend"] = saved.backend
    try:
        generation = type(gen).model_validate({**gen.model_dump(), **updates})
    except ValidationError as exc:
        raise ConfigError(f"the saved settings do not fit: {exc}") from exc
    settings = base.model_copy(update={"generation": generation})
    if saved.ingest_roots is not None:
        settings = settings.changed("web", ingest_roots=[Path(root) for root in saved.ingest_roots])
    return settings.changed("retrieval", top_k=saved.top_k) if saved.top_k else settings


def section_with(
    spec: BackendSpec, section: BaseModel, values: Mapping[str, str], read_only: bool = False,
) -> BaseModel:
    """A backend's settings section with the form's non-empty values in place (a list field gets one item).

    Read-only fields are taken only with ``read_only``: from what the app saved itself (the model
    ``models use`` chose), never from a form's text.
    """
    changed: dict[str, object] = {}
    for field in spec.fields:
        text = values.get(field.name, "").strip()
        if text and (read_only or not field.read_only):
            changed[field.name] = [text] if isinstance(getattr(section, field.name), list) else text
    try:
        return spec.settings.model_validate({**section.model_dump(), **changed})
    except ValidationError as exc:
        raise ConfigError(f"the {spec.label} settings do not fit: {exc}") from exc


class LiveSettings:
    """The newest settings snapshot of this process, following what admins save in any process."""

    def __init__(self, base: Settings, store: DocumentStore, clock: Callable[[], float] = time.monotonic) -> None:
        self.base = base
        self._store = store
        self._clock = clock
        self._current = base
        self._saved_text: str | None = None
        self._checked: float | None = None
        self._lock = threading.Lock()

    def current(self) -> Settings:
        """The settings to use now (the database is read at most every ``jobs.settings_check_s``)."""
        checked = self._checked
        if checked is None or self._clock() - checked >= self.base.jobs.settings_check_s:
            return self.refresh()
        return self._current

    def saved(self) -> SavedSettings:
        """What admins saved, as this process last read it."""
        text = self._saved_text
        return SavedSettings.model_validate_json(text) if text else SavedSettings()

    def refresh(self) -> Settings:
        """Read the saved values now and build a new snapshot when they changed."""
        text = self._store.get_meta(SAVED_KEY)
        with self._lock:
            self._checked = self._clock()
            if text != self._saved_text:
                self._current = apply_saved(self.base, SavedSettings.model_validate_json(text)) if text else self.base
                self._saved_text = text
                log.info("settings saved by an admin are in use: backend %s", self._current.generation.backend)
            return self._current

    def save(self, saved: SavedSettings) -> Settings:
        """Check ``saved`` against the configured settings, store it for every process, and use it here."""
        apply_saved(self.base, saved)  # refuse what would not load, before any process reads it
        self._store.set_meta(SAVED_KEY, saved.model_dump_json())
        return self.refresh()
