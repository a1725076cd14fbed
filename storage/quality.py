"""The quality loop's reads and writes: what was asked, refused and rated, and the answers admins expect.

``ExpectedAnswer`` rows (migration 0007) are the install's own QA set, kept per collection. Each
keeps its own copy of the question, so it outlives the conversation it came from (then
``message_id`` is NULL).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text, false, or_, select
from sqlalchemy.orm import Mapped, mapped_column

from storage.accounts import Stamp
from storage.chats import Chat, Feedback, StoredMessage
from storage.db import Database
from storage.errors import StorageError
from storage.models import Base, Collection, utcnow


class ExpectedAnswer(Base):
    """The answer an admin expects to a question people asked, and the page that holds it."""

    __tablename__ = "expected_answers"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"), index=True)
    message_id: Mapped[int | None] = mapped_column(
        ForeignKey("chat_messages.id", ondelete="SET NULL"), unique=True, nullable=True)
    question: Mapped[str] = mapped_column(Text)
    answer: Mapped[str | None] = mapped_column(Text, nullable=True, doc="NULL: the documents do not hold it.")
    answerable: Mapped[bool] = mapped_column(Boolean)
    origin: Mapped[str] = mapped_column(String(20), doc="refused or marked_down: why the question was listed.")
    document_id: Mapped[int | None] = mapped_column(ForeignKey("documents.id", ondelete="SET NULL"), nullable=True)
    file: Mapped[str | None] = mapped_column(Text, nullable=True, doc="The document's path, kept if it is removed.")
    page: Mapped[int | None] = mapped_column(Integer, nullable=True)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(Stamp, default=utcnow)


@dataclass(frozen=True)
class AskedRecord:
    """One stored question, as the figures count it: when, whether refused, the collections it searched."""

    message_id: int
    at: datetime
    refused: bool
    collections: list[str]


@dataclass(frozen=True)
class RatingRecord:
    """One thumbs up or down, when, and the collections of the conversation it rates."""

    message_id: int
    at: datetime
    helpful: bool
    collections: list[str]


@dataclass(frozen=True)
class ProblemRecord:
    """A question that was refused or marked down, with its stored answer (payload) and the newest comment."""

    message_id: int
    at: datetime
    question: str
    answer: str
    payload: dict[str, Any]
    collections: list[str]
    marked_down: int
    comment: str


@dataclass(frozen=True)
class NewExpected:
    """What an admin writes for a question; ``document_id``/``file`` None with ``answerable`` False."""

    collection: str
    message_id: int | None
    question: str
    answer: str | None
    answerable: bool
    origin: str
    document_id: int | None
    file: str | None
    page: int | None
    author_id: int | None


@dataclass(frozen=True)
class ExpectedRecord(NewExpected):
    """An admin's expected answer as stored, with the collection it belongs to and the document it cites."""

    id: int
    updated_at: datetime


def _refused() -> Any:
    return StoredMessage.payload["refused"].as_boolean()


class QualityStore:
    """Questions, refusals and ratings over a time window, and the expected answers, in the metadata database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def asked(self, since: datetime) -> list[AskedRecord]:
        """Every question stored since ``since`` (only the small columns: the figures read many rows)."""
        query = (select(StoredMessage.id, StoredMessage.created_at, _refused(), Chat.collections)
                 .join(Chat, Chat.id == StoredMessage.chat_id).where(StoredMessage.created_at >= since))
        with self.db.session() as s:
            return [AskedRecord(i, at, bool(refused), list(cols or [])) for i, at, refused, cols in s.execute(query)]

    def ratings(self, since: datetime) -> list[RatingRecord]:
        """Every thumbs up or down given since ``since``."""
        query = (select(Feedback.message_id, Feedback.created_at, Feedback.helpful, Chat.collections)
                 .join(StoredMessage, StoredMessage.id == Feedback.message_id)
                 .join(Chat, Chat.id == StoredMessage.chat_id).where(Feedback.created_at >= since))
        with self.db.session() as s:
            return [RatingRecord(i, at, bool(helpful), list(cols or [])) for i, at, helpful, cols in s.execute(query)]

    def problems(self, limit: int, message_id: int | None = None, offset: int = 0) -> list[ProblemRecord]:
        """The newest questions that were refused or rated down, newest first (or the one of ``message_id``)."""
        down = select(Feedback.message_id).where(Feedback.helpful == false())
        query = (select(StoredMessage, Chat.collections).join(Chat, Chat.id == StoredMessage.chat_id)
                 .where(or_(_refused(), StoredMessage.id.in_(down)))
                 .order_by(StoredMessage.id.desc()).limit(limit).offset(offset))
        if message_id is not None:
            query = query.where(StoredMessage.id == message_id)
        with self.db.session() as s:
            rows = list(s.execute(query))
            ids = [m.id for m, _ in rows]
            ratings = s.execute(select(Feedback.message_id, Feedback.comment)
                                .where(Feedback.helpful == false(), Feedback.message_id.in_(ids))
                                .order_by(Feedback.id))
            comments: dict[int, list[str]] = {}
            for message_id, comment in ratings:
                comments.setdefault(message_id, []).append(comment or "")
            return [ProblemRecord(m.id, m.created_at, m.question, m.answer, m.payload or {}, list(cols or []),
                                  len(comments.get(m.id, [])), next((c for c in reversed(comments.get(m.id, []))
                                                                     if c), ""))
                    for m, cols in rows]

    def save_expected(self, new: NewExpected) -> int:
        """Store an expected answer; a second one for the same question replaces the first."""
        with self.db.session() as s:
            collection_id = s.scalar(select(Collection.id).where(Collection.name == new.collection))
            if collection_id is None:
                raise StorageError(f"there is no collection {new.collection!r}")
            row = (s.scalar(select(ExpectedAnswer).where(ExpectedAnswer.message_id == new.message_id))
                   if new.message_id is not None else None) or ExpectedAnswer()
            row.collection_id, row.message_id, row.question = collection_id, new.message_id, new.question
            row.answer, row.answerable, row.origin = new.answer, new.answerable, new.origin
            row.document_id, row.file, row.page = new.document_id, new.file, new.page
            row.author_id, row.updated_at = new.author_id, utcnow()
            s.add(row)
            s.flush()
            return row.id

    def expected(self, collection: str | None = None) -> list[ExpectedRecord]:
        """The expected answers of one collection (or all), oldest first."""
        query = (select(ExpectedAnswer, Collection.name).join(Collection, Collection.id == ExpectedAnswer.collection_id)
                 .order_by(ExpectedAnswer.id))
        if collection is not None:
            query = query.where(Collection.name == collection)
        with self.db.session() as s:
            return [ExpectedRecord(name, e.message_id, e.question, e.answer, e.answerable, e.origin, e.document_id,
                                   e.file, e.page, e.author_id, id=e.id, updated_at=e.updated_at)
                    for e, name in s.execute(query)]
