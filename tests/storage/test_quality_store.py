"""The quality loop's tables and queries on SQLite and PostgreSQL: migration 0007 and what the figures read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from sqlalchemy import inspect, text

from storage.account_store import AccountStore
from storage.chat_store import ChatStore
from storage.db import Database, alembic_config
from storage.documents import DocumentStore
from storage.errors import StorageError
from storage.quality import NewExpected, QualityStore


def _expected(message_id: int | None, answer: str | None = "Economy class.") -> NewExpected:
    return NewExpected("hr", message_id, "Which class do we fly?", answer, answer is not None, "marked_down",
                       None, "travel.pdf" if answer else None, 2 if answer else None, None)


def test_migration_0007_adds_expected_answers_beside_existing_chats(db_url: str) -> None:
    db = Database(db_url)
    try:
        config = alembic_config()
        with db.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "0006")
        with db.engine.begin() as conn:
            conn.execute(text("INSERT INTO collections (id, name, created_at) VALUES (1, 'hr', CURRENT_TIMESTAMP)"))
        db.migrate()
        assert db.schema_version() == "0012"
        assert "expected_answers" in inspect(db.engine).get_table_names()
        QualityStore(db).save_expected(_expected(None))
        assert [e.question for e in QualityStore(db).expected("hr")] == ["Which class do we fly?"]
    finally:
        db.dispose()


@pytest.fixture
def asked(db: Database) -> tuple[Database, int, int, int]:
    """A conversation in hr with a refused question, an answered one rated down and one rated up."""
    DocumentStore(db).collection_id("hr", create=True)
    user = AccountStore(db).add_user("alice", "x", "user")
    chats = ChatStore(db)
    chat = chats.create(user, "travel", ["hr"])
    refused = chats.add_message(chat, "Who is the CEO?", "I could not find this.", "none", {"refused": True})
    down = chats.add_message(chat, "Which class do we fly?", "Business.", "m", {"refused": False, "sources": []})
    up = chats.add_message(chat, "Who books trains?", "The travel desk.", "m", {})
    for message_id, helpful in ((down, False), (up, True)):
        message = chats.message(message_id)
        assert message is not None
        chats.add_feedback(message, user, helpful, "wrong class" if not helpful else "")
    return db, refused, down, up


def test_figures_read_questions_refusals_and_ratings_with_their_collections(
    asked: tuple[Database, int, int, int],
) -> None:
    db, refused, down, up = asked
    store = QualityStore(db)
    since = datetime.now(UTC) - timedelta(days=1)
    assert {(a.message_id, a.refused, tuple(a.collections)) for a in store.asked(since)} == {
        (refused, True, ("hr",)), (down, False, ("hr",)), (up, False, ("hr",))}
    assert {(r.message_id, r.helpful) for r in store.ratings(since)} == {(down, False), (up, True)}
    assert store.asked(datetime.now(UTC) + timedelta(minutes=1)) == []
    problems = store.problems(10)
    assert [p.message_id for p in problems] == [down, refused]
    assert problems[0].marked_down == 1 and problems[0].comment == "wrong class"
    assert [p.message_id for p in store.problems(10, refused)] == [refused]
    assert store.problems(10, up) == []


def test_an_expected_answer_is_replaced_and_outlives_its_conversation(asked: tuple[Database, int, int, int]) -> None:
    db, _refused, down, _up = asked
    store = QualityStore(db)
    store.save_expected(_expected(down, "Business class."))
    store.save_expected(_expected(down, "Economy class."))
    assert [(e.answer, e.file, e.page, e.message_id) for e in store.expected()] == [
        ("Economy class.", "travel.pdf", 2, down)]
    chat = ChatStore(db).message(down)
    assert chat is not None
    ChatStore(db).delete(chat.chat_id)
    assert [(e.answer, e.message_id) for e in store.expected("hr")] == [("Economy class.", None)]
    assert store.expected("payroll") == []
    with pytest.raises(StorageError, match="no collection 'payroll'"):
        store.save_expected(NewExpected("payroll", None, "q", None, False, "refused", None, None, None, None))
