"""Serving processes pick up the index versions the one writer saves, and never read a half-written one."""

from __future__ import annotations

import multiprocessing
import threading
from pathlib import Path

import numpy as np

from storage.db import Database
from storage.documents import ChunkDraft, DocumentStore, NewDocument
from storage.index_reload import LiveIndexes
from storage.index_store import CollectionIndex, IndexStore

DIM = 8
VERSIONS_WRITTEN = 40


def _add_document(store: DocumentStore, cid: int, word: str, seed: int) -> np.ndarray:
    """Commit a one-chunk document whose text is ``word``; returns its chunk ids."""
    vector = np.random.default_rng(seed).normal(size=(1, DIM)).astype(np.float32)
    vector /= np.linalg.norm(vector)
    chunk = ChunkDraft(0, 1, "", word, 0, len(word), 1)
    document = NewDocument(f"{word}.md", word, 1, 1, None, [(1, word)], [chunk], vector)
    _, ids = store.write_documents(cid, "/r", [document])
    return np.array(ids, dtype=np.int64)


def _write(store: DocumentStore, index: CollectionIndex, indexes: IndexStore, word: str, seed: int) -> None:
    """What the worker does: commit to the database, add to its index, save a new version."""
    ids = _add_document(store, index.collection_id, word, seed)
    payload_ids, vectors, texts = next(store.iter_chunk_payloads(ids.tolist()))
    index.add(payload_ids, vectors, texts)
    indexes.save(index)


def _bm25_files(index: CollectionIndex, word: str) -> list[int]:
    return [i for i, _ in index.search_bm25(word, 5)]


def _handbook_saved_once(db: Database, folder: Path) -> tuple[DocumentStore, int, IndexStore, CollectionIndex]:
    """A collection with one document, saved as version 1 by the writer."""
    store = DocumentStore(db)
    cid = store.collection_id("handbook", create=True)
    assert cid is not None
    writer = IndexStore(folder, DIM)
    written = writer.open(cid, store)
    _write(store, written, writer, "alpha", 1)
    return store, cid, writer, written


def test_a_serving_process_swaps_in_new_versions_and_writes_none(db: Database, tmp_path: Path) -> None:
    store, cid, writer, written = _handbook_saved_once(db, tmp_path)
    serving = LiveIndexes(IndexStore(tmp_path, DIM), store, read_only=True, check_s=0)

    first = serving.get(cid)
    assert first.version == 1 and _bm25_files(first, "alpha")
    _write(store, written, writer, "bravo", 2)
    second = serving.get(cid)
    assert second.version == 2 and _bm25_files(second, "bravo"), "the new document is found without a restart"
    assert _bm25_files(first, "alpha") and not _bm25_files(first, "bravo"), "the old version kept answering"

    _add_document(store, cid, "charlie", 3)  # committed, not yet in a saved version: the writer is mid-job
    writer.save(written)
    third = serving.get(cid)
    assert third.version == 3 and third.repair.added == 1 and _bm25_files(third, "charlie")
    assert writer.current_version(cid) == 3 and sorted(p.name for p in (tmp_path / f"c{cid}").iterdir()) == [
        "CURRENT", "v00000002", "v00000003"], "the serving process repaired in memory and saved nothing"


def test_pointer_checks_are_spaced_by_check_s(db: Database, tmp_path: Path) -> None:
    store, cid, writer, written = _handbook_saved_once(db, tmp_path)
    serving = LiveIndexes(IndexStore(tmp_path, DIM), store, read_only=True, check_s=3600)
    assert serving.get(cid).version == 1
    _write(store, written, writer, "bravo", 2)
    assert serving.get(cid).version == 1, "no second look at the pointer within check_s"


def _writer_process(db_url: str, root: str, cid: int, versions: int) -> None:
    """Another process: the writer, saving one version per new document as fast as it can."""
    database = Database(db_url)
    store = DocumentStore(database)
    indexes = IndexStore(Path(root), DIM)
    index = indexes.open(cid, store)
    for n in range(1, versions):
        _write(store, index, indexes, f"word{n}", n)
    database.dispose()


def test_queries_during_swaps_never_see_a_half_written_version(db: Database, tmp_path: Path) -> None:
    store = DocumentStore(db)
    cid = store.collection_id("handbook", create=True)
    assert cid is not None
    writer = IndexStore(tmp_path, DIM)
    _write(store, writer.open(cid, store), writer, "word0", 0)
    serving = LiveIndexes(IndexStore(tmp_path, DIM), store, read_only=True, check_s=0)
    seen: list[tuple[int, int, int, str | None, bool]] = []
    done = threading.Event()

    def query() -> None:
        while not done.is_set():
            index = serving.get(cid)
            vectors, bm25 = set(index.vectors.ids().tolist()), set(index.bm25.ids().tolist())
            query_vector = np.ones(DIM, dtype=np.float32) / np.sqrt(DIM)
            hits = index.search_dense(query_vector, 3)
            seen.append((index.version, len(vectors), len(bm25 ^ vectors), index.repair.rebuilt_reason,
                         bool(hits and _bm25_files(index, "word0"))))

    readers = [threading.Thread(target=query) for _ in range(2)]
    for reader in readers:
        reader.start()
    process = multiprocessing.get_context("spawn").Process(
        target=_writer_process, args=(db.url, str(tmp_path), cid, VERSIONS_WRITTEN))
    process.start()
    process.join(timeout=240)
    done.set()
    for reader in readers:
        reader.join()
    assert process.exitcode == 0
    final = serving.get(cid)
    assert final.version == VERSIONS_WRITTEN and _bm25_files(final, f"word{VERSIONS_WRITTEN - 1}")
    versions = {version for version, *_ in seen}
    assert len(versions) >= 5, f"queries ran across several swaps, saw only {sorted(versions)}"
    assert all(reason is None for *_, reason, _ in seen), "no version had to be rebuilt: none was read half-written"
    assert all(mismatch == 0 for _, _, mismatch, _, _ in seen), "dense and BM25 always came from one version"
    assert all(found for *_, found in seen), "every query found the first document"
    assert all(count >= version for version, count, *_ in seen), "a version holds every document saved before it"
