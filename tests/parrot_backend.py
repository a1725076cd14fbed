"""A tiny answering backend registered the way docs/extending.md describes: this module plus one registry line.

It answers in this process, with no model at all: it repeats the first sentence of the best
passage and cites it, which is a grounded answer the answering service accepts.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from pydantic import Field

from assistant.llm.base import BackendSpec, ChatMessage, FormField
from assistant.settings import Section


class ParrotSettings(Section):
    """The parrot backend's section, ``[generation.parrot]``."""

    voice: str = Field("plain", description="Shown in the model's name.")
    max_tokens: int = Field(160, description="Longest answer in tokens.")


class ParrotChatModel:
    """Repeats the first sentence of passage [1], cited."""

    def __init__(self, settings: ParrotSettings) -> None:
        self.settings = settings
        self.loaded = False
        self.closed = False

    @property
    def name(self) -> str:
        """Who answers."""
        return f"Parrot ({self.settings.voice})"

    def stream(self, messages: list[ChatMessage], *, max_tokens: int, temperature: float) -> Iterator[str]:
        """The first sentence of passage [1], word by word, then its citation."""
        passage = messages[-1]["content"].split("[1] ", 1)[-1].split("\n\n[2] ", 1)[0]
        sentence = re.search(r"[A-Z][^.!?#\n]*[.!?]", passage)
        words = sentence.group(0).split() if sentence else ["Nothing."]
        for word in words[:max_tokens]:
            yield word + " "
        yield "[1]"

    def count_tokens(self, text: str) -> int:
        """Words stand for tokens."""
        return len(text.split())

    def load(self) -> None:
        """Nothing to load; it notes that it was asked to."""
        self.loaded = True

    def close(self) -> None:
        """Nothing to free; it notes that it was closed."""
        self.closed = True


def _build(settings: ParrotSettings, _models_dir: Path) -> ParrotChatModel:
    return ParrotChatModel(settings)


SPEC = BackendSpec(
    name="parrot",
    label="Parrot (repeats the best passage)",
    settings=ParrotSettings,
    build=_build,
    describe=lambda settings: f"Parrot ({settings.voice})",
    fields=(FormField("voice", "Parrot voice", placeholder="plain", required=True),),
)
