"""The narrow interface every chat backend offers, and the spec that registers a backend.

A backend is one module (its chat model, its settings section, its ``SPEC``) plus one line
in ``assistant.llm.backends.BACKENDS``; docs/extending.md walks through adding one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from pydantic import BaseModel

if TYPE_CHECKING:
    from assistant.models.prompting import ContextBudget

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

    def load(self) -> None:
        """Get ready to answer now (an in-process model loads its weights); nothing for a model server."""
        ...

    def close(self) -> None:
        """Release what the model holds (memory, connections): the settings changed and it answers no more."""
        ...


@runtime_checkable
class SizedChatModel(Protocol):
    """A chat model that knows its context window, so the answer length and passages can follow it."""

    def context_budget(self, *, max_passages: int, passage_tokens: int) -> ContextBudget:
        """Answer tokens, passages and tokens per passage that fit the model's context."""
        ...


@dataclass(frozen=True)
class FormField:
    """One value of a backend's settings section that admins see on the settings page.

    A list-valued field (``hosts``, ``base_urls``) shows and sets its first item.
    """

    name: str
    """The field of the backend's settings section."""
    label: str
    placeholder: str = ""
    url: bool = False
    """The value must be an http:// or https:// URL."""
    required: bool = False
    """The backend cannot be chosen while this is empty."""
    read_only: bool = False
    """Shown (or the backend's description when empty) but set only in the configuration file."""
    listed: bool = False
    """Its choices are what the backend's ``list_models`` returns (a dropdown that takes any value too)."""


@dataclass(frozen=True)
class BackendSpec:
    """Everything the app needs to know about one answering backend.

    ``build(section, models_dir)`` makes its chat model from its settings section
    (``generation.<name>``, a ``settings`` instance); nothing heavy loads before ``ChatModel.load``.
    """

    name: str
    """The value of ``generation.backend`` and of the section's key."""
    label: str
    """The choice on the settings page."""
    settings: type[BaseModel]
    build: Callable[[Any, Path], ChatModel]
    describe: Callable[[Any], str]
    """Which model answers, in words users see, before the model is built."""
    fields: tuple[FormField, ...] = ()
    concurrency: int | None = None
    """Answers written at once; None: ``generation.server_concurrency`` (a model server's)."""
    probe: Callable[[Any], list[str]] | None = None
    """Why a built model cannot answer now (empty: it can); None: it always can (no server to ask)."""
    auto: Callable[[Any], bool] | None = None
    """Whether 'auto' tries this backend, in registry order, given its section; None: never."""
    list_models: Callable[[Any], list[str]] | None = None
    """The model names its server offers (the page's "List the server's models" button); None: no such list."""

    def answer_tokens(self, section: Any) -> int:
        """The longest answer in tokens: the section's ``max_tokens``."""
        return int(section.max_tokens)
