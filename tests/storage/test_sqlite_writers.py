"""SQLite writers in one process take turns in line instead of sleeping in SQLite's busy handler."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from storage.db import Database


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Database:
    database = Database(f"sqlite:///{tmp_path / 'w.db'}")
    with database.engine.begin() as conn:
        conn.execute(text("CREATE TABLE notes (id INTEGER PRIMARY KEY, writer INTEGER, n INTEGER)"))
    return database


def _count(database: Database) -> int:
    with database.session() as s:
        return int(s.execute(text("SELECT count(*) FROM notes")).scalar_one())


def test_many_threads_reading_then_writing_lose_nothing(sqlite_db: Database) -> None:
    def write(writer: int) -> None:
        for n in range(30):
            with sqlite_db.session() as s:
                s.execute(text("SELECT count(*) FROM notes WHERE writer = :w"), {"w": writer}).scalar()
                s.execute(text("INSERT INTO notes (writer, n) VALUES (:w, :n)"), {"w": writer, "n": n})
                s.execute(text("UPDATE notes SET n = n + 0 WHERE writer = :w"), {"w": writer})

    with ThreadPoolExecutor(max_workers=24) as pool:
        list(pool.map(write, range(24)))  # re-raises any "database is locked"
    assert _count(sqlite_db) == 24 * 30


def test_a_failed_write_lets_the_next_writer_in_at_once(sqlite_db: Database) -> None:
    with sqlite_db.session() as s:
        s.execute(text("INSERT INTO notes (id, writer, n) VALUES (1, 0, 0)"))
    with pytest.raises(IntegrityError), sqlite_db.session() as s:
        s.execute(text("INSERT INTO notes (id, writer, n) VALUES (1, 0, 0)"))  # duplicate key: rolled back

    done = threading.Event()

    def other_thread_writes() -> None:
        with sqlite_db.session() as s:
            s.execute(text("INSERT INTO notes (writer, n) VALUES (1, 1)"))
        done.set()

    started = time.monotonic()
    threading.Thread(target=other_thread_writes).start()
    assert done.wait(5), "the rolled-back writer still holds the write turn"
    assert time.monotonic() - started < 5
    assert _count(sqlite_db) == 2


def test_a_thread_may_write_from_a_second_session_while_its_first_is_open(sqlite_db: Database) -> None:
    with sqlite_db.session() as outer:
        outer.execute(text("SELECT count(*) FROM notes")).scalar()
        with sqlite_db.session() as inner:  # a store called from inside another store's session
            inner.execute(text("INSERT INTO notes (writer, n) VALUES (2, 2)"))
    assert _count(sqlite_db) == 1
