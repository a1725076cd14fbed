"""Pick the chat model that answers, from the generation settings."""

from __future__ import annotations

import logging
from pathlib import Path

from assistant.errors import BackendUnavailable, ConfigError
from assistant.llm.base import ChatModel
from assistant.llm.embedded import EmbeddedChatModel
from assistant.llm.ollama import OllamaChatModel
from assistant.settings import GenerationSettings

logger = logging.getLogger(__name__)


def build_chat_model(settings: GenerationSettings, models_dir: Path) -> ChatModel:
    """Build the configured chat model; its ``name`` tells the user which one answers.

    Args:
        settings: The generation settings; ``backend`` picks Ollama, the embedded model, or
            ('auto') Ollama when a configured host answers with the model, else the embedded one.
        models_dir: Where the packaged GGUF is assembled on first use (e.g. ``data_dir / "models"``).

    Returns:
        A chat model; nothing heavy is loaded until it is first used.

    Raises:
        BackendUnavailable: backend is 'ollama' and no host answers with the model.
        ConfigError: the backend is not supported, or a configured path does not exist.
    """
    if settings.backend == "openai":
        raise ConfigError("generation.backend 'openai' is not yet supported: use 'auto', 'ollama' or 'embedded'")
    if settings.backend == "embedded":
        return EmbeddedChatModel(settings.embedded, models_dir)
    ollama = OllamaChatModel(settings.ollama)
    checks = ollama.check()
    if any(check.ok for check in checks):
        return ollama
    ollama.close()
    problems = "; ".join(check.problem for check in checks)
    if settings.backend == "ollama":
        raise BackendUnavailable(problems)
    logger.warning("Answering with the embedded model because no Ollama host can: %s", problems)
    return EmbeddedChatModel(settings.embedded, models_dir)
