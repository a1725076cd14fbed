"""What the Models page and `run.py models` ask for: the catalogue with the model answering now, adding a
GGUF, switching the answering model, and the model-size advisor's last advice."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistant import audit_events
from assistant.advice import ADVICE, ADVICE_FOLDER, PLOT, Advice
from assistant.answer import AnswerService
from assistant.audit import AuditLog, Principal, require_admin
from assistant.default_model import default_package
from assistant.errors import EnclaveError, NotFoundError
from assistant.live_settings import LiveSettings
from assistant.llm.backends import BACKENDS
from assistant.models.catalogue import add_model, list_models
from assistant.models.entry import Catalogue, ModelEntry
from assistant.runtime import RuntimeSettings
from assistant.settings import GenerationSettings

"""The package of the model the embedded backend runs when no GGUF file is configured."""


@dataclass(frozen=True)
class ModelsView:
    """The catalogue, which of its models answers now (its key, None when none of them), and in words."""

    catalogue: Catalogue
    answering_key: str | None
    answering: str

    def to_json(self) -> dict[str, Any]:
        """As `models list --json` prints it: each model with ``answering``, and who answers in words."""
        shown = self.catalogue.to_json()
        for entry, model in zip(self.catalogue.models, shown["models"], strict=True):
            model["answering"] = entry.key == self.answering_key
        answering = next((m.name for m in self.catalogue.models if m.key == self.answering_key), None)
        return {**shown, "answering": self.answering, "answering_model": answering}


@dataclass(frozen=True)
class LastAdvice:
    """The newest advice.json under DATA_DIR/advice, with its folder and plot."""

    advice: Advice
    folder: Path
    plot_png: bytes | None


class ModelService:
    """The models the install can answer with, for admins (the page) and the server's command line."""

    def __init__(self, live: LiveSettings, answers: AnswerService, runtime: RuntimeSettings, audit: AuditLog) -> None:
        self.live = live
        self.answers = answers
        self.runtime = runtime
        self.audit = audit

    def models(self, actor: Principal, checksums: bool = True) -> ModelsView:
        """Every model, with the servers admins saved, and which answers now (admins only)."""
        require_admin(actor)
        settings = self.live.current()
        catalogue = list_models(settings, checksums=checksums)
        answering = next((m.key for m in catalogue.models if self._answers_with(m, settings.generation)), None)
        return ModelsView(catalogue, answering, self.runtime.model_label())

    def add(self, actor: Principal, file: Path) -> ModelEntry:
        """Copy a GGUF file into DATA_DIR/models (admins only); raises NotAGGUF for any other file."""
        require_admin(actor)
        entry = add_model(file, self.live.base.data_dir)
        self.audit.record(actor, audit_events.ModelAdded(entry.name, entry.size_bytes, entry.sha256))
        return entry

    def use(self, actor: Principal, name: str) -> ModelEntry:
        """Answer with the catalogue model called ``name`` (or with that key) in every process (admins only)."""
        require_admin(actor)
        entry = _find(list_models(self.live.current(), checksums=False), name)
        self.runtime.use_model(actor, entry)
        return entry

    def use_advised(self, actor: Principal) -> ModelEntry:
        """Answer with the model the newest advice names, in every process (admins only)."""
        last = self.last_advice(actor)
        if last is None or last.advice.chosen is None:
            raise NotFoundError("there is no advised model yet: run `run.py advise QA_FOLDER` first")
        advised = last.advice.chosen.model
        catalogue = list_models(self.live.current(), checksums=False)
        known = {m.key for m in catalogue.models}
        entry = _find(catalogue, advised.key if advised.key in known else advised.name)
        self.runtime.use_model(actor, entry)
        return entry

    def last_advice(self, actor: Principal) -> LastAdvice | None:
        """The newest advice `advise` wrote under DATA_DIR/advice, or None (admins only)."""
        require_admin(actor)
        written = sorted((self.live.base.data_dir / ADVICE_FOLDER).glob(f"*/{ADVICE}"),
                         key=lambda path: path.stat().st_mtime)
        if not written:
            return None
        newest = written[-1]
        try:
            advice = Advice.from_json(json.loads(newest.read_text(encoding="utf-8")))
        except (ValueError, KeyError, TypeError) as error:
            raise EnclaveError(f"{newest} is not advice `run.py advise` wrote ({error}): run it again") from error
        plot = newest.parent / PLOT
        return LastAdvice(advice, newest.parent, plot.read_bytes() if plot.is_file() else None)

    def _answers_with(self, entry: ModelEntry, generation: GenerationSettings) -> bool:
        """Whether ``entry`` is the model the current settings answer with."""
        backend = generation.backend
        if backend == "auto":
            held = self.answers.models.held(generation)
            backend = held.spec.name if held else next(
                s.name for s in BACKENDS if s.auto is not None and s.auto(generation.section(s.name)))
        if backend == "ollama":
            ollama = generation.ollama
            return entry.source == "ollama-host" and entry.name == ollama.model and entry.location in ollama.hosts
        if backend == "openai":
            openai = generation.openai
            return entry.source == "openai-server" and entry.name == openai.model and entry.location in openai.base_urls
        if backend != "embedded" or not entry.is_local:
            return False
        embedded = generation.embedded
        if embedded.ollama_model:
            return entry.source == "ollama-store" and entry.name == embedded.ollama_model
        if embedded.gguf_path:
            return _same_file(Path(entry.location), Path(embedded.gguf_path).expanduser())
        return entry.source == "packaged" and _normal(entry.package or "") == default_package()


def _find(catalogue: Catalogue, name: str) -> ModelEntry:
    """The model with this key, else this name, else this name in other letter case."""
    entry = next((m for m in catalogue.models if m.key == name), None) or catalogue.find(name) or next(
        (m for m in catalogue.models if m.name.lower() == name.lower()), None)
    if entry is None:
        known = ", ".join(m.name for m in catalogue.models) or "none"
        raise NotFoundError(f"no model called {name!r} in the catalogue (models: {known})")
    return entry


def _same_file(one: Path, other: Path) -> bool:
    return one.resolve() == other.resolve()


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()
