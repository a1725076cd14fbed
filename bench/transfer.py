"""Backup, restore and copy-database on a synthesized install, each beside a baseline from the same run.

    .venv/bin/python bench/transfer.py --postgres URL [--chunks 50000] [--json-out PATH]

The install: ``--chunks`` chunks of 384-dim embeddings in 100-chunk documents, written
through ``DocumentStore`` (the ingest write path), with its FAISS + BM25 index saved.

- ``backup`` (``create_backup``) beside a plain ``tar czf`` of the same data dir (no
  snapshot, no checksums): what consistency and verification cost.
- ``restore`` (``unpack_backup`` + ``restore_backup``) beside extracting that plain tar.
- ``copy-database`` SQLite -> PostgreSQL (``copy_database``: batched INSERTs in one
  transaction, then counts) beside PostgreSQL's fastest bulk path, ``COPY FROM STDIN`` of
  the same rows through psycopg, into another empty database.
"""

from __future__ import annotations

import argparse
import json
import sys
import tarfile
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.machine import load_average, machine_info

DIM = 384
PER_DOC = 100


def synthesize(data_dir: Path, chunks: int) -> None:
    """A SQLite install with ``chunks`` chunks and a saved index."""
    from storage.db import Database
    from storage.documents import ChunkDraft, DocumentStore, NewDocument
    from storage.index_store import IndexStore

    db = Database(f"sqlite:///{data_dir / 'enclave.db'}")
    db.migrate()
    store = DocumentStore(db)
    cid = store.collection_id("bench", create=True)
    assert cid is not None
    rng = np.random.default_rng(0)
    words = np.array(["leave", "policy", "benefit", "plan", "claim", "travel", "expense", "laptop", "badge"])
    for d in range(chunks // PER_DOC):
        drafts = [ChunkDraft(0, 1, "Section", " ".join(rng.choice(words, 60)), 0, 400, 80) for _ in range(PER_DOC)]
        vectors = rng.standard_normal((PER_DOC, DIM)).astype(np.float32)
        store.write_documents(cid, "/srv/bench", [NewDocument(f"doc{d}.pdf", f"{d:064x}", 1000, 1, None,
                                                              [(1, "text")], drafts, vectors)])
    IndexStore(data_dir / "index", DIM).open(cid, store)  # reconciles from stored embeddings and saves
    db.dispose()


@contextmanager
def new_database(server: str) -> Iterator[str]:
    """An empty database on the server, dropped afterwards."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"enclave_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def timed(fn: Any, *args: Any) -> float:
    start = time.perf_counter()
    fn(*args)
    return round(time.perf_counter() - start, 2)


def copy_with_pg_copy(sqlite_url: str, pg_url: str) -> None:
    """Baseline: every table through COPY FROM STDIN, in foreign-key order, one transaction."""
    from psycopg.types.json import Json
    from sqlalchemy import JSON, select
    from sqlalchemy.engine import make_url

    from storage.db import Database
    from storage.transfer import model_tables

    target = Database(pg_url)
    target.migrate()
    target.dispose()
    source = Database(sqlite_url)
    dsn = make_url(pg_url).set(drivername="postgresql").render_as_string(hide_password=False)
    import psycopg

    with source.engine.connect() as src, psycopg.connect(dsn) as pg, pg.cursor() as cur:
        for table in model_tables():
            names = [c.name for c in table.columns]
            json_cols = {i for i, c in enumerate(table.columns) if isinstance(c.type, JSON)}
            cols = ", ".join(f'"{n}"' for n in names)
            with cur.copy(f'COPY "{table.name}" ({cols}) FROM STDIN') as copy:
                for row in src.execute(select(table)):
                    copy.write_row([Json(v) if i in json_cols else v for i, v in enumerate(row)])
    source.dispose()


def run(chunks: int, server: str) -> dict[str, Any]:
    from assistant.backup import create_backup, restore_backup, unpack_backup
    from assistant.settings import load_settings
    from storage.db import Database
    from storage.transfer import copy_database

    with tempfile.TemporaryDirectory(prefix="enclave-bench-") as scratch:
        root = Path(scratch)
        data = root / "data"
        data.mkdir()
        synth_s = timed(synthesize, data, chunks)
        settings = load_settings(data_dir=data)
        backup_s = timed(create_backup, settings, root / "b.tar.gz")

        def plain_tar() -> None:
            with tarfile.open(root / "plain.tar.gz", "w:gz", compresslevel=6) as tar:
                tar.add(data, "data")

        tar_s = timed(plain_tar)

        def restore() -> None:
            with unpack_backup(root / "b.tar.gz") as unpacked:
                restore_backup(unpacked, load_settings(data_dir=root / "restored"))

        def plain_untar() -> None:
            with tarfile.open(root / "plain.tar.gz") as tar:
                tar.extractall(root / "untarred", filter="data")

        restore_s, untar_s = timed(restore), timed(plain_untar)
        with new_database(server) as first, new_database(server) as second:
            source, target = Database(settings.db_url), Database(first)
            copy_s = timed(copy_database, source, target)
            source.dispose()
            target.dispose()
            pg_copy_s = timed(copy_with_pg_copy, settings.db_url, second)
        return {"chunks": chunks, "synthesize_s": synth_s,
                "archive_mb": round((root / "b.tar.gz").stat().st_size / 2**20, 1),
                "backup_s": backup_s, "baseline_plain_tar_s": tar_s,
                "restore_s": restore_s, "baseline_plain_untar_s": untar_s,
                "copy_database_s": copy_s, "baseline_pg_copy_s": pg_copy_s,
                "copy_database_chunks_per_s": round(chunks / copy_s)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", required=True, help="SQLAlchemy URL of a server where databases may be created")
    parser.add_argument("--chunks", type=int, default=50_000)
    parser.add_argument("--json-out", type=Path, default=Path(__file__).parent / "results" / "transfer.json")
    args = parser.parse_args()
    before = load_average()
    figures = run(args.chunks, args.postgres)
    result = {"command": " ".join(["bench/transfer.py", *sys.argv[1:]]), "machine": machine_info(),
              "load_before": before, "load_after": load_average(), "figures": figures}
    for key, value in figures.items():
        print(f"{key:>28}: {value}")
    args.json_out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
