"""Typed events the answering service streams; the CLI and the web app render the same ones."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from assistant.citations import SentenceSupport
from assistant.evidence import Quote
from assistant.excerpts import supporting_sentences
from assistant.retrieval import Passage


class Stage(StrEnum):
    """What the answering service is doing; a ``Status`` event says one started."""

    RETRIEVING = "retrieving"
    REWRITING = "rewriting"  # the question searched differs: a follow-up made standalone, typos corrected
    INDEXING = "indexing"  # files searched are still being embedded: keyword search alone finds them
    DECIDING = "deciding"
    WAITING = "waiting"  # in line for the model
    GENERATING = "generating"


@dataclass(frozen=True)
class Status:
    """A stage started; ``detail`` is e.g. the rewritten question or the model's name."""

    stage: Stage
    detail: str = ""


@dataclass(frozen=True)
class Waiting(Status):
    """The question waits in line for the model: ``ahead`` requests go first (0: its turn has come)."""

    ahead: int = 0
    waited_s: float = 0.0


def waiting(ahead: int, waited_s: float) -> Waiting:
    """The waiting status with its words, e.g. ``waiting: 3 ahead of you``."""
    detail = f"waiting: {ahead} ahead of you" if ahead else "your turn: the model is answering"
    return Waiting(Stage.WAITING, detail, ahead, waited_s)


def indexing_note(files: dict[str, int], keyword_first: bool = True) -> str | None:
    """What to tell the asker while some files are not embedded yet; None when every file is.

    With ``keyword_first`` (the in-process index) such files are keyword-searchable already; the
    PostgreSQL index makes a file searchable only once it is embedded.
    """
    total = sum(files.values())
    if not total:
        return None
    files_text = f"{total} file{'s' if total != 1 else ''}"
    if keyword_first:
        return f"still indexing {files_text}; answers use keyword search for them"
    return f"still indexing {files_text}; answers leave them out until they are indexed"


@dataclass(frozen=True)
class Sources:
    """The passages retrieved for the question, numbered from 1 in this order."""

    passages: list[Passage]


@dataclass(frozen=True)
class Evidence:
    """The passages' sentences that answer the question best, sent before the model writes.

    They are the first useful text an employee sees: the model's answer follows them, and
    when it cannot be used the answer quotes them.
    """

    quotes: list[Quote]


@dataclass(frozen=True)
class Token:
    """A piece of the answer text as the model writes it."""

    text: str


@dataclass(frozen=True)
class Citation:
    """A passage the answer relies on: cited by the model (``cited``), by attribution, or ``quoted`` from it."""

    n: int
    passage: Passage
    kind: str

    def as_json(self) -> dict[str, Any]:
        """The citation as the CLI and API show it."""
        return {**self.passage.as_json(self.n), "kind": self.kind}


@dataclass
class Answer:
    """The finished answer with everything needed to check it."""

    question: str
    query: str
    text: str
    refused: bool
    backend: str
    citations: list[Citation] = field(default_factory=list)
    sentences: list[SentenceSupport] = field(default_factory=list)
    retrieved: list[Passage] = field(default_factory=list)
    timings: dict[str, float | None] = field(default_factory=dict)
    refusal_reason: str | None = None
    error: str | None = None
    quoted: str | None = None
    """Why the answer quotes the passages instead of the model (it wrote nothing usable); None otherwise."""
    evidence: list[Quote] = field(default_factory=list)
    """The passages' best sentences, sent before the model's answer (``Evidence``)."""
    indexing: str | None = None
    """Files searched were still being embedded (``indexing_note``); None when every file was."""

    def support(self, citation: Citation) -> list[str]:
        """The sentences of a cited passage that back this answer, to check it without opening the document."""
        if citation.kind == "quoted":  # the answer is the passage's own sentences already
            return []
        return supporting_sentences(citation.passage.chunk.text, self.query, self.text)

    def as_json(self) -> dict[str, Any]:
        """The ``ask --json`` shape."""
        return {
            "question": self.question, "query": self.query, "answer": self.text, "refused": self.refused,
            "refusal_reason": self.refusal_reason, "backend": self.backend, "error": self.error,
            "quoted": self.quoted, "indexing": self.indexing,
            "evidence": [{"text": q.text, "n": q.n} for q in self.evidence],
            "citations": [{**c.as_json(), "support": self.support(c)} for c in self.citations],
            "sentences": [{"text": s.text, "status": s.status, "passages": s.passages} for s in self.sentences],
            "retrieved": [p.as_json(i + 1) for i, p in enumerate(self.retrieved)],
            "timings": self.rounded_timings(),
        }

    def rounded_timings(self) -> dict[str, float | None]:
        """How long each step took, in milliseconds to one decimal (None: the step did not happen)."""
        return {k: (round(v, 1) if v is not None else None) for k, v in self.timings.items()}


@dataclass(frozen=True)
class Done:
    """The last event of every question."""

    answer: Answer


Event = Status | Sources | Evidence | Token | Done
