"""Ingest jobs in the database, the one store of them: queued by any app process, claimed by exactly one
worker under a lease, or run at once by the command line; read back as ``IngestJob`` records.

A worker claims the oldest queued job (``SELECT ... FOR UPDATE SKIP LOCKED`` on PostgreSQL, so
two workers never take the same one; on SQLite the update is conditional on the job still being
queued), then reports a heartbeat while it runs. A running job whose heartbeat is older than the
lease belongs to a worker that died: it is queued again, or failed once it has had its attempts.
Per-file progress rows are written as the job runs, so every app process shows the same progress;
a command-line run records only its failed files, when it ends.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, exists, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from storage.db import Database
from storage.models import Collection, IngestJobFileRow, IngestJobRow, SourceRow, utcnow

if TYPE_CHECKING:
    from storage.sources import SyncRules

SUPERSEDED = "the run of its source queued since does all it would have done"
FILES_SHOWN = 500
FAILURES_SHOWN = 500
ENDED = ("done", "held", "failed", "interrupted")
"""A held run (a source's run that would have removed too much) ended too: it removed nothing."""
NOW_KEY = "now"
"""The key of a running job's counts that holds what it is doing (no column of its own: no migration)."""


@dataclass(frozen=True)
class ClaimedJob:
    """A job a worker has just claimed: what to ingest, and how many times it was started."""

    id: int
    collection_id: int
    collection: str
    root: str
    sync: bool
    requested_by: str
    attempts: int
    source_id: int | None = None
    rules: SyncRules | None = None
    """A source's run follows its source's rules (``storage.sources``); a plain job has none."""


@dataclass(frozen=True)
class FileProgress:
    """One handled file of a job: added, updated, unchanged, renamed or failed (with the reason)."""

    path: str
    outcome: str
    chunks: int
    reason: str = ""

    def as_json(self) -> dict[str, Any]:
        """The file as a JSON-ready dict."""
        return {"path": self.path, "outcome": self.outcome, "chunks": self.chunks, "reason": self.reason}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FileProgress:
        """The file back from ``as_json``."""
        return cls(data["path"], data["outcome"], int(data["chunks"]), data.get("reason", ""))


@dataclass(frozen=True)
class IngestJob:
    """An ingest job as the CLI, the admin pages, the API and the worker read it.

    ``started_by`` is empty for a command-line run; ``files`` are the latest handled files, oldest
    first; ``failures`` every failed file, in order; ``summary`` the finished run's counts; ``now``
    what a running job is doing, in words ("parsing report.pdf").
    """

    id: int
    collection: str
    source: str
    state: str
    started_by: str = ""
    sync: bool = False
    total: int = 0
    done: int = 0
    attempts: int = 0
    worker: str | None = None
    files: tuple[FileProgress, ...] = ()
    failures: tuple[FileProgress, ...] = ()
    summary: Mapping[str, Any] = field(default_factory=dict)
    error: str | None = None
    started: datetime | None = None
    finished: datetime | None = None
    now: str = ""

    @property
    def ended(self) -> bool:
        """Whether the job has stopped: done, failed or interrupted."""
        return self.state in ENDED

    def as_json(self) -> dict[str, Any]:
        """The job as a JSON-ready dict (times in ISO 8601 with their offset)."""
        return {
            "id": self.id, "collection": self.collection, "source": self.source, "state": self.state,
            "started_by": self.started_by, "sync": self.sync, "total": self.total, "done": self.done,
            "attempts": self.attempts, "worker": self.worker, "files": [f.as_json() for f in self.files],
            "failures": [f.as_json() for f in self.failures], "summary": dict(self.summary), "error": self.error,
            "started": _iso(self.started), "finished": _iso(self.finished), "now": self.now,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> IngestJob:
        """The job back from ``as_json``."""
        return cls(
            id=int(data["id"]), collection=data["collection"], source=data["source"], state=data["state"],
            started_by=data.get("started_by", ""), sync=bool(data.get("sync", False)), total=int(data.get("total", 0)),
            done=int(data.get("done", 0)), attempts=int(data.get("attempts", 0)), worker=data.get("worker"),
            files=tuple(FileProgress.from_json(f) for f in data.get("files", ())),
            failures=tuple(FileProgress.from_json(f) for f in data.get("failures", ())),
            summary=dict(data.get("summary") or {}), error=data.get("error"),
            started=_time(data.get("started")), finished=_time(data.get("finished")), now=data.get("now", ""),
        )


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _utc(moment: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; they were written in UTC (PostgreSQL's come with their offset)."""
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment


@dataclass(frozen=True)
class LeaseOutcome:
    """What the lease sweep did to a job whose worker stopped reporting."""

    job_id: int
    requeued: bool
    message: str


class JobStore:
    """Reads and writes ingest jobs and the files they handled."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def enqueue(self, collection_id: int, root: str, sync: bool, requested_by: str) -> int:
        """Queue a job; returns its id."""
        with self.db.session() as s:
            job = IngestJobRow(collection_id=collection_id, root=root, status="queued", counts={}, sync=sync,
                               requested_by=requested_by, attempts=0, total_files=0, done_files=0)
            s.add(job)
            s.flush()
            return job.id

    def start(self, collection_id: int, root: str, sync: bool = False) -> int:
        """Record a run the command line starts at once (never queued, held by no worker); returns its id."""
        with self.db.session() as s:
            job = IngestJobRow(collection_id=collection_id, root=root, status="running", counts={}, sync=sync,
                               attempts=1, total_files=0, done_files=0)
            s.add(job)
            s.flush()
            return job.id

    def claim(self, worker: str) -> ClaimedJob | None:
        """Take the oldest queued job for ``worker``, or None when there is none.

        One statement: on PostgreSQL the row is picked ``FOR UPDATE SKIP LOCKED``, so concurrent
        workers each get a different job without waiting; SQLite has no row locks (the clause is
        not rendered) and its single UPDATE takes the database's write lock. A source's run waits
        while another run of the same source is running; should two workers race for it, the
        database's unique index refuses the second, which finds nothing this time.
        """
        job, other = IngestJobRow, aliased(IngestJobRow)
        source_busy = exists().where(other.source_id == job.source_id, other.status == "running")
        oldest = (select(job.id).where(job.status == "queued", ~source_busy).order_by(job.id).limit(1)
                  .with_for_update(skip_locked=True))
        take = (update(job).where(job.id == oldest.scalar_subquery(), job.status == "queued")
                .values(status="running", worker=worker, heartbeat_at=utcnow(), started_at=utcnow(), counts={},
                        attempts=job.attempts + 1, total_files=0, done_files=0, error=None, finished_at=None)
                .returning(job.id, job.collection_id, job.root, job.sync, job.requested_by, job.attempts,
                           job.source_id, job.trigger)
                .execution_options(synchronize_session=False))
        try:
            with self.db.session() as s:
                row = s.execute(take).first()
                if row is None:
                    return None
                # a new attempt starts afresh
                s.execute(delete(IngestJobFileRow).where(IngestJobFileRow.job_id == row.id))
                name = s.scalars(select(Collection.name).where(Collection.id == row.collection_id)).one()
                source = s.get(SourceRow, row.source_id) if row.source_id is not None else None
                return ClaimedJob(row.id, row.collection_id, name, row.root, bool(row.sync),
                                  row.requested_by or "system", row.attempts, row.source_id,
                                  _rules(source, row.trigger) if source is not None else None)
        except IntegrityError:
            return None

    def heartbeat(self, job_id: int, worker: str) -> bool:
        """Renew a running job's lease; False when the worker no longer holds it."""
        with self.db.session() as s:
            renewed = s.execute(
                update(IngestJobRow).where(IngestJobRow.id == job_id, IngestJobRow.worker == worker,
                                           IngestJobRow.status == "running").values(heartbeat_at=utcnow())
            )
            return bool(renewed.rowcount)  # type: ignore[attr-defined]

    def set_total(self, job_id: int, total: int) -> None:
        """Record how many files the job will handle."""
        with self.db.session() as s:
            s.execute(update(IngestJobRow).where(IngestJobRow.id == job_id).values(total_files=total))

    def set_now(self, job_id: int, now: str) -> None:
        """Record what a running job is doing, in words; kept in its counts until the summary replaces them."""
        with self.db.session() as s:
            s.execute(update(IngestJobRow).where(IngestJobRow.id == job_id, IngestJobRow.status == "running")
                      .values(counts={NOW_KEY: now}))

    def record_files(self, job_id: int, files: Sequence[FileProgress]) -> None:
        """Append handled files to a job's progress."""
        if not files:
            return
        with self.db.session() as s:
            add_files(s, job_id, files)

    def finish(self, job_id: int, state: str, summary: Mapping[str, Any],
               failures: Sequence[FileProgress] = (), error: str | None = None) -> None:
        """Record how a run ended, with the failed files it has not recorded as progress (a command-line run)."""
        with self.db.session() as s:
            s.execute(update(IngestJobRow).where(IngestJobRow.id == job_id).values(
                status=state, counts=dict(summary), error=error, finished_at=utcnow()))
            s.add_all(IngestJobFileRow(job_id=job_id, path=f.path, outcome=f.outcome, chunks=f.chunks,
                                       reason=f.reason) for f in failures)

    def requeue(self, job_id: int) -> None:
        """Give a job back to the queue (its worker is stopping); a source's run that has a queued successor
        ends ``interrupted`` instead, since that run does all it would have done."""
        job = IngestJobRow
        with self.db.session() as s:
            s.execute(update(job).where(job.id == job_id, _successor_queued()).values(
                status="interrupted", error=SUPERSEDED, finished_at=utcnow(), worker=None)
                .execution_options(synchronize_session=False))
            s.execute(update(job).where(job.id == job_id, job.status == "running").values(
                status="queued", worker=None, heartbeat_at=None, finished_at=None))

    def fail(self, job_id: int, error: str) -> None:
        """Mark a job failed with the message the admin sees."""
        with self.db.session() as s:
            s.execute(update(IngestJobRow).where(IngestJobRow.id == job_id).values(
                status="failed", error=error, finished_at=utcnow()))

    def expire_leases(self, lease_s: float, max_attempts: int) -> list[LeaseOutcome]:
        """Requeue (or fail, after ``max_attempts``) running jobs whose worker stopped reporting.

        Single UPDATE statements, so two processes sweeping at once never both act on a job.
        """
        job = IngestJobRow
        lost = f"its worker stopped reporting for over {lease_s:g} s (jobs.lease_s)"
        gave_up = f"{lost}; gave up after {max_attempts} attempts (jobs.max_attempts)"
        expired = (job.status == "running", job.worker.is_not(None),
                   job.heartbeat_at < utcnow() - timedelta(seconds=lease_s))
        fail = (update(job).where(*expired, job.attempts >= max_attempts)
                .values(status="failed", error=gave_up, finished_at=utcnow())
                .returning(job.id, job.worker).execution_options(synchronize_session=False))
        requeue = (update(job).where(*expired, job.attempts < max_attempts)
                   .values(status="queued", worker=None, heartbeat_at=None)
                   .returning(job.id).execution_options(synchronize_session=False))
        superseded = (update(job).where(*expired, _successor_queued())
                      .values(status="interrupted", error=f"{lost}; {SUPERSEDED}", finished_at=utcnow())
                      .returning(job.id).execution_options(synchronize_session=False))
        with self.db.session() as s:
            ended = [LeaseOutcome(job_id, False, f"{lost}; {SUPERSEDED}") for job_id in s.scalars(superseded).all()]
            failed = ended + [LeaseOutcome(job_id, False, gave_up.replace("its worker", f"worker {worker}"))
                              for job_id, worker in s.execute(fail).all()]
            requeued = [LeaseOutcome(job_id, True, f"{lost}; queued again") for job_id in s.scalars(requeue).all()]
        return failed + requeued

    def state(self, job_id: int) -> str | None:
        """A job's status, or None when there is no such job."""
        with self.db.session() as s:
            return s.scalar(select(IngestJobRow.status).where(IngestJobRow.id == job_id))

    def job(self, job_id: int) -> IngestJob | None:
        """A job with its latest files and every failure, or None when there is no such job."""
        with self.db.session() as s:
            row = s.execute(select(IngestJobRow, Collection.name).join(Collection)
                            .where(IngestJobRow.id == job_id)).first()
            return None if row is None else _record(s, row[0], row[1])

    def recent(self, limit: int, include_command_line: bool = False) -> list[IngestJob]:
        """The newest jobs, newest first: those queued through the app, or also the command line's runs."""
        query = (select(IngestJobRow, Collection.name).join(Collection)
                 .order_by(IngestJobRow.id.desc()).limit(limit))
        if not include_command_line:
            query = query.where(IngestJobRow.requested_by.is_not(None))
        with self.db.session() as s:
            return [_record(s, job, name) for job, name in s.execute(query).all()]


def add_files(s: Session, job_id: int, files: Sequence[FileProgress]) -> None:
    """Append handled files to a job's progress, in the caller's transaction."""
    s.add_all(IngestJobFileRow(job_id=job_id, path=f.path, outcome=f.outcome, chunks=f.chunks,
                               reason=f.reason) for f in files)
    s.execute(update(IngestJobRow).where(IngestJobRow.id == job_id).values(
        done_files=IngestJobRow.done_files + len(files)))


def _record(s: Session, job: IngestJobRow, collection: str) -> IngestJob:
    """The record of a job row, with its latest files and its failures."""
    latest = s.scalars(select(IngestJobFileRow).where(IngestJobFileRow.job_id == job.id)
                       .order_by(IngestJobFileRow.id.desc()).limit(FILES_SHOWN)).all()
    failed = s.scalars(select(IngestJobFileRow)
                       .where(IngestJobFileRow.job_id == job.id, IngestJobFileRow.outcome == "failed")
                       .order_by(IngestJobFileRow.id).limit(FAILURES_SHOWN)).all()
    return IngestJob(
        id=job.id, collection=collection, source=job.root, state=job.status, started_by=job.requested_by or "",
        sync=bool(job.sync), total=job.total_files, done=job.done_files, attempts=job.attempts, worker=job.worker,
        files=tuple(_file(f) for f in reversed(latest)), failures=tuple(_file(f) for f in failed),
        summary=dict(job.counts or {}) if job.status in ("done", "held") else {}, error=job.error,
        started=_utc(job.started_at), finished=_utc(job.finished_at),
        now=str((job.counts or {}).get(NOW_KEY, "")) if job.status == "running" else "",
    )


def _successor_queued() -> Any:
    """Whether a later run of the same source is queued: a second queued run of a source is refused."""
    other = aliased(IngestJobRow)
    return exists().where(other.source_id == IngestJobRow.source_id, other.status == "queued",
                          other.id != IngestJobRow.id)


def _rules(source: SourceRow, trigger: str | None) -> SyncRules:
    from storage.sources import rules_of  # storage.sources reads this module's records

    return rules_of(source, trigger)


def _file(row: IngestJobFileRow) -> FileProgress:
    return FileProgress(row.path, row.outcome, row.chunks, row.reason)
