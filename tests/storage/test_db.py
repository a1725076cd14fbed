"""Schema migrations and the document store on SQLite and PostgreSQL."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import inspect

from assistant.errors import ConfigError
from storage.db import Database
from storage.documents import ChunkDraft, DocumentStore, NewDocument


def _doc(path: str, digest: str, texts: list[str]) -> NewDocument:
    chunks = [ChunkDraft(0, 1, "Intro", t, 0, len(t), len(t.split())) for t in texts]
    vectors = np.vstack([np.full(4, i, dtype=np.float32) for i in range(len(texts))])
    return NewDocument(path, digest, 10, 1, None, [(1, " ".join(texts))], chunks, vectors)


def test_migrate_creates_schema_at_head(db: Database) -> None:
    assert db.schema_version() == "0012"
    tables = set(inspect(db.engine).get_table_names())
    assert {"collections", "documents", "document_pages", "chunks", "ingest_jobs",
            "ingest_job_files", "expected_answers", "sources"} <= tables
    db.migrate()  # running again is a no-op
    assert db.schema_version() == "0012"


def test_sqlite_runs_in_wal_mode(tmp_path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'x.db'}")
    database.migrate()
    with database.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    database.dispose()


def test_bad_url_is_a_clear_config_error() -> None:
    with pytest.raises(ConfigError, match="not a SQLAlchemy URL"):
        Database("not a url")


def test_replacing_a_document_leaves_no_duplicate_chunks(db: Database) -> None:
    store = DocumentStore(db)
    cid = store.collection_id("hr", create=True)
    assert cid is not None
    removed, first = store.write_documents(cid, "/share", [_doc("a.md", "h1", ["one", "two"])])
    assert removed == [] and len(first) == 2
    removed, second = store.write_documents(cid, "/share", [_doc("a.md", "h2", ["three"])])
    assert sorted(removed) == sorted(first)
    assert store.chunk_ids(cid).tolist() == second
    assert set(store.chunks_by_id(first + second)) == set(second)
    assert store.known_documents(cid, "/share")["a.md"].content_hash == "h2"


def test_embeddings_round_trip_for_index_rebuilds(db: Database) -> None:
    store = DocumentStore(db)
    cid = store.collection_id("default", create=True)
    assert cid is not None
    _, ids = store.write_documents(cid, "/r", [_doc("guide.md", "h", ["alpha", "beta"])])
    [(got_ids, vectors, texts)] = list(store.iter_chunk_payloads(ids))
    order = np.argsort(got_ids)
    assert vectors[order][:, 0].tolist() == [0.0, 1.0]
    assert [texts[i] for i in order] == ["guide.md | Intro\nalpha", "guide.md | Intro\nbeta"]


def test_deleting_documents_removes_their_chunks_and_pages(db: Database) -> None:
    store = DocumentStore(db)
    cid = store.collection_id("default", create=True)
    assert cid is not None
    store.write_documents(cid, "/r", [_doc("a.md", "h1", ["x"]), _doc("b.md", "h2", ["y", "z"])])
    known = store.known_documents(cid, "/r")
    removed = store.delete_documents([known["b.md"].id])
    assert len(removed) == 2
    assert list(store.known_documents(cid, "/r")) == ["a.md"]
    assert store.status() == [{"name": "default", "documents": 1, "chunks": 1, "pages": 1}]


def test_migration_0012_keeps_embedded_chunks_and_lets_new_ones_wait(db_url: str) -> None:
    from alembic import command

    from storage.db import alembic_config

    database = Database(db_url)
    try:
        config = alembic_config()
        with database.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "0011")
        store = DocumentStore(database)
        cid = store.collection_id("hr", create=True)
        assert cid is not None
        _, embedded = store.write_documents(cid, "/share", [_doc("a.md", "a" * 64, ["paid leave policy"])])
        database.migrate()
        assert store.chunk_ids(cid, embedded=True).tolist() == embedded  # the table copy kept the embedding
        waiting = _doc("b.md", "b" * 64, ["parking permits"])
        waiting.embeddings = None
        _, added = store.write_documents(cid, "/share", [waiting])
        assert store.unembedded(cid, 10) == added and store.files_waiting() == {cid: 1}
        store.update_embeddings(np.array(added), np.ones((1, 4), dtype=np.float32))
        assert store.files_waiting() == {} and len(store.chunk_ids(cid, embedded=True)) == 2
    finally:
        database.dispose()
