"""Index versions: atomic saves, reconciliation with the database, rebuilds of damaged files."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from storage.db import Database
from storage.documents import ChunkDraft, DocumentStore, NewDocument
from storage.index_store import IndexStore

DIM = 8


def _store_with_chunks(db: Database, texts: list[str]) -> tuple[DocumentStore, int, list[int]]:
    store = DocumentStore(db)
    cid = store.collection_id("default", create=True)
    assert cid is not None
    rng = np.random.default_rng(0)
    chunks = [ChunkDraft(0, 1, "", t, 0, len(t), 3) for t in texts]
    vectors = rng.normal(size=(len(texts), DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    _, ids = store.write_documents(cid, "/r", [NewDocument("a.md", "h", 1, 1, None, [(1, "x")], chunks, vectors)])
    return store, cid, ids


def test_open_builds_index_from_database_and_saves_it(db: Database, tmp_path: Path) -> None:
    store, cid, ids = _store_with_chunks(db, ["red apples", "green pears", "blue berries"])
    index = IndexStore(tmp_path, DIM).open(cid, store)
    assert index.repair.added == 3 and index.version == 1
    assert sorted(index.vectors.ids().tolist()) == sorted(ids)
    reopened = IndexStore(tmp_path, DIM).open(cid, store)
    assert not reopened.repair.changed
    assert reopened.bm25.search("pears", 1)[0][0] == ids[1]


def test_chunks_missing_from_db_are_removed_on_open(db: Database, tmp_path: Path) -> None:
    store, cid, _ids = _store_with_chunks(db, ["one", "two", "three"])
    indexes = IndexStore(tmp_path, DIM)
    indexes.open(cid, store)
    store.delete_documents([store.known_documents(cid, "/r")["a.md"].id])
    index = indexes.open(cid, store)
    assert index.repair.removed == 3
    assert len(index) == 0 and len(index.bm25) == 0


def test_damaged_index_file_is_rebuilt_not_served_empty(db: Database, tmp_path: Path) -> None:
    store, cid, ids = _store_with_chunks(db, ["alpha", "beta"])
    indexes = IndexStore(tmp_path, DIM)
    first = indexes.open(cid, store)
    live = tmp_path / f"c{cid}" / f"v{first.version:08d}" / "vectors.faiss"
    live.write_bytes(live.read_bytes()[:40])
    index = indexes.open(cid, store)
    assert index.repair.rebuilt_reason and "damaged" in index.repair.rebuilt_reason
    assert sorted(index.vectors.ids().tolist()) == sorted(ids)


def test_save_keeps_one_previous_version_and_no_staging_leftovers(db: Database, tmp_path: Path) -> None:
    store, cid, _ = _store_with_chunks(db, ["alpha"])
    indexes = IndexStore(tmp_path, DIM)
    index = indexes.open(cid, store)
    (tmp_path / f"c{cid}" / "v00000099.tmp-1").mkdir()  # a crashed save of another process
    for _ in range(3):
        indexes.save(index)
    names = sorted(p.name for p in (tmp_path / f"c{cid}").iterdir())
    assert names == ["CURRENT", f"v{index.version - 1:08d}", f"v{index.version:08d}"]
