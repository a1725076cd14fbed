"""Reads and writes of chats, their messages and feedback on answers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update

from storage.chats import Chat, Feedback, StoredMessage
from storage.db import Database
from storage.models import utcnow


@dataclass(frozen=True)
class ChatRecord:
    """A conversation's header."""

    id: int
    user_id: int
    title: str
    collections: list[str]
    updated_at: datetime


@dataclass(frozen=True)
class MessageRecord:
    """A stored question and answer."""

    id: int
    chat_id: int
    ordinal: int
    question: str
    answer: str
    backend: str
    payload: dict[str, Any]


def _chat(row: Chat) -> ChatRecord:
    return ChatRecord(row.id, row.user_id, row.title, list(row.collections or []), row.updated_at)


def _message(row: StoredMessage) -> MessageRecord:
    return MessageRecord(row.id, row.chat_id, row.ordinal, row.question, row.answer, row.backend, row.payload or {})


class ChatStore:
    """Chats, messages and feedback in the metadata database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, user_id: int, title: str, collections: list[str]) -> int:
        """Start a conversation."""
        with self.db.session() as s:
            row = Chat(user_id=user_id, title=title[:200], collections=collections, updated_at=utcnow())
            s.add(row)
            s.flush()
            return row.id

    def chat(self, chat_id: int) -> ChatRecord | None:
        """A conversation by id."""
        with self.db.session() as s:
            row = s.get(Chat, chat_id)
            return _chat(row) if row else None

    def chats(self, user_id: int) -> list[ChatRecord]:
        """A user's conversations, most recently active first."""
        with self.db.session() as s:
            query = select(Chat).where(Chat.user_id == user_id).order_by(Chat.updated_at.desc(), Chat.id.desc())
            return [_chat(r) for r in s.scalars(query)]

    def update(self, chat_id: int, **values: Any) -> None:
        """Change a conversation's title or collections."""
        with self.db.session() as s:
            s.execute(update(Chat).where(Chat.id == chat_id).values(**values))

    def delete(self, chat_id: int) -> None:
        """Remove a conversation with its messages and their feedback."""
        with self.db.session() as s:
            ids = select(StoredMessage.id).where(StoredMessage.chat_id == chat_id)
            s.execute(delete(Feedback).where(Feedback.message_id.in_(ids)))
            s.execute(delete(StoredMessage).where(StoredMessage.chat_id == chat_id))
            s.execute(delete(Chat).where(Chat.id == chat_id))

    def add_message(self, chat_id: int, question: str, answer: str, backend: str, payload: dict[str, Any]) -> int:
        """Append a question and its answer to a conversation."""
        with self.db.session() as s:
            last = s.scalar(select(func.max(StoredMessage.ordinal)).where(StoredMessage.chat_id == chat_id))
            row = StoredMessage(chat_id=chat_id, ordinal=(last or 0) + 1, question=question, answer=answer,
                                backend=backend, payload=payload)
            s.add(row)
            s.execute(update(Chat).where(Chat.id == chat_id).values(updated_at=utcnow()))
            s.flush()
            return row.id

    def messages(self, chat_id: int) -> list[MessageRecord]:
        """A conversation's messages in order."""
        with self.db.session() as s:
            query = select(StoredMessage).where(StoredMessage.chat_id == chat_id).order_by(StoredMessage.ordinal)
            return [_message(r) for r in s.scalars(query)]

    def message(self, message_id: int) -> MessageRecord | None:
        """One message by id."""
        with self.db.session() as s:
            row = s.get(StoredMessage, message_id)
            return _message(row) if row else None

    def add_feedback(self, message: MessageRecord, user_id: int, helpful: bool, comment: str) -> int:
        """Store a rating with the question, answer, citations and backend it is about."""
        with self.db.session() as s:
            row = Feedback(
                message_id=message.id, user_id=user_id, helpful=helpful, comment=comment, question=message.question,
                answer=message.answer, citations=message.payload.get("citations", []), backend=message.backend,
            )
            s.add(row)
            s.flush()
            return row.id

    def feedback(self, limit: int = 200) -> list[dict[str, Any]]:
        """The newest ratings first."""
        with self.db.session() as s:
            query = select(Feedback).order_by(Feedback.id.desc()).limit(limit)
            return [{"at": f.created_at, "helpful": f.helpful, "comment": f.comment, "question": f.question,
                     "answer": f.answer, "citations": f.citations, "backend": f.backend, "message_id": f.message_id}
                    for f in s.scalars(query)]
