"""Databases for storage tests: SQLite always, PostgreSQL when CI provides a server."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from storage.db import Database
from tests.conftest import postgres_url


def _fresh_postgres_database(url: str) -> Iterator[str]:
    """Create an empty database on the server for one test, and drop it afterwards."""
    name = f"enclave_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database URL of each supported kind."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'enclave.db'}"
    else:
        yield from _fresh_postgres_database(postgres_url())


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    """A migrated database."""
    database = Database(db_url)
    database.migrate()
    yield database
    database.dispose()
