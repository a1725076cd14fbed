"""Copy every table of one Enclave database into another, empty one (SQLite <-> PostgreSQL).

The tables come from the SQLAlchemy metadata of every model module under ``storage``,
so a table added later is copied without touching this file; a table the database has
but no model describes stops the copy instead of being left behind. Both databases are
first brought to the newest Alembic revision, rows are copied in primary-key order in
batches inside one target transaction (all or nothing), PostgreSQL sequences are moved
past the copied ids, and the row counts are compared afterwards.

The source is read from a consistent snapshot while the app may keep writing: SQLite
through the online backup API (``sqlite3.Connection.backup``) into a temporary file,
PostgreSQL inside one REPEATABLE READ transaction.
"""

from __future__ import annotations

import importlib
import pkgutil
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, DateTime, Table, func, inspect, select, text, update
from sqlalchemy.engine import make_url

import storage
from storage.db import Database, alembic_config
from storage.errors import ConfigError
from storage.models import Base, Document
from storage.pg_index import INDEX_TABLES

BATCH_ROWS = 1000
ALEMBIC_TABLE = "alembic_version"
# Table name, rows copied so far, rows in the table.
CopyProgress = Callable[[str, int, int], None]


class TargetNotEmpty(ConfigError):
    """The database to copy or restore into already holds Enclave data."""


class TransferMismatch(ConfigError):
    """After a copy the target's row counts differ from the source's."""


def model_tables() -> list[Table]:
    """Every table the models describe, parents before children (foreign-key order)."""
    for module in pkgutil.iter_modules(storage.__path__, f"{storage.__name__}."):
        if not module.name.endswith(".migrations"):
            importlib.import_module(module.name)
    return list(Base.metadata.sorted_tables)


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL, or None for other databases and in-memory SQLite."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)  # type: ignore[arg-type]


def snapshot_sqlite(source: Path, dest: Path) -> None:
    """Copy a live SQLite database (WAL included) into ``dest`` with the online backup API, in one step."""
    if not source.is_file():
        raise ConfigError(f"SQLite database {source} does not exist")
    with _sqlite(source) as src, _sqlite(dest) as dst:
        src.backup(dst)  # pages=-1: one step under one read lock, so the copy is a single snapshot


@contextmanager
def _sqlite(path: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(path, timeout=30)
    try:
        yield conn
    finally:
        conn.close()


def known_revision(revision: str | None) -> bool:
    """Whether this version of Enclave has the schema migration ``revision`` (None: an empty schema)."""
    from alembic.script import ScriptDirectory

    if revision is None:
        return True
    return revision in {script.revision for script in ScriptDirectory.from_config(alembic_config()).walk_revisions()}


def table_counts(conn: Connection, tables: list[Table]) -> dict[str, int]:
    """Rows in each table."""
    return {t.name: int(conn.execute(select(func.count()).select_from(t)).scalar_one()) for t in tables}


def check_described(conn: Connection, tables: list[Table]) -> None:
    """Refuse a database holding tables no model describes (they would not be copied)."""
    known = {t.name for t in tables} | {ALEMBIC_TABLE} | set(INDEX_TABLES)  # the index is rebuilt from chunks
    unknown = sorted(set(inspect(conn).get_table_names()) - known)
    if unknown:
        raise ConfigError(
            f"the database has tables no Enclave model describes ({', '.join(unknown)}); "
            "upgrade Enclave to the version that created them before copying"
        )


def require_empty_database(db: Database, where: str) -> None:
    """Raise TargetNotEmpty if any Enclave table of ``db`` holds rows; changes nothing (no migration)."""
    with db.engine.connect() as conn:
        present = set(inspect(conn).get_table_names())
        require_empty(conn, [t for t in model_tables() if t.name in present], where)


def require_empty(conn: Connection, tables: list[Table], where: str) -> None:
    """Raise TargetNotEmpty naming the tables that hold rows."""
    full = {name: n for name, n in table_counts(conn, tables).items() if n}
    if full:
        listed = ", ".join(f"{name} ({n} rows)" for name, n in sorted(full.items()))
        raise TargetNotEmpty(
            f"{where} already holds data: {listed}. Copy into a new, empty database "
            "(for PostgreSQL: createdb enclave_new) and point the command at it"
        )


@contextmanager
def consistent_reader(db: Database) -> Iterator[Connection]:
    """A read-only connection that sees one snapshot of the whole database."""
    path = sqlite_path(db.url)
    if path is not None:
        # Beside the database: the same disk, which has room for a database of this size.
        with tempfile.TemporaryDirectory(prefix=".enclave-snapshot-", dir=path.parent) as scratch:
            copy = Path(scratch) / "snapshot.db"
            snapshot_sqlite(path, copy)
            snap = Database(f"sqlite:///{copy}")
            try:
                with snap.engine.connect() as conn:
                    yield conn
            finally:
                snap.dispose()
        return
    with db.engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn, conn.begin():
        yield conn


def copy_database(
    source: Database, target: Database, progress: CopyProgress | None = None, replace: bool = False,
    batch_rows: int = BATCH_ROWS,
) -> dict[str, int]:
    """Copy every table of ``source`` into the empty ``target``; returns the rows copied per table.

    Args:
        source: The database to read; a live one is read from a consistent snapshot.
        target: The database to fill; migrated to the newest revision first.
        progress: Called with (table, rows copied, rows in table) as batches land.
        replace: Delete the target's rows first (in the same transaction) instead of refusing.
        batch_rows: Rows read and inserted at a time.

    Raises:
        TargetNotEmpty: the target already holds rows and ``replace`` is false (nothing is written).
        TransferMismatch: the counts after the copy differ from the source's.
    """
    source.migrate()
    target.migrate()
    if source.schema_version() != target.schema_version():
        raise ConfigError(
            f"source is at schema {source.schema_version()}, target at {target.schema_version()}"
        )
    tables = model_tables()
    with consistent_reader(source) as src:
        check_described(src, tables)
        expected = table_counts(src, tables)
        with target.engine.begin() as dst:
            if replace:
                for table in reversed(tables):
                    dst.execute(table.delete())
            require_empty(dst, tables, "the target database")
            for table in tables:
                _copy_table(src, dst, table, expected[table.name], batch_rows, progress)
            if target.dialect == "postgresql":
                reset_sequences(dst, tables)
    verify_counts(target, tables, expected)
    return expected


def _copy_table(
    src: Connection, dst: Connection, table: Table, total: int, batch_rows: int, progress: CopyProgress | None
) -> None:
    done = 0
    if progress:
        progress(table.name, 0, total)
    query = select(table).order_by(*table.primary_key.columns)
    result = src.execution_options(stream_results=True, yield_per=batch_rows).execute(query)
    stamps = [c.name for c in table.columns if isinstance(c.type, DateTime)]
    for batch in result.partitions():
        rows = [_utc_stamps(dict(row._mapping), stamps) for row in batch]
        dst.execute(table.insert(), rows)
        done += len(rows)
        if progress:
            progress(table.name, done, total)


def _utc_stamps(row: dict[str, Any], stamps: list[str]) -> dict[str, Any]:
    # SQLite keeps timestamps without a zone (they are UTC); PostgreSQL returns them in the
    # session's zone. Both go across as UTC so no server zone setting can shift them.
    for name in stamps:
        value = row[name]
        if isinstance(value, datetime):
            row[name] = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return row


def reset_sequences(conn: Connection, tables: list[Table]) -> None:
    """Move each PostgreSQL id sequence past the largest copied id, so new rows do not collide."""
    quote = conn.dialect.identifier_preparer.quote
    for table in tables:
        column = table.autoincrement_column
        if column is None:
            continue
        name, col = quote(table.name), quote(column.name)
        conn.execute(
            text(
                f"SELECT setval(seq, COALESCE((SELECT MAX({col}) FROM {name}), 0) + 1, false) "
                "FROM pg_get_serial_sequence(:table, :column) AS seq WHERE seq IS NOT NULL"
            ),
            {"table": name, "column": column.name},
        )


def verify_counts(target: Database, tables: list[Table], expected: dict[str, int]) -> None:
    """Compare the target's row counts with the source snapshot's; raise TransferMismatch if any differs."""
    with target.engine.connect() as conn:
        found = table_counts(conn, tables)
    wrong = {name: (n, found[name]) for name, n in expected.items() if found[name] != n}
    if wrong:
        listed = ", ".join(f"{name}: {a} copied, {b} found" for name, (a, b) in sorted(wrong.items()))
        raise TransferMismatch(f"row counts differ after the copy: {listed}")


def rebase_document_roots(db: Database, old_root: Path, new_root: Path) -> int:
    """Point documents ingested from under ``old_root`` at the same place under ``new_root``.

    Used after a restore into another data dir: uploaded files move with the data dir.
    Returns how many documents were changed.
    """
    old, new = str(old_root), str(new_root)
    if old == new:
        return 0
    changed = 0
    with db.session() as session:
        rows = session.execute(select(Document.id, Document.root)).all()
        for doc_id, root in rows:
            if root == old or root.startswith(old + "/"):
                session.execute(update(Document).where(Document.id == doc_id).values(root=new + root[len(old):]))
                changed += 1
    return changed
