"""Incremental ingestion of a folder into a collection: scan, diff, parse, embed, commit, index.

Order of writes, which is what makes a crash at any point safe: a file's new chunks
(with embeddings) and the removal of its old ones are committed to the database in one
transaction first; only then do the in-memory indexes change, and they are saved
atomically now and then. The database is the truth, and opening an index reconciles
it, so a crash between any two steps loses at most unacknowledged work.
"""

from __future__ import annotations

import logging
import multiprocessing
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

import numpy as np

from ingest.errors import SkipFile
from ingest.parser_process import PreparedFile, init_parser_process, prepare_file
from ingest.parsers import FORMATS, FormatRegistry
from ingest.scanner import FileEntry, scan_folder
from ingest.settings import IngestSettings
from storage.disk import is_disk_full
from storage.documents import DocumentStore, KnownDocument, NewDocument, searchable_text
from storage.errors import DiskFullError
from storage.hashing import sha256_file
from storage.job_store import FileProgress, JobStore
from storage.search_index import SearchIndex

log = logging.getLogger(__name__)
EMBED_GROUP_CHUNKS = 256


@dataclass
class IngestReport:
    """What one ingest run did; ``as_json`` is the CLI's ``--json`` shape."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    renamed: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    documents: int = 0
    chunks: int = 0
    embedded_chunks: int = 0
    embedded_tokens: int = 0
    pages: int = 0
    seconds: float = 0.0
    job_id: int | None = None

    def as_json(self) -> dict[str, Any]:
        """The summary as a JSON-ready dict."""
        return {
            "added": self.added, "updated": self.updated, "unchanged": self.unchanged,
            "removed": self.removed, "renamed": self.renamed,
            "failed": [{"path": p, "reason": r} for p, r in self.failed],
            "documents": self.documents, "chunks": self.chunks, "seconds": round(self.seconds, 3),
        }


class PassageEmbedder(Protocol):
    """What ingest needs of the embedding model: passages in, unit vectors out."""

    def embed_passages(self, texts: list[str], background: bool = False) -> np.ndarray: ...


class IngestTarget(Protocol):
    """What ingest needs of the corpus it fills (``assistant.corpus.Corpus``): its store, embedder and indexes."""

    store: DocumentStore

    @property
    def embedder(self) -> PassageEmbedder: ...

    def verify_model(self) -> None: ...

    def collection_id(self, name: str, create: bool = False) -> int: ...

    def index(self, collection_id: int) -> SearchIndex: ...

    def save(self, collection_id: int) -> None: ...


Target = TypeVar("Target", bound=IngestTarget)


class IngestProgress(Protocol):
    """Receives progress as files are processed (a terminal bar, the admin page)."""

    def started(self, total_files: int) -> None: ...

    def file_done(self, path: str, outcome: str, chunks: int, reason: str = "") -> None: ...


class _Quiet:
    def started(self, total_files: int) -> None:
        pass

    def file_done(self, path: str, outcome: str, chunks: int, reason: str = "") -> None:
        pass


@dataclass
class _Plan:
    unchanged: list[str] = field(default_factory=list)
    renames: list[tuple[int, FileEntry]] = field(default_factory=list)
    parse: list[tuple[FileEntry, str, bool]] = field(default_factory=list)  # entry, hash, is_update
    gone: list[KnownDocument] = field(default_factory=list)


def _failures(report: IngestReport, own_job: bool) -> list[FileProgress]:
    """The failed files to record when the run ends: a claimed job's progress has recorded them already."""
    return [FileProgress(path, "failed", 0, reason) for path, reason in report.failed] if own_job else []


def parser_context() -> Any:
    """How parser processes start: forked from a small fork server, never from this process.

    The web app or worker that runs an ingest may hold the embedding and language models and
    many threads; a fork of it would start near the parsers' address-space cap (so every file
    would "run out of memory") and could inherit locks held by other threads.
    """
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["ingest.parser_process"])
    return context


class IngestService(Generic[Target]):
    """Brings a collection in step with a folder; ``corpus`` keeps its own type, so callers reach the rest of it."""

    def __init__(
        self, settings: IngestSettings, corpus: Target, tokenizer: Callable[[], str], default_collection: str,
        data_dir: Path, jobs: JobStore, formats: FormatRegistry = FORMATS,
    ) -> None:
        """``tokenizer`` says what chunk tokens are counted with (``chunk_document``), asked once a run parses;
        ``formats`` are the document formats read (``ingest.parsers.formats``)."""
        self.settings = settings
        self.corpus = corpus
        self.tokenizer = tokenizer
        self.default_collection = default_collection
        self.data_dir = data_dir
        self.jobs = jobs
        self.formats = formats

    def ingest(
        self, folder: Path, collection: str | None = None, sync: bool = False,
        progress: IngestProgress | None = None, job_id: int | None = None,
    ) -> IngestReport:
        """Ingest new and changed files under ``folder``; with ``sync``, drop files that are gone.

        ``job_id`` is a job a worker claimed from the queue (its ``progress`` records every file); without
        one the run records its own job, and its failed files when it ends.
        """
        started = time.perf_counter()
        progress = progress or _Quiet()
        self.corpus.verify_model()
        root = folder.resolve()
        scan = scan_folder(root, self.settings, self.formats)
        store = self.corpus.store
        cid = self.corpus.collection_id(collection or self.default_collection, create=True)
        report = IngestReport(failed=list(scan.failures))
        report.job_id = job_id if job_id is not None else self.jobs.start(cid, str(root), sync)
        own_job = job_id is None
        progress.started(len(scan.files) + len(scan.failures))
        for path, reason in scan.failures:
            progress.file_done(path, "failed", 0, reason)
        try:
            self._run(cid, root, scan.files, sync, report, progress)
        except BaseException as exc:
            report.seconds = time.perf_counter() - started
            status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
            self._fail_job(report.job_id, report, status, exc, own_job)
            if is_disk_full(exc):
                raise DiskFullError(
                    f"ingest stopped: no space left on the disk holding the data ({self.data_dir}) or "
                    f"the database. Everything ingested before, and the {report.added + report.updated} files of "
                    "this run committed so far, are kept and searchable; free some space and run the ingest "
                    "again to add the rest."
                ) from exc
            raise
        report.seconds = time.perf_counter() - started
        totals = {c["name"]: c for c in store.status()}[collection or self.default_collection]
        report.documents, report.chunks = totals["documents"], totals["chunks"]
        self.jobs.finish(report.job_id, "done", report.as_json(), _failures(report, own_job))
        return report

    def _fail_job(self, job_id: int, report: IngestReport, status: str, exc: BaseException, own_job: bool) -> None:
        """Record the failed run; on a full disk even that write may fail, and the disk error is what to report."""
        try:
            self.jobs.finish(job_id, status, report.as_json(), _failures(report, own_job), error=repr(exc))
        except Exception as record_exc:
            if not (is_disk_full(exc) and is_disk_full(record_exc)):
                raise
            log.warning("could not record ingest job %s as %s: %s", job_id, status, record_exc)

    def _run(
        self, cid: int, root: Path, files: list[FileEntry], sync: bool, report: IngestReport,
        progress: IngestProgress,
    ) -> None:
        store = self.corpus.store
        known = store.known_documents(cid, str(root))
        plan = self._plan(files, known, report, progress)
        index = self.corpus.index(cid) if (plan.parse or plan.gone or plan.renames) else None
        for doc_id, entry in plan.renames:
            store.rename(doc_id, entry.rel, entry.mtime_ns)
            report.renamed += 1
            progress.file_done(entry.rel, "renamed", 0)
        if index is not None and plan.renames:
            # The file name is part of each chunk's searchable text: re-index, without re-embedding.
            moved = store.chunk_ids_of([doc_id for doc_id, _ in plan.renames])
            for ids, vectors, texts in store.iter_chunk_payloads(moved):
                index.add(ids, vectors, texts)
        report.unchanged = len(plan.unchanged)
        if plan.parse:
            self._parse_and_embed(cid, root, plan.parse, report, progress)
        if sync and plan.gone and index is not None:
            removed_ids = store.delete_documents(d.id for d in plan.gone)
            index.remove(removed_ids)
            report.removed = len(plan.gone)
        if index is not None:
            self.corpus.save(cid)

    def _plan(
        self, files: list[FileEntry], known: dict[str, KnownDocument], report: IngestReport,
        progress: IngestProgress,
    ) -> _Plan:
        """Sort files into unchanged, renamed and to-parse; hashes only what size and mtime cannot vouch for."""
        plan = _Plan()
        seen = {f.rel for f in files}
        missing_by_hash = {k.content_hash: k for p, k in known.items() if p not in seen}
        for entry in files:
            old = known.get(entry.rel)
            if old and old.size == entry.size and old.mtime_ns == entry.mtime_ns:
                plan.unchanged.append(entry.rel)
                continue
            try:
                digest = sha256_file(entry.path)
            except OSError as exc:
                report.failed.append((entry.rel, f"cannot read file: {exc.strerror or exc}"))
                progress.file_done(entry.rel, "failed", 0, report.failed[-1][1])
                continue
            if old and old.content_hash == digest:
                self.corpus.store.touch(old.id, entry.mtime_ns)
                plan.unchanged.append(entry.rel)
            elif old is None and digest in missing_by_hash:
                plan.renames.append((missing_by_hash.pop(digest).id, entry))
            else:
                plan.parse.append((entry, digest, old is not None))
        for rel in plan.unchanged:
            progress.file_done(rel, "unchanged", 0)
        renamed_ids = {doc_id for doc_id, _ in plan.renames}
        plan.gone = [k for p, k in known.items() if p not in seen and k.id not in renamed_ids]
        return plan

    def _parse_and_embed(
        self, cid: int, root: Path, todo: list[tuple[FileEntry, str, bool]], report: IngestReport,
        progress: IngestProgress,
    ) -> None:
        group: list[tuple[FileEntry, str, bool, PreparedFile]] = []
        last_save = time.monotonic()
        for entry, digest, is_update, outcome in self._prepared(todo):
            if isinstance(outcome, str):
                report.failed.append((entry.rel, outcome))
                progress.file_done(entry.rel, "failed", 0, outcome)
                continue
            group.append((entry, digest, is_update, outcome))
            if sum(len(g[3].chunks) for g in group) >= EMBED_GROUP_CHUNKS:
                self._commit_group(cid, root, group, report, progress)
                group = []
            if time.monotonic() - last_save > self.settings.save_every_s:
                self.corpus.save(cid)
                last_save = time.monotonic()
        if group:
            self._commit_group(cid, root, group, report, progress)

    def _prepared(
        self, todo: list[tuple[FileEntry, str, bool]]
    ) -> Iterator[tuple[FileEntry, str, bool, PreparedFile | str]]:
        """Parse files in parser processes ahead of the embedder, in order, with a time limit each."""
        from pebble import ProcessFuture, ProcessPool
        from pebble.common import ProcessExpired

        settings = self.settings
        tokenizer = self.tokenizer()
        window = max(4, settings.parse_workers * 4)
        with ProcessPool(
            max_workers=settings.parse_workers, initializer=init_parser_process, initargs=(settings.worker_memory_mb,),
            context=parser_context(),
        ) as pool:
            pending: deque[tuple[FileEntry, str, bool, ProcessFuture]] = deque()
            queue = deque(todo)
            while queue or pending:
                while queue and len(pending) < window:
                    entry, digest, is_update = queue.popleft()
                    future = pool.schedule(
                        prepare_file, args=(entry.path, settings, tokenizer, self.formats),
                        timeout=settings.parse_timeout_s,
                    )
                    pending.append((entry, digest, is_update, future))
                entry, digest, is_update, future = pending.popleft()
                try:
                    yield entry, digest, is_update, future.result()
                except SkipFile as exc:
                    yield entry, digest, is_update, str(exc)
                except FutureTimeout:
                    yield entry, digest, is_update, (
                        f"parsing took longer than {settings.parse_timeout_s:g} s (ingest.parse_timeout_s)"
                    )
                except ProcessExpired as exc:
                    yield entry, digest, is_update, f"parser crashed or ran out of memory (exit code {exc.exitcode})"
                except MemoryError:
                    yield entry, digest, is_update, "parser ran out of memory (possible decompression bomb)"

    def _commit_group(
        self, cid: int, root: Path, group: list[tuple[FileEntry, str, bool, PreparedFile]],
        report: IngestReport, progress: IngestProgress,
    ) -> None:
        """Embed a group of files, commit them in one transaction, then update the index."""
        texts = [searchable_text(e.rel, c.heading, c.text) for e, _, _, p in group for c in p.chunks]
        vectors = self.corpus.embedder.embed_passages(texts, background=True)
        docs, offset = [], 0
        for entry, digest, _, prepared in group:
            n = len(prepared.chunks)
            docs.append(NewDocument(entry.rel, digest, entry.size, entry.mtime_ns, prepared.title,
                                    prepared.pages, prepared.chunks, vectors[offset : offset + n], prepared.ocr_used))
            offset += n
        removed, added = self.corpus.store.write_documents(cid, str(root), docs)
        index = self.corpus.index(cid)
        index.remove(removed)
        index.add(np.array(added, dtype=np.int64), vectors, texts)
        for entry, _, is_update, prepared in group:
            report.updated += is_update
            report.added += not is_update
            report.embedded_chunks += len(prepared.chunks)
            report.embedded_tokens += sum(c.token_count for c in prepared.chunks)
            report.pages += len(prepared.pages)
            progress.file_done(entry.rel, "updated" if is_update else "added", len(prepared.chunks))
