"""The corpus: the document store, the per-collection indexes and the embedder, kept consistent."""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from functools import cached_property
from typing import Any

from assistant.embeddings import Embedder, declared_dim
from assistant.errors import ModelMismatchError, NotFoundError
from storage import pg_index
from storage.documents import DocumentStore
from storage.index_reload import LiveIndexes
from storage.index_store import IndexStore, sole_worker
from storage.search_index import IndexBackend, SearchIndex
from storage.vector_index import VectorLayout

MODEL_KEY = "embedding_model"
DIM_KEY = "embedding_dim"
IN_PROCESS, POSTGRESQL = "in-process", "postgresql"  # the values of retrieval.index_backend


class Corpus:
    """Opens collection indexes on demand, repaired against the database."""

    def __init__(
        self,
        store: DocumentStore,
        index_root: Any,
        model_name: str,
        embedder_factory: Callable[[], Embedder],
        layout: VectorLayout | None = None,
        read_only: bool = False,
        index_check_s: float = 1.0,
        backend: str = IN_PROCESS,
    ) -> None:
        self.store = store
        self.backend = backend
        self.layout = layout or VectorLayout()
        self.read_only = read_only  # an app process beside `run.py worker`: loads index versions, never saves
        self.index_check_s = index_check_s
        self.model_name = model_name
        self.index_root = index_root
        self._embedder_factory = embedder_factory
        self._lock = threading.RLock()

    @cached_property
    def embedder(self) -> Embedder:
        """The embedding model, loaded on first use and checked against the index."""
        embedder = self._embedder_factory()
        self._check_model(embedder)
        opened = self.__dict__.get("dim")
        if opened is not None and opened != embedder.dim:
            raise ModelMismatchError(
                f"embedding model {self.model_name!r} makes {embedder.dim}-dimension vectors, but its files "
                f"declared {opened} and the indexes were opened with that; run `run.py reindex`"
            )
        return embedder

    @cached_property
    def dim(self) -> int:
        """The width of this corpus's vectors, known before the model loads where possible.

        The width stored with the index for the configured model, else the one the model's files
        declare, else the loaded model's: so keyword-first ingest and keyword search open indexes
        without waiting seconds for the model.
        """
        if self.store.get_meta(MODEL_KEY) == self.model_name and (stored := self.store.get_meta(DIM_KEY)):
            return int(stored)
        return declared_dim(self.model_name) or self.embedder.dim

    @cached_property
    def index_store(self) -> IndexStore:
        """Where collection indexes are saved."""
        return IndexStore(self.index_root, self.dim, self.layout)

    def verify_model(self, dim: int | None = None) -> None:
        """Refuse to mix embeddings: the configured model must be the one the index was built with."""
        stored_model, stored_dim = self.store.get_meta(MODEL_KEY), self.store.get_meta(DIM_KEY)
        if stored_model is None:
            return
        if stored_model != self.model_name or (dim is not None and int(stored_dim or 0) != dim):
            raise ModelMismatchError(
                f"the index was built with embedding model {stored_model!r} ({stored_dim} dimensions) but "
                f"{self.model_name!r} is configured; set embedding.model back, "
                "or run `run.py reindex` to re-embed every chunk with the new model"
            )

    def _check_model(self, embedder: Embedder) -> None:
        self.verify_model(embedder.dim)
        if self.store.get_meta(MODEL_KEY) is None:
            self.store.set_meta(MODEL_KEY, self.model_name)
            self.store.set_meta(DIM_KEY, str(embedder.dim))

    def collection_id(self, name: str, create: bool = False) -> int:
        """A collection's id; unknown names raise NotFoundError unless ``create``."""
        found = self.store.collection_id(name, create=create)
        if found is None:
            raise NotFoundError(f"there is no collection named {name!r}")
        return found

    def index(self, collection_id: int) -> SearchIndex:
        """The index of a collection, current with what the writer saved."""
        return self.live.get(collection_id)

    @cached_property
    def live(self) -> IndexBackend:
        """The collection indexes, where ``backend`` keeps them."""
        return self.open_backend(self.backend)

    def open_backend(self, backend: str) -> IndexBackend:
        """Collection indexes kept by ``backend`` (``live`` is the configured one; `copy-index` opens the other)."""
        if backend == POSTGRESQL:
            return pg_index.PgIndexes(self.store, self.dim, self.read_only, self.layout.ef_search)
        return LiveIndexes(self.index_store, self.store, self.read_only, self.index_check_s)

    def save(self, collection_id: int) -> None:
        """Make a collection's index changes durable (a new version, for the in-process backend)."""
        self.live.save(collection_id)

    def sole_worker(self) -> AbstractContextManager[None]:
        """Held by `run.py worker` while it runs: the in-process index has one writer per data dir.

        Raises ``IndexWriterBusy`` when another worker holds it. Workers on the PostgreSQL
        backend write in transactions and need no such lock.
        """
        return nullcontext() if self.backend == POSTGRESQL else sole_worker(self.index_root)

    def index_bytes(self) -> int:
        """Bytes the index takes: on disk in the data dir, or in the database."""
        if self.backend == POSTGRESQL:
            return pg_index.index_bytes(self.store.db)
        return IndexStore(self.index_root, 0).size_bytes()

    def status(self) -> dict[str, Any]:
        """Collections with their documents and chunks, the embedding model, index size on disk."""
        collections = self.store.status()
        size = self.index_bytes()
        return {
            "collections": collections,
            "documents": sum(c["documents"] for c in collections),
            "chunks": sum(c["chunks"] for c in collections),
            "embedding_model": self.store.get_meta(MODEL_KEY),
            "embedding_dim": int(self.store.get_meta(DIM_KEY) or 0) or None,
            "index_bytes": size,
        }

    def reembed(self, progress: Callable[[int, int], None] | None = None) -> int:
        """Re-embed every chunk with the configured model and rebuild all indexes."""
        embedder = self._embedder_factory()
        total = done = 0
        for cid in self.store.collections():
            ids = self.store.chunk_ids(cid)
            total += len(ids)
            for batch_ids, _, texts in self.store.iter_chunk_payloads(ids.tolist(), batch=512):
                self.store.update_embeddings(batch_ids, embedder.embed_passages(texts, background=True))
                done += len(batch_ids)
                if progress:
                    progress(done, total)
        with self._lock:
            self.store.set_meta(MODEL_KEY, self.model_name)
            self.store.set_meta(DIM_KEY, str(embedder.dim))
            self.__dict__["embedder"] = embedder  # checked: the stored model is this one now
            self.__dict__["dim"] = embedder.dim
            self.__dict__.pop("index_store", None)
            self.__dict__.pop("live", None)
            for cid in self.store.collections():
                self.live.drop(cid)
                if self.backend == POSTGRESQL:  # app processes only read it: rebuild it now
                    self.live.reconcile(cid)
        return done
