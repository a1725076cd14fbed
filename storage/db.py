"""The SQLAlchemy engine, sessions and migrations for one database URL."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session, sessionmaker

from storage.errors import ConfigError

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
BUSY_TIMEOUT_S = 30  # how long a SQLite writer waits for the file lock before reporting it
MIGRATION_LOCK_KEY = 0x456E636C  # "Encl": the advisory lock held while migrating PostgreSQL


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_S * 1000}")
    cursor.close()


def pool_options(dialect: str) -> dict[str, Any]:
    """Connection pool settings: enough pooled connections for the web app's worker threads.

    A server database checks a connection before lending it (the server may have restarted);
    a SQLite file cannot go away under us, so that round trip would be waste on every query.
    Connections beyond the pool are opened and closed per use, which for SQLite also reruns
    the pragmas, so the pool holds as many as the busiest moments of the web app use.
    """
    if dialect == "sqlite":
        return {"pool_pre_ping": False, "pool_size": 20, "max_overflow": 40}
    return {"pool_pre_ping": True, "pool_size": 10, "max_overflow": 30}


class SqliteWriters:
    """One writer at a time in this process, waiting in line rather than in SQLite's busy handler.

    SQLite lets one connection write at a time. A connection that finds the file locked sleeps
    in steps of up to 100 ms before it tries again, so under many concurrent requests most of a
    request's time went to those sleeps while the lock sat free. Here a thread takes a lock
    before its connection's first write statement and gives it back when the connection goes
    back to the pool (after its commit or rollback), so the next writer starts the moment the
    last one finished. Other processes (a worker, the command line) still meet the busy
    handler. Reads never wait: WAL lets them run beside a writer.
    """

    def __init__(self, engine: Engine) -> None:
        self._lock = threading.RLock()  # re-entrant: a thread never waits for itself
        event.listen(engine, "before_cursor_execute", self._before_execute)
        event.listen(engine.pool, "checkin", self._checkin)

    def _before_execute(self, connection: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        info = connection.connection.info
        if not info.get("writing") and statement.lstrip()[:6].upper() not in ("SELECT", "PRAGMA"):
            # Past SQLite's own busy timeout, go on without a turn: SQLite then reports the lock as usual.
            info["writing"] = self._lock.acquire(timeout=BUSY_TIMEOUT_S)

    def _checkin(self, _dbapi_connection: Any, record: Any) -> None:
        if record is not None and record.info.pop("writing", False):
            self._lock.release()


def alembic_config() -> Any:
    """Alembic's configuration for this project's migrations."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


class Database:
    """An engine plus a session factory; SQLite gets WAL, foreign keys and a busy timeout."""

    def __init__(self, url: str) -> None:
        try:
            parsed = make_url(url)
        except ArgumentError as exc:
            raise ConfigError(f"database_url {url!r} is not a SQLAlchemy URL: {exc}") from exc
        self.url = url
        self.dialect = parsed.get_backend_name()
        if self.dialect == "sqlite" and parsed.database not in (None, "", ":memory:"):
            database = Path(parsed.database)
            database.parent.mkdir(parents=True, exist_ok=True)
            # Created private before SQLite opens it: its WAL and shared-memory files take the same mode.
            os.close(os.open(database, os.O_CREAT | os.O_WRONLY, 0o600))
        self.engine: Engine = create_engine(url, **pool_options(self.dialect))
        if self.dialect == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
            SqliteWriters(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def migrate(self) -> None:
        """Bring the schema to the newest version with Alembic."""
        from alembic import command

        config = alembic_config()
        with self.engine.begin() as connection:
            if self.dialect == "postgresql":
                # Several app processes and a worker may start at once: one migrates, the others wait.
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    def schema_version(self) -> str | None:
        """The Alembic revision the database is at, or None before the first migration."""
        from alembic.runtime.migration import MigrationContext

        with self.engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session whose transaction commits on success and rolls back on error."""
        with self._sessions() as session, session.begin():
            yield session

    def dispose(self) -> None:
        """Close pooled connections."""
        self.engine.dispose()
