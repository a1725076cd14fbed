"""Collection indexes in PostgreSQL: pgvector (HNSW, cosine) and BM25 over stored terms.

One row per chunk in ``index_chunks`` holds its embedding, its BM25 terms (the stems
``storage.bm25.tokenize`` makes, with their counts) and its length; ``index_stats`` keeps
each collection's chunk count and total length, maintained by statement triggers. Scores
are Okapi BM25 with the in-process index's tokens, k1 and b, so both backends rank alike;
PostgreSQL's own full-text ranking (``ts_rank_cd``) scores differently (docs/scale.md).

Rows reference ``chunks`` with ``ON DELETE CASCADE``: removing a document from the
database removes it from the index in the same transaction. App processes keep no index
state: every search is one SQL statement filtered to the collection.
"""

from __future__ import annotations

import logging
from collections import Counter

import numpy as np
from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from storage.bm25 import tokenize
from storage.db import Database
from storage.documents import DocumentStore
from storage.errors import ConfigError
from storage.search_index import RepairReport

log = logging.getLogger(__name__)
K1, B = 1.2, 0.75  # as storage.bm25.BM25Index
SCHEMA_LOCK_KEY = 0x456E6349  # "EncI": held while creating the index tables or an HNSW index
INDEX_TABLES = ("index_chunks", "index_stats")  # derived from ``chunks``: copies and backups leave them out

SCHEMA = [
    "CREATE EXTENSION IF NOT EXISTS vector",
    """CREATE TABLE index_chunks (
        chunk_id bigint PRIMARY KEY REFERENCES chunks(id) ON DELETE CASCADE,
        collection_id integer NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
        length integer NOT NULL,
        terms text[] NOT NULL,
        counts integer[] NOT NULL,
        embedding vector NOT NULL)""",
    "CREATE INDEX ix_index_chunks_collection ON index_chunks (collection_id)",
    "CREATE INDEX ix_index_chunks_terms ON index_chunks USING gin (terms)",
    """CREATE TABLE index_stats (
        collection_id integer PRIMARY KEY REFERENCES collections(id) ON DELETE CASCADE,
        chunks bigint NOT NULL,
        total_length bigint NOT NULL)""",
    """CREATE FUNCTION index_stats_added() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO index_stats AS s (collection_id, chunks, total_length)
        SELECT collection_id, count(*), sum(length) FROM added GROUP BY collection_id
        ON CONFLICT (collection_id) DO UPDATE
        SET chunks = s.chunks + excluded.chunks, total_length = s.total_length + excluded.total_length;
        RETURN NULL;
    END $$""",
    """CREATE FUNCTION index_stats_removed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE index_stats s SET chunks = s.chunks - r.n, total_length = s.total_length - r.total
        FROM (SELECT collection_id, count(*) AS n, sum(length) AS total FROM removed GROUP BY collection_id) r
        WHERE s.collection_id = r.collection_id;
        RETURN NULL;
    END $$""",
    """CREATE TRIGGER index_chunks_added AFTER INSERT ON index_chunks
        REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION index_stats_added()""",
    """CREATE TRIGGER index_chunks_removed AFTER DELETE ON index_chunks
        REFERENCING OLD TABLE AS removed FOR EACH STATEMENT EXECUTE FUNCTION index_stats_removed()""",
]
DROP_SCHEMA = [
    "DROP TABLE IF EXISTS index_chunks",
    "DROP TABLE IF EXISTS index_stats",
    "DROP FUNCTION IF EXISTS index_stats_added()",
    "DROP FUNCTION IF EXISTS index_stats_removed()",
]

BM25_SQL = f"""
WITH stats AS (
    SELECT chunks AS n, total_length::float8 / greatest(chunks, 1) AS avgdl
    FROM index_stats WHERE collection_id = :collection),
query AS (SELECT unnest(CAST(:terms AS text[])) AS term),
postings AS (
    SELECT c.chunk_id, c.length, query.term, c.counts[array_position(c.terms, query.term)] AS tf
    FROM index_chunks c CROSS JOIN query
    WHERE c.collection_id = :collection AND c.terms && CAST(:terms AS text[]) AND query.term = ANY(c.terms)),
df AS (SELECT term, count(*) AS df FROM postings GROUP BY term)
SELECT p.chunk_id,
       sum(ln(1 + (stats.n - df.df + 0.5) / (df.df + 0.5)) * p.tf * {K1 + 1}
           / (p.tf + {K1} * (1 - {B} + {B} * p.length / stats.avgdl))) AS score
FROM postings p JOIN df USING (term) CROSS JOIN stats
GROUP BY p.chunk_id ORDER BY score DESC, p.chunk_id LIMIT :k
"""


def vector_available(connection: Connection) -> bool:
    """Whether this PostgreSQL server can load pgvector."""
    found = connection.execute(text("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'"))
    return found.first() is not None


def has_schema(connection: Connection) -> bool:
    """Whether the index tables exist."""
    return connection.execute(text("SELECT to_regclass('index_chunks')")).scalar() is not None


def create_schema(connection: Connection) -> None:
    """Create the extension, the index tables and their triggers (when they are absent)."""
    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK_KEY})
    if not has_schema(connection):
        for statement in SCHEMA:
            connection.execute(text(statement))


def drop_schema(connection: Connection) -> None:
    """Drop the index tables and functions (the extension stays: other schemas may use it)."""
    for statement in DROP_SCHEMA:
        connection.execute(text(statement))


def vector_literal(vector: np.ndarray) -> str:
    """pgvector's text form of a vector; nine significant digits give float32 back exactly."""
    return "[" + ",".join(f"{x:.9g}" for x in np.asarray(vector, dtype=np.float32).tolist()) + "]"


def chunk_terms(text_: str) -> tuple[list[str], list[int], int]:
    """A chunk's distinct BM25 terms, how often each occurs, and its length in terms."""
    counts = Counter(tokenize(text_))
    return list(counts), list(counts.values()), sum(counts.values())


class PgCollectionIndex:
    """One collection's rows in ``index_chunks``; holds nothing but its id."""

    def __init__(self, db: Database, collection_id: int, dim: int, ef_search: int = 100) -> None:
        self.db = db
        self.collection_id = collection_id
        self.dim = dim
        self.ef_search = ef_search

    def __len__(self) -> int:
        return self.term_counts([])[0]

    def ids(self) -> np.ndarray:
        """Chunk ids indexed in the collection."""
        with self.db.engine.connect() as connection:
            found = connection.execute(text("SELECT chunk_id FROM index_chunks WHERE collection_id = :c"),
                                       {"c": self.collection_id}).scalars()
            return np.fromiter(found, dtype=np.int64)

    def add(self, ids: np.ndarray, vectors: np.ndarray, texts: list[str]) -> None:
        """Index chunks under their ids, replacing any rows they had, in one transaction."""
        if not len(ids):
            return
        rows = []
        for chunk_id, vector, chunk_text in zip(ids, vectors, texts, strict=True):
            terms, counts, length = chunk_terms(chunk_text)
            rows.append({"id": int(chunk_id), "collection": self.collection_id, "length": length,
                         "terms": terms, "counts": counts, "embedding": vector_literal(vector)})
        with self.db.engine.begin() as connection:
            connection.execute(text("DELETE FROM index_chunks WHERE chunk_id = ANY(:ids)"),
                               {"ids": [r["id"] for r in rows]})
            connection.execute(text(
                "INSERT INTO index_chunks (chunk_id, collection_id, length, terms, counts, embedding) "
                "VALUES (:id, :collection, :length, CAST(:terms AS text[]), CAST(:counts AS integer[]), "
                "CAST(:embedding AS vector)) "
                # Another writer indexing the same committed chunk meanwhile (its first reconcile) wrote the same row.
                "ON CONFLICT (chunk_id) DO NOTHING"), rows)

    def add_keyword(self, ids: np.ndarray, texts: list[str]) -> None:
        """Nothing yet: a row holds its vector, so a chunk is searchable here once ``add_embedded`` indexes it."""

    def add_embedded(self, ids: np.ndarray, vectors: np.ndarray, texts: list[str]) -> None:
        """Index the chunks with their vectors and terms (``add_keyword`` wrote no row)."""
        self.add(ids, vectors, texts)

    def remove(self, ids: list[int]) -> None:
        """Drop chunk ids (rows of chunks deleted from the database are gone already)."""
        if ids:
            with self.db.engine.begin() as connection:
                connection.execute(text("DELETE FROM index_chunks WHERE chunk_id = ANY(:ids)"),
                                   {"ids": [int(i) for i in ids]})

    def search_dense(self, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        """Nearest chunks by cosine similarity, through the HNSW index when the planner finds it worth it."""
        cast = f"vector({self.dim})"
        query = text(
            f"SELECT chunk_id, 1 - (embedding::{cast} <=> CAST(:q AS {cast})) FROM index_chunks "
            f"WHERE collection_id = :collection ORDER BY embedding::{cast} <=> CAST(:q AS {cast}) LIMIT :k")
        with self.db.engine.begin() as connection:
            # The collection filter is applied inside the index scan; relaxed order keeps scanning until k pass it.
            connection.execute(text("SELECT set_config('hnsw.ef_search', :ef, true), "
                                    "set_config('hnsw.iterative_scan', 'relaxed_order', true)"),
                               {"ef": str(min(1000, max(self.ef_search, 2 * k)))})
            rows = connection.execute(query, {"q": vector_literal(vector), "collection": self.collection_id, "k": k})
            hits = [(int(i), float(s)) for i, s in rows]
        return sorted(hits, key=lambda hit: hit[1], reverse=True)

    def search_bm25(self, query: str, k: int) -> list[tuple[int, float]]:
        """Best BM25 matches, scored as ``storage.bm25.BM25Index`` scores them."""
        terms = sorted(set(tokenize(query)))
        if not terms:
            return []
        with self.db.engine.connect() as connection:
            rows = connection.execute(text(BM25_SQL), {"collection": self.collection_id, "terms": terms, "k": k})
            return [(int(i), float(s)) for i, s in rows if s > 0]

    def term_counts(self, terms: list[str]) -> tuple[int, list[int]]:
        """Chunks indexed, and the chunks each (tokenized) term occurs in (one round trip)."""
        with self.db.engine.connect() as connection:
            n = connection.execute(text("SELECT chunks FROM index_stats WHERE collection_id = :c"),
                                   {"c": self.collection_id}).scalar()
            found: dict[str, int] = dict(connection.execute(text(
                "SELECT t, (SELECT count(*) FROM index_chunks WHERE collection_id = :c AND terms @> ARRAY[t]) "
                "FROM unnest(CAST(:terms AS text[])) AS t"), {"c": self.collection_id, "terms": terms}).all()
            ) if terms else {}
        return int(n or 0), [int(found.get(term, 0)) for term in terms]

    def has_term(self, term: str) -> bool:
        """Whether any chunk of the collection contains this (tokenized) term."""
        with self.db.engine.connect() as connection:
            found = connection.execute(text(
                "SELECT 1 FROM index_chunks WHERE collection_id = :c AND terms @> ARRAY[CAST(:t AS text)] LIMIT 1"),
                {"c": self.collection_id, "t": term})
            return found.first() is not None


class PgIndexes:
    """Every collection's index in the database: nothing is loaded, nothing is saved."""

    def __init__(self, store: DocumentStore, dim: int, read_only: bool = False, ef_search: int = 100) -> None:
        """``read_only`` app processes never write; a writer checks the tables and the HNSW index once;
        ``ef_search``: the candidates an HNSW search keeps (``retrieval.ef_search``)."""
        self.store = store
        self.db = store.db
        self.dim = dim
        self.ef_search = ef_search
        self.read_only = read_only
        self._reconciled: set[int] = set()
        require_schema(self.db)
        if not read_only:
            self.ensure_hnsw()

    def ensure_hnsw(self) -> None:
        """Create the HNSW index for this embedding size (and drop those of other sizes, left by a model change)."""
        name = f"ix_index_chunks_hnsw_{self.dim}"
        with self.db.engine.begin() as connection:
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK_KEY})
            others = connection.execute(text(
                "SELECT indexname FROM pg_indexes WHERE tablename = 'index_chunks' "
                "AND indexname LIKE 'ix_index_chunks_hnsw_%' AND indexname <> :name"), {"name": name}).scalars().all()
            for other in others:
                connection.execute(text(f'DROP INDEX IF EXISTS "{other}"'))
            connection.execute(text(
                f"CREATE INDEX IF NOT EXISTS {name} ON index_chunks "
                f"USING hnsw ((embedding::vector({self.dim})) vector_cosine_ops)"))

    def get(self, collection_id: int) -> PgCollectionIndex:
        """The collection's index; a writer first adds chunks a crash left unindexed (once per process)."""
        if not self.read_only and collection_id not in self._reconciled:
            self._reconciled.add(collection_id)
            self.reconcile(collection_id)
        return PgCollectionIndex(self.db, collection_id, self.dim, self.ef_search)

    def save(self, collection_id: int) -> None:
        """Every change was committed when it was made; index the chunks a killed worker committed unindexed."""
        if not self.read_only:
            self.reconcile(collection_id)

    def reconcile(self, collection_id: int) -> RepairReport:
        """Index the collection's chunks that have no index row (a worker died between two commits)."""
        index = PgCollectionIndex(self.db, collection_id, self.dim)
        missing = self.unindexed(collection_id)
        for ids, vectors, texts in self.store.iter_chunk_payloads(missing, batch=1000):
            index.add(ids, vectors, texts)
        return RepairReport(added=len(missing))

    def unindexed(self, collection_id: int) -> list[int]:
        """Embedded chunk ids of a collection that have no index row."""
        with self.db.engine.connect() as connection:
            return list(connection.execute(text(
                "SELECT c.id FROM chunks c WHERE c.collection_id = :c AND c.embedding IS NOT NULL AND NOT EXISTS "
                "(SELECT 1 FROM index_chunks i WHERE i.chunk_id = c.id) ORDER BY c.id"),
                {"c": collection_id}).scalars())

    def drop(self, collection_id: int) -> None:
        """Delete the collection's index rows."""
        with self.db.engine.begin() as connection:
            connection.execute(text("DELETE FROM index_chunks WHERE collection_id = :c"), {"c": collection_id})
        self._reconciled.discard(collection_id)

    def clear(self) -> None:
        """Nothing is held open; the next ``get`` of a writer checks the database again."""
        self._reconciled.clear()


def require_schema(db: Database) -> None:
    """Refuse, with what to do, a database that cannot hold the index."""
    if db.dialect != "postgresql":
        raise ConfigError(
            f"retrieval.index_backend = 'postgresql' needs database_url to be a PostgreSQL database, not {db.dialect}")
    with db.engine.begin() as connection:
        if has_schema(connection):
            return
        if not vector_available(connection):
            raise ConfigError(
                "retrieval.index_backend = 'postgresql' needs the pgvector extension on the database server "
                "(https://github.com/pgvector/pgvector: install it, then restart Enclave)")
        try:
            with connection.begin_nested():
                create_schema(connection)
        except DBAPIError as exc:
            raise ConfigError(
                "retrieval.index_backend = 'postgresql': the index tables could not be created; ask the database's "
                f"administrator to run `CREATE EXTENSION vector` in it, then restart Enclave ({exc.orig})") from exc


def index_bytes(db: Database) -> int:
    """Bytes the index tables and their indexes take in the database."""
    with db.engine.connect() as connection:
        if not has_schema(connection):
            return 0
        found = connection.execute(text(
            "SELECT pg_total_relation_size('index_chunks') + pg_total_relation_size('index_stats')"))
        return int(found.scalar() or 0)

