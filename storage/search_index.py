"""The seam between retrieval and where a collection's index lives.

Two backends follow these protocols: ``storage.index_reload.LiveIndexes`` (FAISS and BM25
in each process's memory, saved as versioned folders in the data dir) and
``storage.pg_index.PgIndexes`` (pgvector and BM25 postings in the PostgreSQL database, so
app processes keep no index state). Retrieval and ingest only see these methods.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass
class RepairReport:
    """What opening an index had to fix to agree with the database."""

    removed: int = 0
    added: int = 0
    rebuilt_reason: str | None = None

    @property
    def changed(self) -> bool:
        """Whether anything was repaired."""
        return bool(self.removed or self.added or self.rebuilt_reason)


class SearchIndex(Protocol):
    """The dense and the keyword (BM25) index of one collection, keyed by chunk id."""

    collection_id: int

    def ids(self) -> np.ndarray:
        """Chunk ids in the index."""
        ...

    def add(self, ids: np.ndarray, vectors: np.ndarray, texts: list[str]) -> None:
        """Index chunks under their ids; an id already present is replaced."""

    def add_keyword(self, ids: np.ndarray, texts: list[str]) -> None:
        """Make chunks keyword-searchable before their embeddings exist (``add`` follows once they do).

        A backend that cannot hold a chunk without its vector may leave this to ``add_embedded``.
        """

    def add_embedded(self, ids: np.ndarray, vectors: np.ndarray, texts: list[str]) -> None:
        """Make chunks that ``add_keyword`` indexed dense-searchable too, now that their vectors exist."""

    def remove(self, ids: list[int]) -> None:
        """Drop chunk ids; unknown ids are ignored."""

    def search_dense(self, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        """The ``k`` nearest chunks to a unit query vector, with their cosine similarity, best first."""
        ...

    def search_bm25(self, query: str, k: int) -> list[tuple[int, float]]:
        """The ``k`` best BM25 matches for a query, with their scores, best first."""
        ...

    def term_counts(self, terms: list[str]) -> tuple[int, list[int]]:
        """Chunks indexed, and the chunks each (tokenized) term occurs in."""
        ...

    def has_term(self, term: str) -> bool:
        """Whether any indexed chunk contains this (tokenized) term."""
        ...


class IndexBackend(Protocol):
    """Where every collection's index lives: opened on demand, kept in step with the database."""

    def get(self, collection_id: int) -> SearchIndex:
        """The collection's index, current with what the writer saved."""
        ...

    def save(self, collection_id: int) -> None:
        """Make the collection's changes durable and visible to other processes."""

    def reconcile(self, collection_id: int) -> RepairReport:
        """Bring the collection's index in step with the database's chunks."""
        ...

    def drop(self, collection_id: int) -> None:
        """Forget the collection's whole index (before it is rebuilt)."""

    def clear(self) -> None:
        """Forget whatever this process holds open."""
