"""The PostgreSQL index backend on a real PostgreSQL 18 with pgvector: ranks as the in-process index does."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from sqlalchemy import inspect

from storage.bm25 import BM25Index
from storage.db import Database
from storage.documents import ChunkDraft, DocumentStore, NewDocument, searchable_text
from storage.errors import ConfigError
from storage.pg_index import PgIndexes, index_bytes
from storage.vector_index import VectorIndex

DIM = 16
TEXTS = [
    "Employees accrue 1.5 days of paid leave per month; unused leave carries over up to ten days.",
    "Badges must be worn at all times inside the Redmond office. Lost badges are reported to security.",
    "The dental plan covers two cleanings per year and orthodontics for children under 18.",
    "Parking permits are issued by the facilities desk on the ground floor every Monday.",
    "Leave requests go to your manager; parental leave is sixteen weeks, paid in full.",
    "Security training is yearly. Security incidents are reported within one hour to security.",
    "The cafeteria on the ground floor opens at eight; the facilities team runs it.",
    "Orthodontics for adults is not covered by the dental plan.",
]
QUESTIONS = ["paid leave", "lost badges security", "dental orthodontics children", "ground floor facilities",
             "security security incidents", "parental leave weeks", "nothing matches zebra"]


def _unit(rows: int, seed: int) -> np.ndarray:
    vectors = np.random.default_rng(seed).normal(size=(rows, DIM)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def _document(path: str, texts: list[str], vectors: np.ndarray) -> NewDocument:
    chunks = [ChunkDraft(0, None, "", t, 0, len(t), len(t.split())) for t in texts]
    return NewDocument(path, path.ljust(64, "0"), 1, 1, None, [(None, " ".join(texts))], chunks, vectors)


@pytest.fixture
def store(pgvector_url: str) -> Iterator[DocumentStore]:
    """A migrated, empty PostgreSQL database with pgvector."""
    db = Database(pgvector_url)
    db.migrate()
    yield DocumentStore(db)
    db.dispose()


def _fill(store: DocumentStore, collection: str, path: str, texts: list[str], seed: int) -> tuple[int, list[int]]:
    cid = store.collection_id(collection, create=True)
    assert cid is not None
    _, added = store.write_documents(cid, "/share", [_document(path, texts, _unit(len(texts), seed))])
    return cid, added


def test_bm25_scores_are_those_of_the_in_process_index(store: DocumentStore) -> None:
    cid, ids = _fill(store, "hr", "handbook.txt", TEXTS, seed=1)
    index = PgIndexes(store, DIM).get(cid)  # a writer indexes what the database holds
    local = BM25Index()
    local.add(np.array(ids), [searchable_text("handbook.txt", "", t) for t in TEXTS])
    for question in QUESTIONS:
        expected = local.search(question, 5)
        found = index.search_bm25(question, 5)
        assert [i for i, _ in found] == [i for i, _ in expected], question
        assert [s for _, s in found] == pytest.approx([s for _, s in expected], rel=1e-5), question
    assert index.term_counts(["secur", "zebra"]) == local.term_counts(["secur", "zebra"])
    assert index.has_term("orthodont") and not index.has_term("zebra")


def test_dense_search_finds_the_exact_nearest_chunks(store: DocumentStore) -> None:
    texts = [f"passage number {n}" for n in range(300)]
    cid, ids = _fill(store, "big", "big.txt", texts, seed=2)
    index = PgIndexes(store, DIM).get(cid)
    exact = VectorIndex(DIM)
    exact.add(np.array(ids), _unit(300, seed=2))
    for query in _unit(20, seed=3):
        expected = exact.search(query, 10)
        found = index.search_dense(query, 10)
        assert [i for i, _ in found] == [i for i, _ in expected]
        assert [s for _, s in found] == pytest.approx([s for _, s in expected], abs=1e-5)


def test_a_collection_search_never_returns_another_collections_chunks(store: DocumentStore) -> None:
    hr, hr_ids = _fill(store, "hr", "handbook.txt", TEXTS[:4], seed=4)
    legal, legal_ids = _fill(store, "legal", "contract.txt", ["Security of the premises is the landlord's duty."],
                             seed=5)
    indexes = PgIndexes(store, DIM)
    hr_index, legal_index = indexes.get(hr), indexes.get(legal)
    assert {i for i, _ in hr_index.search_bm25("security", 10)} <= set(hr_ids)
    assert [i for i, _ in legal_index.search_bm25("security", 10)] == legal_ids
    for query in _unit(5, seed=6):
        assert {i for i, _ in legal_index.search_dense(query, 10)} == set(legal_ids)
        assert {i for i, _ in hr_index.search_dense(query, 10)} == set(hr_ids)
    assert hr_index.term_counts(["secur"]) == (4, [1])  # each collection has its own statistics


def test_deleted_documents_leave_the_index_with_their_statistics(store: DocumentStore) -> None:
    cid, _ = _fill(store, "hr", "handbook.txt", TEXTS[:4], seed=7)
    _, parking_ids = _fill(store, "hr", "parking.txt", ["Parking permits for visitors are free."], seed=8)
    index = PgIndexes(store, DIM).get(cid)
    assert index.search_bm25("parking permits visitors", 1)[0][0] == parking_ids[0]
    doc_id = next(d.id for d in store.known_documents(cid, "/share").values() if d.path == "parking.txt")
    store.delete_documents([doc_id])  # as `ingest --sync` does, before telling the index
    assert parking_ids[0] not in {i for i, _ in index.search_bm25("parking permits visitors", 10)}
    assert index.term_counts(["visitor"]) == (4, [0])
    assert sorted(index.ids().tolist()) == sorted(store.chunk_ids(cid).tolist())


def test_a_re_added_chunk_is_searched_by_its_new_text(store: DocumentStore) -> None:
    cid, ids = _fill(store, "hr", "old-name.txt", TEXTS[3:4], seed=9)
    index = PgIndexes(store, DIM).get(cid)
    index.add(np.array(ids), _unit(1, seed=9), [searchable_text("garage-2026.txt", "", TEXTS[3])])  # a rename
    assert [i for i, _ in index.search_bm25("garage 2026", 5)] == ids
    assert index.search_bm25("old name", 5) == []
    assert index.term_counts([]) == (1, [])


def test_a_writer_indexes_chunks_a_dead_worker_committed_but_never_indexed(store: DocumentStore) -> None:
    cid, ids = _fill(store, "hr", "handbook.txt", TEXTS, seed=10)
    reader = PgIndexes(store, DIM, read_only=True).get(cid)
    assert reader.search_bm25("dental", 5) == []  # committed to the database, not yet indexed
    report = PgIndexes(store, DIM).reconcile(cid)
    assert report.added == len(ids)
    assert reader.search_bm25("dental", 5)  # readers hold nothing: they see it at once
    assert index_bytes(store.db) > 0


def test_the_backend_on_sqlite_is_refused_with_what_it_needs(tmp_path: object) -> None:
    db = Database(f"sqlite:///{tmp_path}/enclave.db")
    db.migrate()
    with pytest.raises(ConfigError, match="needs database_url to be a PostgreSQL database"):
        PgIndexes(DocumentStore(db), DIM)
    db.dispose()


def test_copies_and_backups_accept_a_database_holding_the_index_tables(store: DocumentStore) -> None:
    from storage.transfer import check_described, model_tables

    with store.db.engine.connect() as connection:
        assert {"index_chunks", "index_stats"} <= set(inspect(connection).get_table_names())
        check_described(connection, model_tables())  # derived from chunks: left out, not refused


def test_two_writers_indexing_the_same_chunks_at_once_keep_one_row_each(store: DocumentStore) -> None:
    from concurrent.futures import ThreadPoolExecutor

    cid, ids = _fill(store, "hr", "handbook.txt", TEXTS, seed=11)
    texts = [searchable_text("handbook.txt", "", t) for t in TEXTS]
    vectors = _unit(len(TEXTS), seed=11)
    indexes = [PgIndexes(store, DIM, read_only=True).get(cid) for _ in range(2)]  # as two worker processes

    def write(index: object, rounds: int = 15) -> None:
        for _ in range(rounds):
            index.add(np.array(ids), vectors, texts)  # type: ignore[attr-defined]

    with ThreadPoolExecutor(2) as pool:
        for done in [pool.submit(write, index) for index in indexes]:
            done.result()  # neither writer failed on the other's rows
    assert sorted(indexes[0].ids().tolist()) == sorted(ids)
    assert indexes[0].term_counts(["secur"]) == (len(TEXTS), [2])  # the statistics count each chunk once


@pytest.mark.postgres
def test_a_postgresql_without_pgvector_is_refused_with_what_to_install() -> None:
    from storage.pg_index import vector_available
    from tests.conftest import postgres_url
    from tests.storage.conftest import _fresh_postgres_database

    for url in _fresh_postgres_database(postgres_url()):
        db = Database(url)
        db.migrate()  # the migration leaves the index tables out, and the rest of the schema is there
        with db.engine.connect() as connection:
            if vector_available(connection):
                pytest.skip("this PostgreSQL offers pgvector")
        with pytest.raises(ConfigError, match="needs the pgvector extension"):
            PgIndexes(DocumentStore(db), DIM)
        db.dispose()
