"""Settings admins change while the server runs: which backend answers, its servers and model, and top-k.

The settings page is built from the backend registry (``assistant.llm.backends.BACKENDS``): each
backend's form fields are shown and saved under its name. Changes are stored in the database
(``LiveSettings``), so a restart keeps them and every process uses them within
``jobs.settings_check_s``; the model that answered before is closed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from assistant import audit_events
from assistant.answer import AnswerService
from assistant.audit import AuditLog, Principal, require_admin
from assistant.errors import InvalidInput
from assistant.live_settings import LiveSettings, section_with
from assistant.llm.backends import BACKENDS, backend_names, get_backend
from assistant.llm.base import BackendSpec, FormField
from assistant.models.catalogue import local_file
from assistant.models.entry import ModelEntry
from assistant.settings import Settings

FormValues = Mapping[str, Mapping[str, str]]
"""Form text by backend name, then by field name."""


@dataclass(frozen=True)
class RuntimeView:
    """What the settings page shows: the backend, top-k, and each backend's form values as text."""

    backend: str
    top_k: int
    values: dict[str, dict[str, str]]


class RuntimeSettings:
    """Reads and changes the answering backend, its form fields, and top-k."""

    def __init__(self, live: LiveSettings, answers: AnswerService, audit: AuditLog) -> None:
        self.live = live
        self.answers = answers
        self.audit = audit

    @property
    def backends(self) -> list[BackendSpec]:
        """The backends admins may choose, in registry order ('auto' tries them in this order)."""
        return list(BACKENDS)

    def current(self) -> RuntimeView:
        """The values the settings page shows."""
        settings = self.live.current()
        gen = settings.generation
        values = {spec.name: {f.name: _shown(spec, gen.section(spec.name), f) for f in spec.fields}
                  for spec in BACKENDS}
        return RuntimeView(gen.backend, settings.retrieval.top_k, values)

    def model_label(self) -> str:
        """Which model answers, in words every user may see."""
        chosen = self.answers.chosen_model_name
        if chosen:
            return chosen
        gen = self.live.current().generation
        if gen.backend != "auto":
            return get_backend(gen.backend).describe(gen.section(gen.backend))
        tried = [spec.describe(gen.section(spec.name)) for spec in BACKENDS
                 if spec.auto is not None and spec.auto(gen.section(spec.name))]
        return ", else ".join(tried)

    def load_saved(self) -> None:
        """Read what admins saved now (at app start), so a saved value that no longer fits stops the start."""
        self.live.refresh()

    def server_models(self, actor: Principal, backend: str, values: Mapping[str, str]) -> list[str]:
        """The models a backend's server offers, for the form's values (admins only).

        Raises BackendUnavailable when the server does not answer.
        """
        require_admin(actor)
        spec = get_backend(backend)
        if spec.list_models is None:
            raise InvalidInput(f"the {spec.label} backend lists no models")
        _check_urls(spec, values)
        settings = self.live.current()
        return spec.list_models(section_with(spec, settings.generation.section(spec.name), values))

    def change(self, actor: Principal, backend: str, top_k: int, values: FormValues) -> None:
        """Change the answering backend, its form fields and top-k (admins only), for every process."""
        require_admin(actor)
        top_k = int(top_k)
        if backend not in ("auto", *backend_names()):
            raise InvalidInput(f"the answering model must be one of auto, {', '.join(backend_names())}")
        if not 1 <= top_k <= 20:
            raise InvalidInput("top-k must be between 1 and 20")
        self.live.refresh()
        kept = self.live.saved().sections  # read-only fields keep what `models use` chose; the form never sets them
        sections: dict[str, dict[str, str]] = {}
        for spec in BACKENDS:
            given = {f.name: values.get(spec.name, {}).get(f.name, "").strip() for f in spec.fields if not f.read_only}
            _check_urls(spec, given)
            chosen = {f.name: kept[spec.name][f.name] for f in spec.fields
                      if f.read_only and kept.get(spec.name, {}).get(f.name)}
            sections[spec.name] = {**given, **chosen}
        settings = self.live.current()
        if backend != "auto":
            _check_required(get_backend(backend), settings, sections[backend])
        # The rest of what admins saved (the ingest roots) stays as it is.
        self.live.save(self.live.saved().model_copy(update={"backend": backend, "top_k": top_k,
                                                            "sections": sections}))
        detail = {f"{name}.{field}": text for name, given in sections.items() for field, text in given.items()}
        changed = audit_events.SettingsChanged("generation", {"backend": backend, "top_k": top_k, **detail})
        self.audit.record(actor, changed)

    def use_model(self, actor: Principal, entry: ModelEntry) -> None:
        """Answer with a catalogue model from now on (admins only), for every process, as a settings change.

        A GGUF file on this machine is run by the embedded backend (a packaged model in chunks is
        joined first); a served model is asked on the server that listed it. The other backends'
        saved values and top-k stay as they are.
        """
        require_admin(actor)
        backend, values = _backend_values(entry)
        self.live.refresh()
        saved = self.live.saved()
        sections = {**saved.sections, backend: {**saved.sections.get(backend, {}), **values}}
        self.live.save(saved.model_copy(update={"backend": backend, "sections": sections}))
        self.audit.record(actor, audit_events.ModelChosen(entry.name, backend, entry.source, entry.location,
                                                          entry.sha256))


def _backend_values(entry: ModelEntry) -> tuple[str, dict[str, str]]:
    """The backend that answers with ``entry``, and the values of its section that name it."""
    if entry.source == "ollama-host":
        return "ollama", {"hosts": entry.location, "model": entry.name}
    if entry.source == "openai-server":
        return "openai", {"base_urls": entry.location, "model": entry.name}
    return "embedded", {"gguf_path": str(local_file(entry))}


def _shown(spec: BackendSpec, section: object, field: FormField) -> str:
    """A field's value as the form shows it: a list's first item; a read-only empty one, the description."""
    value = getattr(section, field.name)
    if isinstance(value, list):
        value = value[0] if value else ""
    text = "" if value is None else str(value)
    return text or (spec.describe(section) if field.read_only else "")


def _check_urls(spec: BackendSpec, given: Mapping[str, str]) -> None:
    for field in spec.fields:
        text = given.get(field.name, "").strip()
        if field.url and text and not text.startswith(("http://", "https://")):
            example = f" such as {field.placeholder}" if field.placeholder else ""
            raise InvalidInput(f"{field.label} is a URL{example}")


def _check_required(spec: BackendSpec, settings: Settings, given: Mapping[str, str]) -> None:
    """The chosen backend's required fields each have a value, given now or configured."""
    section = settings.generation.section(spec.name)
    missing = [f.label for f in spec.fields if f.required and not (given.get(f.name) or getattr(section, f.name))]
    if missing:
        raise InvalidInput(f"answering with {spec.label} needs {' and '.join(missing)}")

