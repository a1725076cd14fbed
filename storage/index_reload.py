"""A process's open collection indexes, swapped for the newer version another process saved.

One writer (the ingest worker) saves index versions; every serving process checks the
``CURRENT`` pointer (one small file read, at most every ``check_s`` seconds per collection)
before a search. When it names a newer version, the new version is loaded and reconciled beside
the old one, which keeps answering meanwhile, and then replaces it in one assignment. Versions
are complete folders renamed into place before ``CURRENT`` moves, and their checksums are
verified on load, so a half-written version is never read.
"""

from __future__ import annotations

import logging
import threading
import time

from storage.documents import DocumentStore
from storage.errors import IndexCorruptError
from storage.index_store import CollectionIndex, IndexStore
from storage.search_index import RepairReport

log = logging.getLogger(__name__)


class LiveIndexes:
    """Open indexes by collection id, kept at the newest saved version."""

    def __init__(self, indexes: IndexStore, store: DocumentStore, read_only: bool, check_s: float) -> None:
        """``read_only`` processes repair in memory and never save; ``check_s`` spaces the pointer checks."""
        self.indexes = indexes
        self.store = store
        self.read_only = read_only
        self.check_s = check_s
        self._open: dict[int, CollectionIndex] = {}
        self._checked: dict[int, float] = {}
        self._loading: dict[int, threading.Lock] = {}
        self._lock = threading.Lock()

    def get(self, collection_id: int) -> CollectionIndex:
        """The collection's index, at the newest version saved (checked at most every ``check_s``)."""
        index = self._open.get(collection_id)
        if index is None:
            with self._load_lock(collection_id):
                if collection_id not in self._open:
                    self._open[collection_id] = self._load(collection_id)
                return self._open[collection_id]
        if self._due(collection_id) and self._newer_on_disk(index):
            self._swap(collection_id, index)
        return self._open[collection_id]

    def reconcile(self, collection_id: int) -> RepairReport:
        """Bring an open index in step with the database (documents serving processes removed), saving any change."""
        index = self.get(collection_id)
        with index.lock:
            report = self.indexes.reconcile(index, self.store)
            if report.changed and not self.read_only:
                self.indexes.save(index)
        return report

    def cached(self, collection_id: int) -> CollectionIndex | None:
        """The open index, without loading or checking anything."""
        return self._open.get(collection_id)

    def save(self, collection_id: int) -> None:
        """Write a new version of an open collection index (a read-only process never does)."""
        index = self._open.get(collection_id)
        if index is not None and not self.read_only:
            self.indexes.save(index)

    def drop(self, collection_id: int) -> None:
        """Delete every saved version of a collection's index and forget the open one."""
        with self._lock:
            self._open.pop(collection_id, None)
            self._checked.pop(collection_id, None)
        self.indexes.drop(collection_id)

    def clear(self) -> None:
        """Forget every open index (after the embedding model changed)."""
        with self._lock:
            self._open.clear()
            self._checked.clear()

    def _load_lock(self, collection_id: int) -> threading.Lock:
        with self._lock:
            return self._loading.setdefault(collection_id, threading.Lock())

    def _load(self, collection_id: int) -> CollectionIndex:
        self._checked[collection_id] = time.monotonic()
        return self.indexes.open(collection_id, self.store, save_repair=not self.read_only)

    def _due(self, collection_id: int) -> bool:
        return time.monotonic() - self._checked.get(collection_id, 0.0) >= self.check_s

    def _newer_on_disk(self, index: CollectionIndex) -> bool:
        self._checked[index.collection_id] = time.monotonic()
        try:
            return self.indexes.current_version(index.collection_id) > index.version
        except IndexCorruptError as exc:  # keep serving the loaded version; the writer repairs the pointer
            log.warning("not reloading collection %s: %s", index.collection_id, exc)
            return False

    def _swap(self, collection_id: int, old: CollectionIndex) -> None:
        """Load the newer version beside ``old`` and put it in its place.

        A serving thread that finds another thread already loading keeps using ``old``; a
        writer waits, because it must add to the newest version, never to a stale one.
        """
        lock = self._load_lock(collection_id)
        if not lock.acquire(blocking=not self.read_only):
            return
        try:
            if self._open.get(collection_id) is old:
                fresh = self._load(collection_id)
                self._open[collection_id] = fresh
                log.info("collection %s: now serving index v%s (was v%s)", collection_id, fresh.version, old.version)
        finally:
            lock.release()
