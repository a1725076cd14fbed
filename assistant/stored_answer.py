"""A stored answer as typed records: its passages, its checked sentences, and the message as a user sees it.

``StoredAnswer`` is kept as JSON in a chat message's ``payload`` column, in the shape the
untyped dicts had before it (``citations`` included, though it is derived from ``sources``),
so that every row stored before reads back, and a row written now reads in older code.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, computed_field

from assistant.citations import SentenceSupport


class ShownSource(BaseModel):
    """A passage as the page shows it: numbered from 1, with the page text around it and how the answer used it."""

    model_config = ConfigDict(extra="ignore")  # a field a later version adds must not break an older reader

    n: int
    file: str = ""
    page: int | None = None
    heading: str | None = None
    text: str = ""
    score: float = 0.0
    rerank: float | None = None
    span: list[int] = Field(default_factory=list, description="The passage's first and last character in its page.")
    collection: str = ""
    chunk_id: int
    document_id: int | None = None
    kind: str | None = Field(default=None, description="cited, attributed or quoted; None: the answer left it out.")
    before: str = Field(default="", description="The page's text just before the passage.")
    marked: str = Field(default="", description="The passage exactly as the document viewer marks it.")
    after: str = Field(default="", description="The page's text just after the passage.")
    support: list[str] = Field(default_factory=list, description="A cited passage's sentences that back the answer.")


class MarkedSentence(BaseModel):
    """An answer sentence and what backs it (``assistant.citations.SentenceSupport`` as stored)."""

    model_config = ConfigDict(extra="ignore")

    text: str
    status: str = "unsupported"
    passages: list[int] = Field(default_factory=list)

    @classmethod
    def of(cls, sentence: SentenceSupport) -> MarkedSentence:
        """The stored form of a checked sentence."""
        return cls(text=sentence.text, status=sentence.status, passages=list(sentence.passages))


class StoredAnswer(BaseModel):
    """What a chat message keeps besides its question, answer text and backend."""

    model_config = ConfigDict(extra="ignore")

    sources: list[ShownSource] = Field(default_factory=list)
    sentences: list[MarkedSentence] = Field(default_factory=list)
    refused: bool = False
    refusal_reason: str | None = None
    error: str | None = None
    quoted: str | None = Field(default=None, description="Why the answer quotes the passages instead of the model.")
    timings: dict[str, float | None] = Field(default_factory=dict)
    searched: str | None = Field(default=None, description="The question searched, if a follow-up or typo rewrote it.")
    indexing: str | None = Field(
        default=None, description="Files searched were still being embedded, so keyword search alone found them.")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def citations(self) -> list[ShownSource]:
        """The passages the answer relies on, in source order."""
        return [s for s in self.sources if s.kind]


class ShownMessage(StoredAnswer):
    """A stored question and answer as its reader sees it now; ``withheld`` when its sources are no longer readable."""

    id: int
    question: str
    answer: str
    backend: str = ""
    withheld: bool = False
