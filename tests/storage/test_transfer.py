"""Copying a whole database into another: every table, every value, fresh ids afterwards, refusals."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import make_url

from assistant.errors import ConfigError
from storage.account_store import AccountStore
from storage.chat_store import ChatStore
from storage.db import Database
from storage.documents import ChunkDraft, DocumentStore, NewDocument
from storage.transfer import TargetNotEmpty, copy_database, model_tables

LOCKED_UNTIL = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.fixture
def source(tmp_path: Path) -> Iterator[Database]:
    """A SQLite install with a document, its chunks and embeddings, a user, a group grant and a chat."""
    db = Database(f"sqlite:///{tmp_path / 'source.db'}")
    db.migrate()
    docs, accounts, chats = DocumentStore(db), AccountStore(db), ChatStore(db)
    collection = docs.collection_id("hr", create=True)
    assert collection is not None
    drafts = [ChunkDraft(0, 1, "Leave", f"Employees accrue {n} days.", 0, 20, 5) for n in range(3)]
    embeddings = np.arange(3 * 8, dtype=np.float32).reshape(3, 8) / 10
    docs.write_documents(collection, "/srv/hr", [NewDocument("leave.pdf", "ab" * 32, 100, 1, "Leave", [(1, "text")],
                                                             drafts, embeddings)])
    docs.set_meta("embedding_model", "test-model")
    user = accounts.add_user("alice", "hash", "user")
    accounts.update_user(user, locked_until=LOCKED_UNTIL, failed_sign_ins=2)
    group = accounts.group_id("hr-readers", create=True)
    assert group is not None
    accounts.set_member(group, user, True)
    accounts.set_grant(collection, group, True)
    chat = chats.create(user, "Leave question", ["hr", "legal"])
    chats.add_message(chat, "How much leave?", "3 days [1]", "embedded", {"citations": [{"n": 1, "page": 1}]})
    yield db
    db.dispose()


@pytest.fixture
def target(db_url: str) -> Iterator[Database]:
    """An empty target; on PostgreSQL the session speaks Tokyo time, so a naive timestamp would shift."""
    if db_url.startswith("postgresql"):
        db_url = make_url(db_url).update_query_dict({"options": "-c TimeZone=Asia/Tokyo"}).render_as_string(
            hide_password=False)
    db = Database(db_url)
    yield db
    db.dispose()


def _rows(db: Database) -> dict[str, list[dict[str, Any]]]:
    with db.engine.connect() as conn:
        return {t.name: [_utc(dict(r._mapping)) for r in conn.execute(select(t).order_by(*t.primary_key.columns))]
                for t in model_tables()}


def _utc(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.replace(tzinfo=UTC) if v.tzinfo is None else v.astimezone(UTC)) if isinstance(v, datetime) else v
            for k, v in row.items()}


def test_every_table_and_value_arrives(source: Database, target: Database) -> None:
    seen: list[tuple[str, int, int]] = []
    copied = copy_database(source, target, progress=lambda *args: seen.append(args), batch_rows=2)
    assert set(copied) == {t.name for t in model_tables()}  # tables come from the models, none left out
    assert copied["chunks"] == 3 and copied["users"] == 1 and copied["chat_messages"] == 1
    assert ("chunks", 2, 3) in seen and ("chunks", 3, 3) in seen  # batches report as they land
    assert _rows(target) == _rows(source)
    alice = AccountStore(target).user("alice")
    assert alice is not None and alice.locked_until is not None
    assert _utc({"at": alice.locked_until})["at"] == LOCKED_UNTIL  # the same instant, whatever the zone
    stored = {int(i): v for ids, vecs, _texts in DocumentStore(target).iter_chunk_payloads([1, 2, 3])
              for i, v in zip(ids, vecs, strict=True)}
    assert np.array_equal(np.vstack([stored[i] for i in (1, 2, 3)]), np.arange(24, dtype=np.float32).reshape(3, 8) / 10)
    assert target.schema_version() == source.schema_version()


def test_rows_added_after_the_copy_get_new_ids(source: Database, target: Database) -> None:
    copy_database(source, target)
    accounts, chats = AccountStore(target), ChatStore(target)
    bob = accounts.add_user("bob", "hash", "user")
    alice = accounts.user("alice")
    assert alice is not None and bob > alice.id
    chat = chats.create(bob, "Another", ["hr"])
    assert chat > 1 and [c.title for c in chats.chats(bob)] == ["Another"]


def test_a_target_holding_data_is_refused_untouched(source: Database, target: Database) -> None:
    target.migrate()
    AccountStore(target).add_user("someone", "hash", "admin")
    with pytest.raises(TargetNotEmpty, match=r"already holds data: users \(1 rows\)"):
        copy_database(source, target)
    counts = {name: len(rows) for name, rows in _rows(target).items() if rows}
    assert counts == {"users": 1}


def test_a_table_no_model_describes_stops_the_copy(source: Database, target: Database) -> None:
    with source.engine.begin() as conn:
        conn.execute(text("CREATE TABLE legacy_notes (id INTEGER PRIMARY KEY, body TEXT)"))
    with pytest.raises(ConfigError, match="legacy_notes"):
        copy_database(source, target)
    assert not any(_rows(target).values())


def test_a_live_sqlite_source_is_read_from_one_snapshot(source: Database, target: Database, tmp_path: Path) -> None:
    # An uncommitted write in another connection is neither copied nor blocks the copy.
    with source.engine.connect() as writer:
        writer.execute(text("BEGIN IMMEDIATE"))
        writer.execute(text("INSERT INTO meta (key, value) VALUES ('half-written', 'x')"))
        copied = copy_database(source, target)
        writer.rollback()
    assert copied["meta"] == 1
    assert [r["key"] for r in _rows(target)["meta"]] == ["embedding_model"]
    assert list(tmp_path.glob(".enclave-snapshot-*")) == []  # the snapshot is cleaned up
