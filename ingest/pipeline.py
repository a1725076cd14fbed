"""Incremental ingestion of a folder into a collection: scan, diff, parse, commit, index, embed.

Keyword first: a parsed file's chunks are committed without embeddings (replacing its old
ones in the same transaction) and go into the BM25 index at once, so the file is
keyword-searchable within seconds; an embedding pass (``ingest.embedding_pass``) embeds
them behind the parser, stores the vectors and adds them to the dense index.

Order of writes, which is what makes a crash at any point safe: the database changes first,
in one transaction a step; only then do the in-memory indexes change, and they are saved
atomically now and then. The database is the truth, and opening an index reconciles it
(BM25 holds every chunk, the dense index the embedded ones); chunks a crash left without
embeddings are embedded by the collection's next run. A crash loses at most unacknowledged work.
"""

from __future__ import annotations

import logging
import multiprocessing
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

import numpy as np

from ingest.embedding_pass import EmbeddingPass
from ingest.errors import SkipFile
from ingest.parser_process import PreparedFile, init_parser_process, prepare_file
from ingest.parsers import FORMATS, FormatRegistry
from ingest.scanner import FileEntry, scan_folder
from ingest.settings import IngestSettings
from ingest.shared_jobs import SharedFiles
from ingest.uploads import Upload, UploadBatch, UploadFolder
from storage.disk import is_disk_full
from storage.documents import DocumentStore, KnownDocument, NewDocument, searchable_text
from storage.errors import DiskFullError
from storage.file_claims import FileClaims
from storage.hashing import sha256_file
from storage.job_store import FileProgress, JobStore
from storage.search_index import SearchIndex
from storage.sources import SyncRules

log = logging.getLogger(__name__)


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
    held: str | None = None
    """Why the run removed nothing although files are gone (a source's removal limit); None when it did not hold."""
    phases: dict[str, float] = field(default_factory=dict)
    """Seconds spent scanning, planning (hashing), parsing (every file keyword-searchable at its end, embedding
    meanwhile), embedding what was left after parsing, removing, and saving the index."""

    def as_json(self) -> dict[str, Any]:
        """The summary as a JSON-ready dict."""
        return {
            "added": self.added, "updated": self.updated, "unchanged": self.unchanged,
            "removed": self.removed, "renamed": self.renamed,
            "failed": [{"path": p, "reason": r} for p, r in self.failed],
            "documents": self.documents, "chunks": self.chunks, "seconds": round(self.seconds, 3),
            "held": self.held, "phases": {name: round(t, 3) for name, t in self.phases.items()},
        }

    def timed(self, phase: str, since: float) -> float:
        """Add the time since ``since`` to ``phase``; returns now, the next phase's start."""
        now = time.perf_counter()
        self.phases[phase] = self.phases.get(phase, 0.0) + now - since
        return now


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

    def doing(self, what: str) -> None:
        """What the run does now, in words ("parsing report.pdf"), before the step's files are done."""

    def flush(self) -> None:
        """Send what is pending now: a shared job ends without a last ``file_done`` here (workers record theirs)."""


class _Quiet:
    def started(self, total_files: int) -> None:
        pass

    def file_done(self, path: str, outcome: str, chunks: int, reason: str = "") -> None:
        pass

    def doing(self, what: str) -> None:
        pass

    def flush(self) -> None:
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


def _remove_files(root: Path, failed: list[tuple[str, str]]) -> None:
    for rel, _ in failed:
        path = (root / rel).resolve()
        if path.is_relative_to(root) and path.is_file():
            path.unlink(missing_ok=True)
def _removal_hold(gone: int, known: int, present: int, rules: SyncRules) -> str | None:
    """Why a source's run must not remove the ``gone`` of its ``known`` documents; None when it may."""
    if rules.max_removal_share is None:
        return None
    if present == 0:
        return f"the folder is empty, so all {known} documents would be removed: the share looks unmounted"
    if gone > rules.max_removal_share * known:
        return (f"{gone} of {known} documents ({gone / known:.0%}) would be removed, over this source's limit of "
                f"{rules.max_removal_share:.0%}: the share looks partly unmounted, or files were moved away")
    return None


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
        data_dir: Path, jobs: JobStore, formats: FormatRegistry = FORMATS, claims: FileClaims | None = None,
    ) -> None:
        """``tokenizer`` says what chunk tokens are counted with (``chunk_document``), asked once a run parses;
        ``formats`` are the document formats read (``ingest.parsers.formats``); with ``claims`` (the PostgreSQL
        index backend) a queued job's files are shared with every other worker (``ingest.shared_jobs``)."""
        self.settings = settings
        self.corpus = corpus
        self.tokenizer = tokenizer
        self.default_collection = default_collection
        self.data_dir = data_dir
        self.jobs = jobs
        self.formats = formats
        self.claims = claims

    def ingest(
        self, folder: Path, collection: str | None = None, sync: bool = False,
        progress: IngestProgress | None = None, job_id: int | None = None, rules: SyncRules | None = None,
        remove_failed: bool = False, worker: str = "",
    ) -> IngestReport:
        """Ingest new and changed files under ``folder``; with ``sync``, drop files that are gone.

        ``job_id`` is a job a worker claimed from the queue (its ``progress`` records every file); without
        one the run records its own job, and its failed files when it ends. A source's ``rules`` say which
        files count and how large a share of the documents a run may remove: a run that would remove
        more, or finds the folder missing, removes nothing and ends ``held`` with the reason.
        ``remove_failed`` deletes the files that could not be ingested before the job is marked done (an
        upload folder's own copies). ``worker`` is who claimed ``job_id``: with ``claims``, it shares the files.
        """
        started = time.perf_counter()
        progress = progress or _Quiet()
        self.corpus.verify_model()
        root = folder.resolve()
        progress.doing("listing the folder's files")
        store = self.corpus.store
        cid = self.corpus.collection_id(collection or self.default_collection, create=True)
        if rules is not None and rules.max_removal_share is not None and not root.is_dir():
            return self._hold_missing(cid, root, job_id)
        scan = scan_folder(root, self.settings, self.formats, rules)
        report = IngestReport(failed=list(scan.failures))
        report.timed("scan", started)
        report.job_id = job_id if job_id is not None else self.jobs.start(cid, str(root), sync)
        own_job = job_id is None
        progress.started(len(scan.files) + len(scan.failures))
        for path, reason in scan.failures:
            progress.file_done(path, "failed", 0, reason)
        try:
            self._run(cid, root, scan.files, sync, report, progress, rules, worker if job_id is not None else "")
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
        if remove_failed:
            _remove_files(root, report.failed)
        report.seconds = time.perf_counter() - started
        totals = {c["name"]: c for c in store.status()}[collection or self.default_collection]
        report.documents, report.chunks = totals["documents"], totals["chunks"]
        self.jobs.finish(report.job_id, "held" if report.held else "done", report.as_json(), _failures(report, own_job),
                         error=report.held)
        return report

    def _hold_missing(self, cid: int, root: Path, job_id: int | None) -> IngestReport:
        """End a source's run whose folder is gone (an unmounted share, most often): nothing removed."""
        report = IngestReport(held=f"{root} is missing: the share looks unmounted; nothing was removed")
        report.job_id = job_id if job_id is not None else self.jobs.start(cid, str(root), True)
        self.jobs.finish(report.job_id, "held", report.as_json(), error=report.held)
        return report

    def upload(self, uploads: list[Upload], collection: str, folder: UploadFolder) -> UploadBatch:
        """Keep the good files of a batch in ``folder``, each content once per collection (ingest.uploads)."""
        return folder.add(uploads, lambda hashes: self._known_content(collection, folder.folder, set(hashes)))

    def _known_content(self, collection: str, folder: Path, hashes: set[str]) -> dict[str, str]:
        """Which ``hashes`` the collection holds, or has waiting in ``folder`` (an upload whose job is queued)."""
        store = self.corpus.store
        cid = store.collection_id(collection)
        found = store.paths_by_content(cid, hashes) if cid is not None else {}
        root = folder.resolve()
        known = store.known_documents(cid, str(root)) if cid is not None else {}
        for entry in scan_folder(root, self.settings, self.formats).files:
            old = known.get(entry.rel)
            if old is None or (old.size, old.mtime_ns) != (entry.size, entry.mtime_ns):
                digest = sha256_file(entry.path)
                if digest in hashes:
                    found.setdefault(digest, entry.rel)
        return found

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
        progress: IngestProgress, rules: SyncRules | None = None, worker: str = "",
    ) -> None:
        store = self.corpus.store
        since = time.perf_counter()
        known = store.known_documents(cid, str(root))
        plan = self._plan(files, known, report, progress)
        self._drop_duplicates(cid, plan, report, progress)
        since = report.timed("plan", since)
        waiting = bool(store.unembedded(cid, 1))  # chunks a killed run wrote but never embedded
        index = self.corpus.index(cid) if (plan.parse or plan.gone or plan.renames or waiting) else None
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
        if plan.parse and worker and self.claims is not None and report.job_id is not None:
            # Shared among workers (PostgreSQL backend): each worker parses and embeds the files it claims, so
            # the job's time is all "parse" here.
            SharedFiles(self, self.claims, worker).run_job(report.job_id, plan.parse, report, progress)
            since = report.timed("parse", since)
            report.phases["embed"] = 0.0
        elif plan.parse or waiting:
            since = self._parse_and_embed(cid, root, plan.parse, report, progress, since)
        else:
            report.phases.update(parse=0.0, embed=0.0)
        if sync and plan.gone and rules is not None:
            report.held = _removal_hold(len(plan.gone), len(known), len(files), rules)
        if sync and plan.gone and index is not None and not report.held:
            removed_ids = store.delete_documents(d.id for d in plan.gone)
            index.remove(removed_ids)
            report.removed = len(plan.gone)
        since = report.timed("remove", since)
        if index is not None:
            self.corpus.save(cid)
        report.timed("save", since)

    def _plan(
        self, files: list[FileEntry], known: dict[str, KnownDocument], report: IngestReport,
        progress: IngestProgress,
    ) -> _Plan:
        """Sort files into unchanged, renamed and to-parse; hashes only what size and mtime cannot vouch for."""
        plan = _Plan()
        progress.doing("looking for new and changed files")
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

    def _drop_duplicates(self, cid: int, plan: _Plan, report: IngestReport, progress: IngestProgress) -> None:
        """A new file whose content the collection already holds, from any folder, is not ingested twice."""
        held = self.corpus.store.paths_by_content(cid, (digest for _, digest, is_update in plan.parse if not is_update))
        here: dict[str, str] = {}
        kept: list[tuple[FileEntry, str, bool]] = []
        for entry, digest, is_update in plan.parse:
            if is_update:
                kept.append((entry, digest, is_update))
                continue
            reason = (f"same content as {held[digest]}, already in the collection" if digest in held
                      else f"same content as {here[digest]}, ingested in this run" if digest in here else "")
            if reason:
                report.failed.append((entry.rel, reason))
                progress.file_done(entry.rel, "failed", 0, reason)
            else:
                here[digest] = entry.rel
                kept.append((entry, digest, is_update))
        plan.parse = kept

    def _parse_and_embed(
        self, cid: int, root: Path, todo: list[tuple[FileEntry, str, bool]], report: IngestReport,
        progress: IngestProgress, since: float,
    ) -> float:
        """Parse and keyword-index ``todo`` while a thread embeds; returns when all is embedded (phase times kept)."""
        embedding = EmbeddingPass(self.corpus, cid, self.settings.embed_group_chunks)
        try:
            if todo:
                self._parse(cid, root, todo, report, progress, embedding)
            self.corpus.save(cid)  # every parsed file keyword-searchable in other processes too
            since = report.timed("parse", since)
            progress.doing("embedding the passages keyword search finds already")
            report.embedded_chunks = embedding.finish()
        except BaseException:
            embedding.abort()
            raise
        return report.timed("embed", since)

    def _parse(
        self, cid: int, root: Path, todo: list[tuple[FileEntry, str, bool]], report: IngestReport,
        progress: IngestProgress, embedding: EmbeddingPass,
    ) -> None:
        group: list[tuple[FileEntry, str, bool, PreparedFile]] = []
        last_save = time.monotonic()
        for entry, digest, is_update, outcome in self._prepared(todo, progress):
            if isinstance(outcome, str):
                report.failed.append((entry.rel, outcome))
                progress.file_done(entry.rel, "failed", 0, outcome)
                continue
            group.append((entry, digest, is_update, outcome))
            if sum(len(g[3].chunks) for g in group) >= self.settings.embed_group_chunks:
                self._commit_group(cid, root, group, report, progress)
                embedding.wrote()
                group = []
            if time.monotonic() - last_save > self.settings.save_every_s:
                self.corpus.save(cid)
                last_save = time.monotonic()
        if group:
            self._commit_group(cid, root, group, report, progress)
            embedding.wrote()

    def _prepared(
        self, todo: Iterable[tuple[FileEntry, str, bool]], progress: IngestProgress, window: int = 0,
    ) -> Iterator[tuple[FileEntry, str, bool, PreparedFile | str]]:
        """Parse files in parser processes ahead of the embedder, in order, with a time limit each.

        ``todo`` is read lazily, at most ``window`` files ahead of the one handed back (a worker
        sharing a job claims files as it reads them).
        """
        from pebble import ProcessFuture, ProcessPool
        from pebble.common import ProcessExpired

        settings = self.settings
        tokenizer = self.tokenizer()
        window = window or max(4, settings.parsers() * 4)
        with ProcessPool(
            max_workers=settings.parsers(), initializer=init_parser_process, initargs=(settings.worker_memory_mb,),
            context=parser_context(),
        ) as pool:
            pending: deque[tuple[FileEntry, str, bool, ProcessFuture]] = deque()
            queue = iter(todo)
            more = True
            while more or pending:
                while more and len(pending) < window:
                    item = next(queue, None)
                    if item is None:
                        more = False
                        break
                    entry, digest, is_update = item
                    future = pool.schedule(
                        prepare_file, args=(entry.path, settings, tokenizer, self.formats),
                        timeout=settings.parse_timeout_s,
                    )
                    pending.append((entry, digest, is_update, future))
                if not pending:
                    break
                entry, digest, is_update, future = pending.popleft()
                progress.doing(f"parsing {entry.rel}")
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
        """Commit a group of files without embeddings in one transaction, then make them keyword-searchable."""
        texts = [searchable_text(e.rel, c.heading, c.text) for e, _, _, p in group for c in p.chunks]
        docs = [NewDocument(entry.rel, digest, entry.size, entry.mtime_ns, prepared.title, prepared.pages,
                            prepared.chunks, None, prepared.ocr_used) for entry, digest, _, prepared in group]
        removed, added = self.corpus.store.write_documents(cid, str(root), docs)
        index = self.corpus.index(cid)
        index.remove(removed)
        index.add_keyword(np.array(added, dtype=np.int64), texts)
        for entry, _, is_update, prepared in group:
            report.updated += is_update
            report.added += not is_update
            report.embedded_tokens += sum(c.token_count for c in prepared.chunks)
            report.pages += len(prepared.pages)
            progress.file_done(entry.rel, "updated" if is_update else "added", len(prepared.chunks))

    def help_other_jobs(self, worker: str) -> int:
        """Parse and embed open files of jobs other workers run (PostgreSQL backend); returns how many."""
        return SharedFiles(self, self.claims, worker).work() if self.claims is not None else 0
