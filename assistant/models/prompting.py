"""How a model is prompted and how much it is given, from what its catalogue entry says."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any, Literal

from assistant.models.entry import ModelEntry

INSTRUCT_NAME = re.compile(r"(?i)(?:\binstruct|\bchat\b|[-_.]it\b|[-_.]it[-_.])")
BASE_STOPS = ("\nQuestion:", "\n\n")
"""Where a base model's continuation ends: it would go on to write the next passage or question itself."""
BASE_ANSWER_CUE = "Answer (cite passages as [n]):"
"""Where a base model's prompt ends: the document it continues has the answer, cited, next."""
BASE_EXAMPLE = (
    "[1] The office opens at 9 am on weekdays.\n\n[2] Staff park for free in the north car park.\n\n"
    "Using only the passages above, answer the question in one or two sentences and cite the passage number "
    "in brackets, like [1].\n\nQuestion: Where can staff park?\n"
    f"{BASE_ANSWER_CUE} Staff park for free in the north car park [2].\n\n"
)
"""One worked question before the real one: without it the packaged Gemma base wrote more passages, not an answer."""


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
class Prompt:
    """What a model is given: chat turns for its own template, or (a base model) one text it continues."""

    messages: list[dict[str, str]] | None
    text: str | None
    stop: tuple[str, ...] = ()


def build_prompt(entry: ModelEntry, messages: list[dict[str, str]]) -> Prompt:
    """The prompt for ``entry``: the chat turns as they are, or for a base model a plain document to continue.

    A base model reads the turns as a document ("[1] passage ... Question: ...") followed by
    ``BASE_ANSWER_CUE``, and stops where it would write the next question.
    """
    style = prompt_format(entry)
    if style.style == "chat":
        return Prompt(messages, None, style.stop)
    return Prompt(None, completion_text(messages), style.stop)


def completion_text(messages: list[dict[str, str]]) -> str:
    """Chat turns written out as one document, after a worked example, that ends where the answer starts."""
    parts = [BASE_EXAMPLE.rstrip()]
    for message in messages:
        content = message["content"].strip()
        parts.append(f"Answer: {content}" if message["role"] == "assistant" else content)
    return "\n\n".join(parts) + f"\n{BASE_ANSWER_CUE}"


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
