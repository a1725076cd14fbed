"""The narrow interface every chat backend offers to the answering service."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

ChatMessage = dict[str, str]
"""One chat turn: ``{"role": "system" | "user" | "assistant", "content": text}``."""


class ChatModel(Protocol):
    """A language model that streams an answer to a list of chat messages."""

    @property
    def name(self) -> str:
        """Who answers, as shown to users, e.g. ``Ollama gemma3:270m at http://host:11434``."""
        ...

    def stream(self, messages: list[ChatMessage], *, max_tokens: int, temperature: float) -> Iterator[str]:
        """Yield the answer in pieces; raise ``GenerationError`` even after some pieces were yielded."""
        ...

    def count_tokens(self, text: str) -> int:
        """Tokens ``text`` takes in this model's context (approximate where the backend cannot say)."""
        ...
