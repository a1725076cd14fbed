"""Ingestion started from the web app: one background worker, live per-file progress, uploads.

Admins start jobs; one job runs at a time (the pipeline writes one index at a time) while
everyone else keeps asking questions. Folders must lie under ``web.ingest_roots``; uploads
are checked (size, and content against the extension) and stored under generated names.
"""

from __future__ import annotations

import queue
import re
import secrets
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistant.audit import AuditLog, Principal, require_admin
from assistant.errors import EnclaveError, InvalidInput, NotFoundError, PermissionDenied
from assistant.settings import Settings
from ingest.parsers import SUPPORTED_SUFFIXES
from ingest.parsers.sniff import detect_format
from ingest.pipeline import IngestService

SAFE_NAME_RE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass
class IngestJob:
    """One ingestion the admin started, as the admin page shows it while it runs."""

    id: int
    collection: str
    source: str
    sync: bool
    started_by: str
    state: str = "queued"
    total: int = 0
    files: list[dict[str, Any]] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    started: float = field(default_factory=time.time)
    finished: float | None = None

    def snapshot(self) -> dict[str, Any]:
        """A copy safe to hand to another thread."""
        return {**self.__dict__, "files": list(self.files), "failures": list(self.failures),
                "done": len(self.files)}


class _Progress:
    """Receives the pipeline's per-file progress for one job."""

    def __init__(self, job: IngestJob, lock: threading.Lock) -> None:
        self.job = job
        self.lock = lock

    def started(self, total_files: int) -> None:
        with self.lock:
            self.job.total = total_files

    def file_done(self, path: str, outcome: str, chunks: int, reason: str = "") -> None:
        with self.lock:
            self.job.files.append({"path": path, "outcome": outcome, "chunks": chunks, "reason": reason})
            if outcome == "failed":
                self.job.failures.append((path, reason))  # shown while the job still runs


def safe_upload_name(name: str) -> str:
    """A generated file name keeping a readable, harmless form of the uploaded name."""
    base = Path(name.replace("\\", "/").replace("\x00", "")).name
    stem, suffix = Path(base).stem, Path(base).suffix.lower()
    cleaned = SAFE_NAME_RE.sub("_", stem).strip("._")[:80] or "upload"
    suffix = "." + SAFE_NAME_RE.sub("_", suffix[1:])[:16] if suffix else ""  # e.g. ".:" or a 300-character one
    return f"{secrets.token_hex(6)}-{cleaned}{suffix}"


class IngestJobs:
    """Queues ingest jobs and runs them one at a time on a background thread."""

    def __init__(self, ingest: IngestService, settings: Settings, audit: AuditLog) -> None:
        self.ingest = ingest
        self.settings = settings
        self.audit = audit
        self._jobs: dict[int, IngestJob] = {}
        self._queue: queue.Queue[IngestJob] = queue.Queue()
        self._lock = threading.Lock()
        self._worker: threading.Thread | None = None

    @property
    def upload_dir(self) -> Path:
        """Where uploaded files are kept, one folder per collection."""
        return self.settings.data_dir / "uploads"

    def roots(self, actor: Principal) -> list[str]:
        """The server folders admins may ingest from (admins only)."""
        require_admin(actor)
        return [str(Path(r).resolve()) for r in self.settings.web.ingest_roots]

    def start_folder(self, actor: Principal, folder: str, collection: str, sync: bool = False) -> int:
        """Queue ingestion of a server folder under an allowed root; returns the job id."""
        require_admin(actor)
        path = self._allowed_folder(folder)
        return self._submit(actor, path, collection, sync)

    def start_upload(self, actor: Principal, files: list[tuple[Path, str]], collection: str) -> int:
        """Check and store uploaded files (temporary path, original name), then queue their ingestion."""
        require_admin(actor)
        if not files:
            raise InvalidInput("choose at least one file to upload")
        name = _collection_name(collection)
        target = self._collection_upload_dir(name)
        stored = [self._store_upload(tmp, original, target) for tmp, original in files]
        self.audit.record(actor, "files_uploaded", name, files=[s.name for s in stored])
        return self._submit(actor, target, name, False)

    def job(self, actor: Principal, job_id: int) -> dict[str, Any]:
        """A job's progress (admins only)."""
        require_admin(actor)
        with self._lock:
            if job_id not in self._jobs:
                raise NotFoundError(f"there is no ingest job {job_id}")
            return self._jobs[job_id].snapshot()

    def jobs(self, actor: Principal) -> list[dict[str, Any]]:
        """Jobs started since the server started, newest first (admins only)."""
        require_admin(actor)
        with self._lock:
            return [j.snapshot() for j in sorted(self._jobs.values(), key=lambda j: -j.id)]

    def wait(self, job_id: int, timeout: float) -> None:
        """Block until a job ends (for the command line and tests)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if self._jobs[job_id].state in ("done", "failed"):
                    return
            time.sleep(0.05)
        raise TimeoutError(f"ingest job {job_id} still running after {timeout:g} s")

    def _allowed_folder(self, folder: str) -> Path:
        if not folder.strip() or "\x00" in folder:
            raise InvalidInput("type the path of a folder on the server")
        path = Path(folder.strip()).expanduser().resolve()
        roots = [Path(r).resolve() for r in self.settings.web.ingest_roots] + [self.upload_dir.resolve()]
        if not any(path.is_relative_to(root) for root in roots):
            allowed = ", ".join(str(r) for r in roots) or "none configured (web.ingest_roots)"
            raise PermissionDenied(f"{path} is not under a folder admins may ingest from: {allowed}")
        if not path.is_dir():
            raise InvalidInput(f"{path} is not a folder")
        return path

    def _collection_upload_dir(self, collection: str) -> Path:
        folder = self.upload_dir / SAFE_NAME_RE.sub("_", collection)
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def _store_upload(self, tmp: Path, original: str, target: Path) -> Path:
        limit = self.settings.web.max_upload_mb * 2**20
        size = tmp.stat().st_size
        if size > limit:
            raise InvalidInput(f"{original} is {size / 2**20:.1f} MB, over the {self.settings.web.max_upload_mb:g} MB "
                               "upload limit (web.max_upload_mb)")
        name = safe_upload_name(original)
        if Path(name).suffix not in SUPPORTED_SUFFIXES:
            raise InvalidInput(f"{original}: unsupported file type {Path(name).suffix or '(no extension)'}")
        dest = target / name
        shutil.copyfile(tmp, dest)
        try:
            detect_format(dest)
        except EnclaveError as exc:
            dest.unlink()
            raise InvalidInput(f"{original}: {exc}") from exc
        return dest

    def _submit(self, actor: Principal, folder: Path, collection: str, sync: bool) -> int:
        name = _collection_name(collection)
        with self._lock:
            job = IngestJob(len(self._jobs) + 1, name, str(folder), sync, actor.username)
            self._jobs[job.id] = job
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._work, name="enclave-ingest", daemon=True)
                self._worker.start()
        self._queue.put(job)
        self.audit.record(actor, "ingest_started", name, folder=str(folder), sync=sync, job=job.id)
        return job.id

    def _work(self) -> None:
        while True:
            job = self._queue.get()
            with self._lock:
                job.state = "running"
            self._run(job)
            self._queue.task_done()

    def _run(self, job: IngestJob) -> None:
        """Run one job; any failure is recorded on the job, where the admin page shows it."""
        try:
            report = self.ingest.ingest(Path(job.source), job.collection, job.sync, _Progress(job, self._lock))
        except Exception as exc:  # noqa: BLE001 - the job's documented end state; shown to the admin
            with self._lock:
                job.state, job.error, job.finished = "failed", str(exc) or type(exc).__name__, time.time()
            self.audit.record(job.started_by, "ingest_failed", job.collection, job=job.id, error=job.error)
            return
        with self._lock:
            job.state, job.summary, job.finished = "done", report.as_json(), time.time()
            job.failures = list(report.failed)
        self.audit.record(job.started_by, "ingest_finished", job.collection, job=job.id,
                          **{k: v for k, v in report.as_json().items() if k != "failed"},
                          failed=len(report.failed))


def _collection_name(collection: str) -> str:
    from assistant.access import NAME_RE

    name = collection.strip()
    if not NAME_RE.match(name):
        raise InvalidInput("choose or type a collection name (letters, digits, spaces and . _ -)")
    return name
