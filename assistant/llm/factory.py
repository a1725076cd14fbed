"""Pick the chat model that answers, from the generation settings."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Protocol

from assistant.errors import BackendUnavailable
from assistant.llm.base import ChatModel
from assistant.llm.embedded import EmbeddedChatModel
from assistant.llm.ollama import OllamaChatModel
from assistant.llm.openai_compat import OpenAICompatChatModel
from assistant.llm.rotation import HostCheck
from assistant.settings import GenerationSettings

logger = logging.getLogger(__name__)


def build_chat_model(settings: GenerationSettings, models_dir: Path) -> ChatModel:
    """Build the configured chat model; its ``name`` tells the user which one answers.

    Args:
        settings: The generation settings; ``backend`` picks Ollama, OpenAI-compatible servers, the
            embedded model, or ('auto') the first of Ollama, then the OpenAI-compatible servers when
            ``generation.openai.base_urls`` lists any, that answers with the model, else the embedded one.
        models_dir: Where the packaged GGUF is assembled on first use (e.g. ``data_dir / "models"``).

    Returns:
        A chat model; nothing heavy is loaded until it is first used.

    Raises:
        BackendUnavailable: backend is 'ollama' or 'openai' and no server answers with the model.
        ConfigError: a configured value is missing or points at something that does not exist.
    """
    if settings.backend == "embedded":
        return EmbeddedChatModel(settings.embedded, models_dir)
    problems: list[str] = []
    for candidate in _model_servers(settings):
        checks = candidate.check()
        if any(check.ok for check in checks):
            return candidate
        candidate.close()
        problems.extend(check.problem for check in checks)
    if settings.backend != "auto":
        raise BackendUnavailable("; ".join(problems))
    logger.warning("Answering with the embedded model because no model server can: %s", "; ".join(problems))
    return EmbeddedChatModel(settings.embedded, models_dir)


class _ServedModel(ChatModel, Protocol):
    """A chat model on model servers, which can say whether they answer."""

    def check(self) -> list[HostCheck]: ...

    def close(self) -> None: ...


def _model_servers(settings: GenerationSettings) -> list[_ServedModel]:
    """The server-backed models to try, in order, for a backend other than 'embedded'."""
    if settings.backend == "openai":
        return [OpenAICompatChatModel(settings.openai)]
    if settings.backend == "auto" and settings.openai.base_urls:
        return [OllamaChatModel(settings.ollama), OpenAICompatChatModel(settings.openai)]
    return [OllamaChatModel(settings.ollama)]
