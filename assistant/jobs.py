"""Ingestion started from the web app: jobs queued in the database, run by one worker, live progress.

Any app process queues a job; one worker claims it (a thread of the app, or ``run.py worker``
beside several app processes) and writes per-file progress and failure reasons to the database
as it goes, so every app process shows the same progress. A worker renews a lease while it runs;
a job whose worker died is queued again (or failed) once the lease expires. Folders must lie
under a root admins may ingest from (``assistant.ingest_roots``); uploads are checked one by one
(``ingest.uploads``: type, size, content against the extension, content already in the collection)
and kept under their own names.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from assistant import audit_events
from assistant.audit import AuditLog, Principal, require_admin
from assistant.corpus import Corpus
from assistant.errors import InvalidInput, NotFoundError, PermissionDenied
from assistant.ingest_roots import NO_ROOTS, IngestRoots
from assistant.settings import Settings
from ingest.pipeline import IngestService
from ingest.uploads import Upload, UploadFolder
from storage.job_store import ENDED, ClaimedJob, FileProgress, IngestJob, JobStore

SAFE_NAME_RE = re.compile(r"[^A-Za-z0-9._-]+")
FLUSH_EVERY_S = 0.5
JOBS_SHOWN = 10
log = logging.getLogger(__name__)


class _Progress:
    """Receives the pipeline's per-file progress for one job and writes it to the database in batches."""

    def __init__(self, store: JobStore, job_id: int) -> None:
        self.store = store
        self.job_id = job_id
        self._pending: list[FileProgress] = []
        self._now: str | None = None  # a step not written yet
        self._flushed = time.monotonic()
        self._lock = threading.Lock()
        self._total = self._done = 0
        self._shown_step = False

    def started(self, total_files: int) -> None:
        self._total = total_files
        self.store.set_total(self.job_id, total_files)

    def file_done(self, path: str, outcome: str, chunks: int, reason: str = "") -> None:
        with self._lock:
            self._pending.append(FileProgress(path, outcome, chunks, reason))
            self._done += 1
        # Failures are shown while the job still runs; the last file is written before the
        # pipeline marks the job done, so no reader ever sees "done" with files missing.
        last = self._done >= self._total
        if outcome == "failed" or last or time.monotonic() - self._flushed > FLUSH_EVERY_S:
            self.flush()

    def doing(self, what: str) -> None:
        with self._lock:
            self._now = what
        # The first step is shown at once (the admin sees "parsing report.pdf", not 0/12 for a while);
        # later ones at most every FLUSH_EVERY_S, by this call or by the lease's thread.
        if not self._shown_step or time.monotonic() - self._flushed > FLUSH_EVERY_S:
            self._shown_step = True
            self.flush()

    def flush(self) -> None:
        """Write what was handled since the last flush, and the step the run is at."""
        with self._lock:
            pending, self._pending = self._pending, []
            now, self._now = self._now, None
            self._flushed = time.monotonic()
            self.store.record_files(self.job_id, pending)
            if now is not None:
                self.store.set_now(self.job_id, now)


class _Lease:
    """Renews a claimed job's lease (and flushes its progress) on a thread while the job runs."""

    def __init__(self, store: JobStore, job_id: int, worker: str, progress: _Progress, every_s: float) -> None:
        # The thread flushes progress every FLUSH_EVERY_S (a long step started between two writes
        # is shown soon) and renews the lease every ``every_s``.
        self.store, self.job_id, self.worker, self.progress = store, job_id, worker, progress
        self.every_s = every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"enclave-lease-{job_id}", daemon=True)

    def __enter__(self) -> _Lease:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.progress.flush()

    def _beat(self) -> None:
        renewed = time.monotonic()
        while not self._stop.wait(min(FLUSH_EVERY_S, self.every_s)):
            if time.monotonic() - renewed >= self.every_s:
                renewed = time.monotonic()
                if not self.store.heartbeat(self.job_id, self.worker):
                    log.warning("ingest job %s: lease lost (requeued after jobs.lease_s without a heartbeat)",
                                self.job_id)
            self.progress.flush()


@dataclass(frozen=True)
class UploadResult:
    """What an upload did: the job ingesting the kept files (None when none was kept), and every refused file."""

    job_id: int | None
    stored: list[str]
    """The names the kept files are ingested and shown under (the uploaded names, made safe)."""
    refused: list[tuple[str, str]]
    """(uploaded name, reason) for each file not kept: unsupported, mislabelled, too large, already there."""


class IngestJobs:
    """Queues ingest jobs in the database and runs them, one at a time per worker."""

    def __init__(
        self, ingest: IngestService[Corpus], settings: Settings, audit: AuditLog, store: JobStore, roots: IngestRoots,
    ) -> None:
        self.ingest = ingest
        self.settings = settings
        self.ingest_roots = roots
        self.audit = audit
        self.store = store
        self.worker_name = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._worker: threading.Thread | None = None

    @property
    def upload_dir(self) -> Path:
        """Where uploaded files are kept, one folder per collection."""
        return self.settings.data_dir / "uploads"

    def roots(self, actor: Principal) -> list[str]:
        """The server folders admins may ingest from (admins only)."""
        return self.ingest_roots.folders(actor)

    def start_folder(self, actor: Principal, folder: str, collection: str, sync: bool = False) -> int:
        """Queue ingestion of a server folder under an allowed root; returns the job id."""
        require_admin(actor)
        path = self.allowed_folder(folder)
        return self._submit(actor, path, collection, sync)

    def start_upload(self, actor: Principal, files: list[tuple[Path, str]], collection: str) -> UploadResult:
        """Keep the good uploaded files (temporary path, original name) and queue their ingestion; list the rest."""
        require_admin(actor)
        if not files:
            raise InvalidInput("choose at least one file to upload")
        name = _collection_name(collection)
        folder = UploadFolder(self._collection_upload_dir(name), self.ingest.formats,
                              int(self.settings.web.max_upload_mb * 2**20), "web.max_upload_mb")
        batch = self.ingest.upload([Upload(tmp, original) for tmp, original in files], name, folder)
        stored = [s.name for s in batch.stored]
        if not stored:
            return UploadResult(None, [], batch.refused)
        try:
            self.audit.record(actor, audit_events.FilesUploaded(name, files=stored))
            job_id = self._submit(actor, folder.folder, name, False)
        except BaseException:
            batch.discard()  # a batch is kept whole with its job, or not at all
            raise
        return UploadResult(job_id, stored, batch.refused)

    def job(self, actor: Principal, job_id: int) -> IngestJob:
        """A job's progress, as written by whichever worker runs it (admins only)."""
        require_admin(actor)
        found = self.store.job(job_id)
        if found is None:
            raise NotFoundError(f"there is no ingest job {job_id}")
        return found

    def jobs(self, actor: Principal, limit: int = JOBS_SHOWN, include_command_line: bool = False) -> list[IngestJob]:
        """The newest jobs queued through the app by any process, or also the command line's (admins only)."""
        require_admin(actor)
        self.expire_leases()
        return self.store.recent(limit, include_command_line)

    def wait(self, job_id: int, timeout: float) -> None:
        """Block until a job ends (for the command line and tests)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.store.state(job_id) in ENDED:
                return
            time.sleep(0.1)
        raise TimeoutError(f"ingest job {job_id} still running after {timeout:g} s")

    def start_worker(self) -> None:
        """Run queued jobs on a thread of this process (the single-process set-up)."""
        with self._lock:
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self.run_worker, name="enclave-ingest", daemon=True)
                self._worker.start()

    def run_worker(self, stop: threading.Event | None = None) -> None:
        """Claim and run queued jobs until ``stop`` is set (``run.py worker`` runs this)."""
        stop = stop or threading.Event()
        while not stop.is_set():
            try:
                ran = self.run_next()
            except Exception:  # a worker outlives a database restart; the operator sees the log
                log.exception("ingest worker: the job queue failed; trying again in %g s", self.settings.jobs.poll_s)
                ran = False
            if not ran:
                self._wake.wait(self.settings.jobs.poll_s)
                self._wake.clear()

    def run_next(self) -> bool:
        """Requeue jobs of dead workers, then claim and run the oldest queued job, else help with another
        worker's job's files; False when there was nothing to do."""
        self.expire_leases()
        claimed = self.store.claim(self.worker_name)
        if claimed is None:  # no job to plan: take files of jobs other workers planned (PostgreSQL backend)
            return self.ingest.help_other_jobs(self.worker_name) > 0
        log.info("ingest job %s claimed by %s (attempt %s)", claimed.id, self.worker_name, claimed.attempts)
        self._run(claimed)
        return True

    def expire_leases(self) -> None:
        """Queue again (or fail) the running jobs whose worker stopped reporting."""
        jobs = self.settings.jobs
        for outcome in self.store.expire_leases(jobs.lease_s, jobs.max_attempts):
            log.warning("ingest job %s: %s", outcome.job_id, outcome.message)
            kind = audit_events.IngestRequeued if outcome.requeued else audit_events.IngestFailed
            self.audit.record("system", kind(f"job {outcome.job_id}", job=outcome.job_id, error=outcome.message))

    def allowed_folder(self, folder: str) -> Path:
        """The folder, resolved, when it is one under ``web.ingest_roots`` (or the uploads); else an error saying so."""
        if not folder.strip() or "\x00" in folder:
            raise InvalidInput("type the path of a folder on the server")
        path = Path(folder.strip()).expanduser().resolve()
        roots = self.ingest_roots.current()  # as saved by an admin in any process, at most seconds ago
        if not any(path.is_relative_to(root) for root in [*roots, self.upload_dir.resolve()]):
            allowed = ", ".join(str(r) for r in roots) or NO_ROOTS
            raise PermissionDenied(f"{path} is not under a folder admins may ingest from: {allowed}")
        if not path.is_dir():
            raise InvalidInput(f"{path} is not a folder")
        return path

    def _collection_upload_dir(self, collection: str) -> Path:
        folder = self.upload_dir / SAFE_NAME_RE.sub("_", collection)
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def _submit(self, actor: Principal, folder: Path, collection: str, sync: bool) -> int:
        name = _collection_name(collection)
        collection_id = self.ingest.corpus.collection_id(name, create=True)
        job_id = self.store.enqueue(collection_id, str(folder), sync, actor.username)
        self.audit.record(actor, audit_events.IngestStarted(name, folder=str(folder), sync=sync, job=job_id))
        self.notify()
        return job_id

    def notify(self) -> None:
        """Tell this process's worker a job was queued (starting it in the single-process set-up)."""
        if self.settings.jobs.in_process_worker:
            self.start_worker()
            self._wake.set()

    def accepted_formats(self) -> list[tuple[str, tuple[str, ...]]]:
        """The document formats uploads and folders may hold: (name, file suffixes)."""
        return [(spec.name, spec.suffixes) for spec in self.ingest.formats.specs]

    def _run(self, job: ClaimedJob) -> None:
        """Run one claimed job; any failure is recorded on the job, where the admin page shows it."""
        progress = _Progress(self.store, job.id)
        try:
            with _Lease(self.store, job.id, self.worker_name, progress, self.settings.jobs.lease_s / 4):
                # Serving processes only remove from the database: the version written next drops those too.
                self.ingest.corpus.live.reconcile(job.collection_id)
                # An upload that cannot be ingested is not kept: later uploads neither retry it nor call
                # its fixed copy a duplicate (the reason is on the job).
                uploaded = Path(job.root).resolve().is_relative_to(self.upload_dir.resolve())
                report = self.ingest.ingest(Path(job.root), job.collection, job.sync, progress, job_id=job.id,
                                            rules=job.rules, remove_failed=uploaded, worker=self.worker_name)
        except KeyboardInterrupt:
            self.store.requeue(job.id)  # the worker is stopping: the next one finishes the job
            raise
        except Exception as exc:  # noqa: BLE001 - the job's documented end state; shown to the admin
            error = str(exc) or type(exc).__name__
            self.store.fail(job.id, error)
            self.audit.record(job.requested_by, audit_events.IngestFailed(job.collection, job=job.id, error=error))
            return
        self.audit.record(job.requested_by, audit_events.IngestFinished.of(job.collection, job.id, report))
        if report.held:
            self.audit.record("system", audit_events.SourceRunHeld(job.root, job=job.id, reason=report.held))


def _collection_name(collection: str) -> str:
    from assistant.access import NAME_RE

    name = collection.strip()
    if not NAME_RE.match(name):
        raise InvalidInput("choose or type a collection name (letters, digits, spaces and . _ -)")
    return name
