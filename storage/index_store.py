"""Versioned, atomically written index folders, one per collection, kept in step with the DB.

Layout: ``<index_dir>/c<collection id>/v<version>/`` holds the FAISS file, the BM25 files
and a manifest with checksums; ``CURRENT`` names the live version. A save writes a new
version folder, fsyncs it, renames it into place, then atomically replaces ``CURRENT``.
Readers therefore never see a half-written index, and a crash leaves the previous one.
On open, the index is reconciled with the database (the source of truth): chunks the
database lacks are removed, chunks the index lacks are added from stored embeddings.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from storage.bm25 import BM25Index
from storage.documents import DocumentStore
from storage.errors import IndexCorruptError, IndexWriterBusy
from storage.hashing import sha256_file
from storage.search_index import RepairReport
from storage.vector_index import VectorIndex, VectorLayout

log = logging.getLogger(__name__)
CURRENT = "CURRENT"
MANIFEST = "manifest.json"
WRITER_LOCK = ".writer.lock"  # beside the collection folder, which only holds versions
WORKER_LOCK = ".worker.lock"  # held by the one `run.py worker` of a data dir while it runs


class CollectionIndex:
    """The dense and the BM25 index of one collection, changed together."""

    def __init__(self, collection_id: int, vectors: VectorIndex, bm25: BM25Index, version: int) -> None:
        self.collection_id = collection_id
        self.vectors = vectors
        self.bm25 = bm25
        self.version = version
        self.repair = RepairReport()
        # FAISS and the BM25 segments are not safe to change while another thread searches.
        self.lock = threading.RLock()

    def __len__(self) -> int:
        return len(self.vectors)

    def ids(self) -> np.ndarray:
        """Chunk ids in the dense index (the BM25 index holds these and the chunks not embedded yet)."""
        with self.lock:
            return self.vectors.ids()

    def add(self, ids: np.ndarray, vectors: np.ndarray, texts: list[str]) -> None:
        """Index chunks under their ids."""
        with self.lock:
            self.vectors.add(ids, vectors)
            self.bm25.add(ids, texts)

    def add_keyword(self, ids: np.ndarray, texts: list[str]) -> None:
        """Index chunks for BM25 only, while their embeddings are computed."""
        with self.lock:
            self.bm25.add(ids, texts)

    def add_embedded(self, ids: np.ndarray, vectors: np.ndarray, texts: list[str]) -> None:
        """Add the vectors of chunks BM25 holds already (``texts`` are indexed only for those it lacks)."""
        with self.lock:
            self.vectors.add(ids, vectors)
            absent = [n for n, chunk_id in enumerate(ids.tolist()) if chunk_id not in self.bm25]
            if absent:
                self.bm25.add(ids[absent], [texts[n] for n in absent])

    def remove(self, ids: list[int]) -> None:
        """Drop chunk ids from both indexes."""
        with self.lock:
            self.vectors.remove(ids)
            self.bm25.remove(ids)

    def search_dense(self, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        """Nearest chunks to a query vector."""
        with self.lock:
            return self.vectors.search(vector, k)

    def search_bm25(self, query: str, k: int) -> list[tuple[int, float]]:
        """Best BM25 matches for a query."""
        with self.lock:
            return self.bm25.search(query, k)

    def term_counts(self, terms: list[str]) -> tuple[int, list[int]]:
        """Chunks indexed, and the chunks each (tokenized) term occurs in."""
        with self.lock:
            return self.bm25.term_counts(terms)

    def has_term(self, term: str) -> bool:
        """Whether any indexed chunk contains this (tokenized) term."""
        return self.bm25.has_term(term)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    with path.open("rb") as fh:
        os.fsync(fh.fileno())


@contextmanager
def sole_worker(root: Path) -> Iterator[None]:
    """Hold the index folder as its one ingest worker while the block runs; refuse when another holds it.

    The lock is ``flock`` (NFSv4 carries it to other machines) and goes when the process dies.
    """
    root.mkdir(parents=True, exist_ok=True)
    with (root / WORKER_LOCK).open("a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise IndexWriterBusy(
                f"another `run.py worker` ({holder}) is already writing the index in {root}: one worker per data dir "
                "writes its index versions (stop that one first; with retrieval.index_backend = 'postgresql' "
                "several workers may share one database)"
            ) from exc
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
        handle.flush()
        yield


class IndexStore:
    """Opens, repairs and atomically saves collection indexes under one folder."""

    def __init__(self, root: Path, dim: int, layout: VectorLayout | None = None) -> None:
        self.root = root
        self.dim = dim
        self.layout = layout or VectorLayout()

    def _folder(self, collection_id: int) -> Path:
        return self.root / f"c{collection_id}"

    def current_version(self, collection_id: int) -> int:
        """The live version number of a collection's index, 0 when none was saved."""
        pointer = self._folder(collection_id) / CURRENT
        try:
            return int(pointer.read_text(encoding="ascii").strip().lstrip("v"))
        except FileNotFoundError:
            return 0
        except ValueError as exc:
            raise IndexCorruptError(f"{pointer} does not name a version") from exc

    def open(self, collection_id: int, store: DocumentStore, save_repair: bool = True) -> CollectionIndex:
        """Load the live version and reconcile it with the database, saving any repair.

        Processes that only serve (beside a ``run.py worker``) pass ``save_repair=False``: they
        repair in memory and leave writing versions to the one writer.
        """
        try:
            index = self._load_settled(collection_id)
            reason = None
        except IndexCorruptError as exc:
            log.warning("rebuilding index of collection %s from the database: %s", collection_id, exc)
            version = self._safe_version(collection_id)
            index = CollectionIndex(collection_id, VectorIndex(self.dim, layout=self.layout), BM25Index(), version)
            reason = str(exc)
        index.repair = self.reconcile(index, store)
        index.repair.rebuilt_reason = reason
        if index.repair.changed and save_repair:
            self.save(index)
        return index

    def _load_settled(self, collection_id: int) -> CollectionIndex:
        """Load the live version; when a writer moved CURRENT on (and pruned) mid-read, load the newer one."""
        for _ in range(3):
            version = self.current_version(collection_id)
            try:
                return self._load(collection_id)
            except IndexCorruptError:
                if self._safe_version(collection_id) == version:
                    raise
                log.info("index of collection %s moved past v%s while loading it; loading the newer one",
                         collection_id, version)
        return self._load(collection_id)

    def _safe_version(self, collection_id: int) -> int:
        try:
            return self.current_version(collection_id)
        except IndexCorruptError:
            return max((int(p.name[1:]) for p in self._versions(collection_id)), default=0)

    def _versions(self, collection_id: int) -> list[Path]:
        folder = self._folder(collection_id)
        if not folder.is_dir():
            return []
        return sorted(p for p in folder.iterdir() if p.is_dir() and p.name[1:].isdigit() and p.name[0] == "v")

    def _load(self, collection_id: int) -> CollectionIndex:
        version = self.current_version(collection_id)
        if version == 0:
            return CollectionIndex(collection_id, VectorIndex(self.dim, layout=self.layout), BM25Index(), 0)
        folder = self._folder(collection_id) / f"v{version:08d}"
        self._verify(folder)
        vectors = VectorIndex.load(folder, self.dim, self.layout)
        try:
            bm25 = BM25Index.load(folder)
        except (OSError, ValueError, KeyError) as exc:
            raise IndexCorruptError(f"BM25 index in {folder} cannot be read: {exc}") from exc
        return CollectionIndex(collection_id, vectors, bm25, version)

    @staticmethod
    def _verify(folder: Path) -> None:
        try:
            manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise IndexCorruptError(f"index manifest in {folder} cannot be read: {exc}") from exc
        files = manifest.get("files") if isinstance(manifest, dict) else None
        if not isinstance(files, dict) or not files:  # valid JSON of the wrong shape is damage too
            raise IndexCorruptError(f"index manifest in {folder} does not list the index files")
        for name, digest in files.items():
            path = folder / name
            if not path.is_file() or sha256_file(path) != digest:
                raise IndexCorruptError(f"index file {path} is missing or damaged")

    def reconcile(self, index: CollectionIndex, store: DocumentStore) -> RepairReport:
        """Make the index hold exactly the collection's chunks in the database.

        BM25 holds every chunk; the dense index only the embedded ones (an ingest embeds the others).
        """
        truth = store.chunk_ids(index.collection_id)
        embedded = store.chunk_ids(index.collection_id, embedded=True)
        report = RepairReport()
        for part, wanted in ((index.vectors, embedded), (index.bm25, truth)):
            extra = np.setdiff1d(part.ids(), wanted, assume_unique=True)
            if len(extra):
                part.remove(extra.tolist())
                report.removed = max(report.removed, len(extra))
        missing_vectors = np.setdiff1d(embedded, index.vectors.ids(), assume_unique=True)
        missing_bm25 = np.setdiff1d(truth, index.bm25.ids(), assume_unique=True)
        missing = np.union1d(missing_vectors, np.intersect1d(missing_bm25, embedded, assume_unique=True))
        for ids, vectors, texts in store.iter_chunk_payloads(missing.tolist()):
            index.vectors.add(ids, vectors)
            index.bm25.add(ids, texts)
        keyword_only = np.setdiff1d(missing_bm25, embedded, assume_unique=True)
        for ids, texts in store.iter_chunk_texts(keyword_only.tolist()):
            index.bm25.add(ids, texts)
        report.added = len(missing) + len(keyword_only)
        return report

    def save(self, index: CollectionIndex) -> None:
        """Write a new version of the index atomically and make it the live one."""
        with index.lock, self._writer_lock(index.collection_id):
            self._save(index)

    @contextmanager
    def _writer_lock(self, collection_id: int) -> Iterator[None]:
        """One save at a time per collection across processes (the CLI beside a worker numbers versions safely)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / f".c{collection_id}{WRITER_LOCK}").open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file closes, or when the process dies
            yield

    def _save(self, index: CollectionIndex) -> None:
        folder = self._folder(index.collection_id)
        folder.mkdir(parents=True, exist_ok=True)
        # A crash may have left a version folder that CURRENT never pointed at: number past it.
        existing = max((int(p.name[1:]) for p in self._versions(index.collection_id)), default=0)
        version = max(index.version, existing) + 1
        final = folder / f"v{version:08d}"
        staging = folder / f"v{version:08d}.tmp-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        files = [index.vectors.save(staging), *index.bm25.save(staging)]
        manifest = {"version": version, "dim": self.dim, "count": len(index.vectors),
                    "files": {f.name: sha256_file(f) for f in files}}
        (staging / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
        for path in [*files, staging / MANIFEST]:
            _fsync_file(path)
        _fsync_dir(staging)
        os.rename(staging, final)
        _fsync_dir(folder)
        pointer_tmp = folder / f"{CURRENT}.tmp-{os.getpid()}"
        pointer_tmp.write_text(f"v{version:08d}\n", encoding="ascii")
        _fsync_file(pointer_tmp)
        os.replace(pointer_tmp, folder / CURRENT)
        _fsync_dir(folder)
        index.version = version
        self._prune(index.collection_id, keep_from=version - 1)

    def _prune(self, collection_id: int, keep_from: int) -> None:
        """Delete versions older than the previous one, and leftovers of crashed saves."""
        folder = self._folder(collection_id)
        for path in folder.iterdir():
            stale_version = path.name[0] == "v" and path.name[1:].isdigit() and int(path.name[1:]) < keep_from
            crashed = ".tmp-" in path.name and not path.name.endswith(f"-{os.getpid()}")
            if stale_version or crashed:
                shutil.rmtree(path) if path.is_dir() else path.unlink()

    def drop(self, collection_id: int) -> None:
        """Delete every version of a collection's index."""
        shutil.rmtree(self._folder(collection_id), ignore_errors=True)

    def size_bytes(self) -> int:
        """Bytes on disk used by all live index versions."""
        return sum(p.stat().st_size for p in self.root.rglob("*") if p.is_file()) if self.root.exists() else 0
