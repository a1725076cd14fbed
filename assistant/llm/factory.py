"""Pick the chat model that answers from the generation settings, and hold it while they stay the same."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from assistant.errors import BackendUnavailable
from assistant.llm.backends import BACKENDS, get_backend
from assistant.llm.base import BackendSpec, ChatModel
from assistant.settings import GenerationSettings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChosenModel:
    """The model that answers, the backend it belongs to, and the settings it was built from."""

    spec: BackendSpec
    model: ChatModel
    settings: GenerationSettings

    @property
    def concurrency(self) -> int:
        """Answers it writes at once."""
        return self.spec.concurrency or self.settings.server_concurrency

    @property
    def max_tokens(self) -> int:
        """Its longest answer in tokens."""
        return self.spec.answer_tokens(self.settings.section(self.spec.name))


def choose_chat_model(settings: GenerationSettings, models_dir: Path) -> ChosenModel:
    """Build the configured backend's chat model, or for 'auto' the first of the registry's that answers.

    Args:
        settings: The generation settings; ``backend`` names a backend of ``BACKENDS``, or 'auto' for
            the first of those whose ``auto`` accepts their section that answers (Ollama, then the
            OpenAI-compatible servers when configured, then the embedded model).
        models_dir: Where the packaged GGUF is assembled on first use (e.g. ``data_dir / "models"``).

    Returns:
        The chosen model; nothing heavy is loaded until it is first used (or ``load``ed).

    Raises:
        BackendUnavailable: the backend's servers do not answer with the model (none does, for 'auto').
        ConfigError: a configured value is missing or points at something that does not exist.
    """
    if settings.backend != "auto":
        spec = get_backend(settings.backend)
        model, problems = _try(spec, settings, models_dir)
        if model is None:
            raise BackendUnavailable("; ".join(problems))
        return ChosenModel(spec, model, settings)
    tried: list[str] = []
    for spec in BACKENDS:
        if spec.auto is None or not spec.auto(settings.section(spec.name)):
            continue
        model, problems = _try(spec, settings, models_dir)
        if model is not None:
            if tried:
                logger.warning("Answering with %s because no earlier backend can: %s", model.name, "; ".join(tried))
            return ChosenModel(spec, model, settings)
        tried.extend(problems)
    raise BackendUnavailable("no backend 'auto' tries can answer: " + "; ".join(tried))


def _try(spec: BackendSpec, settings: GenerationSettings, models_dir: Path) -> tuple[ChatModel | None, list[str]]:
    """The backend's model when it can answer, else None and why not (its connections closed)."""
    section = settings.section(spec.name)
    model = spec.build(section, models_dir)
    problems = spec.probe(model) if spec.probe else []
    if problems:
        model.close()
        return None, problems
    return model, []


class AnsweringModel:
    """The chosen chat model, kept while the generation settings stay the same and closed when they change."""

    def __init__(self, models_dir: Path,
                 choose: Callable[[GenerationSettings, Path], ChosenModel] = choose_chat_model) -> None:
        self._models_dir = models_dir
        self._choose = choose
        self._chosen: ChosenModel | None = None
        self._lock = threading.Lock()

    def get(self, settings: GenerationSettings) -> ChosenModel:
        """The model for ``settings``: the one held, or (they changed) a new one, the old one closed first."""
        while True:
            with self._lock:
                held = self._chosen
                if held is None:
                    self._chosen = self._choose(settings, self._models_dir)
                    return self._chosen
                if held.settings == settings:
                    return held
                self._chosen = None
            self._close(held)  # outside the lock: an in-process model finishes the answer it is writing

    def held(self, settings: GenerationSettings) -> ChosenModel | None:
        """The model held for ``settings``, or None; one held for other settings is closed."""
        with self._lock:
            held = self._chosen
            if held is None or held.settings == settings:
                return held
            self._chosen = None
        self._close(held)
        return None

    def close(self) -> None:
        """Close the model held, if any."""
        with self._lock:
            held, self._chosen = self._chosen, None
        if held is not None:
            self._close(held)

    @staticmethod
    def _close(held: ChosenModel) -> None:
        logger.info("closing %s: the answering settings changed", held.model.name)
        held.model.close()
