"""How a model is prompted and how much it is given, from what its catalogue entry says."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any, Literal

from assistant.models.entry import ModelEntry

INSTRUCT_NAME = re.compile(r"(?i)(?:\binstruct|\bchat\b|[-_.]it\b|[-_.]it[-_.])")
BASE_STOPS = ("\nQuestion:", "\n\n\n")
"""Where a base model's continuation ends: it would go on to write the next question itself."""


@dataclass(frozen=True)
class PromptFormat:
    """Whether a model is prompted through its chat template or as a base model that continues text."""

    style: Literal["chat", "base"]
    reason: str
    stop: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The format as the CLI and the Models page show it."""
        return {**asdict(self), "stop": list(self.stop)}


def prompt_format(entry: ModelEntry) -> PromptFormat:
    """Chat prompting for a model with a chat template (or, served, named instruction-tuned); else base prompting.

    A base model given chat turns copies or continues them, so it gets a plain document-style prompt
    ("Passages ... Question: ... Answer:") that ends where it would start the next question.
    """
    if entry.has_chat_template:
        return PromptFormat("chat", "the model carries its own chat template")
    if entry.has_chat_template is None and INSTRUCT_NAME.search(entry.name):
        return PromptFormat("chat", "the server does not say; the name says instruction-tuned")
    if entry.has_chat_template is None:
        return PromptFormat("chat", "the server applies the model's template (it does not say which)")
    return PromptFormat("base", "the file has no chat template: a base (pretrained) model", BASE_STOPS)


@dataclass(frozen=True)
class ContextBudget:
    """How the model's context window is shared between the passages, the question and the answer."""

    context_tokens: int
    answer_tokens: int
    passages: int
    passage_tokens: int

    def to_json(self) -> dict[str, Any]:
        """The budget as the CLI and the Models page show it."""
        return asdict(self)


UNKNOWN_CONTEXT = 2048  # what every model llama.cpp runs can take, when the entry does not say
RESERVED_TOKENS = 320  # instructions, the question, a follow-up's history
PASSAGE_OVERHEAD = 24  # "[n] file, page p:" before each passage


def context_budget(
    entry: ModelEntry, *, max_context: int = 8192, max_passages: int = 5, passage_tokens: int = 110
) -> ContextBudget:
    """Answer length, passages and context tokens that follow the model's context length.

    The rule: the window is the model's trained context, capped at ``max_context`` (llama.cpp's
    memory for the KV cache grows with it); the answer gets 1/24 of it, between 96 and 384
    tokens; the passages get what is left after the instructions and question, as many of
    ``passage_tokens`` as fit up to ``max_passages``, at least two, each shortened when two do
    not fit whole. A 4,096-token window gives today's 5 passages of 110 tokens and 170 answer tokens.
    """
    window = min(entry.context_length or UNKNOWN_CONTEXT, max_context)
    answer = max(96, min(384, window // 24))
    room = max(0, window - answer - RESERVED_TOKENS)
    fits = room // (passage_tokens + PASSAGE_OVERHEAD)
    passages = max(2, min(max_passages, fits))
    each = min(passage_tokens, max(16, room // passages - PASSAGE_OVERHEAD))
    return ContextBudget(window, answer, passages, each)
