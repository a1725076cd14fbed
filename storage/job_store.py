"""Ingest jobs in the database: queued by any app process, claimed by exactly one worker under a lease.

A worker claims the oldest queued job (``SELECT ... FOR UPDATE SKIP LOCKED`` on PostgreSQL, so
two workers never take the same one; on SQLite the update is conditional on the job still being
queued), then reports a heartbeat while it runs. A running job whose heartbeat is older than the
lease belongs to a worker that died: it is queued again, or failed once it has had its attempts.
Per-file progress rows are written as the job runs, so every app process shows the same progress.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select, update

from storage.db import Database
from storage.models import Collection, IngestFailure, IngestJob, IngestJobFile, utcnow

FILES_SHOWN = 20
FAILURES_SHOWN = 500


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


@dataclass(frozen=True)
class FileProgress:
    """One handled file of a job: added, updated, unchanged, renamed or failed (with the reason)."""

    path: str
    outcome: str
    chunks: int
    reason: str = ""


@dataclass(frozen=True)
class LeaseOutcome:
    """What the lease sweep did to a job whose worker stopped reporting."""

    job_id: int
    requeued: bool
    message: str


class JobStore:
    """Reads and writes ingest jobs and their per-file progress."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def enqueue(self, collection_id: int, root: str, sync: bool, requested_by: str) -> int:
        """Queue a job; returns its id."""
        with self.db.session() as s:
            job = IngestJob(collection_id=collection_id, root=root, status="queued", counts={}, sync=sync,
                            requested_by=requested_by, attempts=0, total_files=0, done_files=0)
            s.add(job)
            s.flush()
            return job.id

    def claim(self, worker: str) -> ClaimedJob | None:
        """Take the oldest queued job for ``worker``, or None when there is none.

        One statement: on PostgreSQL the row is picked ``FOR UPDATE SKIP LOCKED``, so concurrent
        workers each get a different job without waiting; SQLite has no row locks (the clause is
        not rendered) and its single UPDATE takes the database's write lock.
        """
        oldest = (select(IngestJob.id).where(IngestJob.status == "queued").order_by(IngestJob.id).limit(1)
                  .with_for_update(skip_locked=True))
        take = (update(IngestJob).where(IngestJob.id == oldest.scalar_subquery(), IngestJob.status == "queued")
                .values(status="running", worker=worker, heartbeat_at=utcnow(), started_at=utcnow(),
                        attempts=IngestJob.attempts + 1, total_files=0, done_files=0, error=None, finished_at=None)
                .returning(IngestJob.id, IngestJob.collection_id, IngestJob.root, IngestJob.sync,
                           IngestJob.requested_by, IngestJob.attempts)
                .execution_options(synchronize_session=False))
        with self.db.session() as s:
            row = s.execute(take).first()
            if row is None:
                return None
            s.execute(delete(IngestJobFile).where(IngestJobFile.job_id == row.id))  # a new attempt starts afresh
            s.execute(delete(IngestFailure).where(IngestFailure.job_id == row.id))
            name = s.scalars(select(Collection.name).where(Collection.id == row.collection_id)).one()
            return ClaimedJob(row.id, row.collection_id, name, row.root, bool(row.sync), row.requested_by or "system",
                              row.attempts)

    def heartbeat(self, job_id: int, worker: str) -> bool:
        """Renew a running job's lease; False when the worker no longer holds it."""
        with self.db.session() as s:
            renewed = s.execute(
                update(IngestJob).where(IngestJob.id == job_id, IngestJob.worker == worker,
                                        IngestJob.status == "running").values(heartbeat_at=utcnow())
            )
            return bool(renewed.rowcount)  # type: ignore[attr-defined]

    def set_total(self, job_id: int, total: int) -> None:
        """Record how many files the job will handle."""
        with self.db.session() as s:
            s.execute(update(IngestJob).where(IngestJob.id == job_id).values(total_files=total))

    def record_files(self, job_id: int, files: Sequence[FileProgress]) -> None:
        """Append handled files to a job's progress."""
        if not files:
            return
        with self.db.session() as s:
            s.add_all(IngestJobFile(job_id=job_id, path=f.path, outcome=f.outcome, chunks=f.chunks, reason=f.reason)
                      for f in files)
            s.execute(update(IngestJob).where(IngestJob.id == job_id).values(
                done_files=IngestJob.done_files + len(files)))

    def requeue(self, job_id: int) -> None:
        """Give a job back to the queue (its worker is stopping)."""
        with self.db.session() as s:
            s.execute(update(IngestJob).where(IngestJob.id == job_id).values(
                status="queued", worker=None, heartbeat_at=None, finished_at=None))

    def fail(self, job_id: int, error: str) -> None:
        """Mark a job failed with the message the admin sees."""
        with self.db.session() as s:
            s.execute(update(IngestJob).where(IngestJob.id == job_id).values(
                status="failed", error=error, finished_at=utcnow()))

    def expire_leases(self, lease_s: float, max_attempts: int) -> list[LeaseOutcome]:
        """Requeue (or fail, after ``max_attempts``) running jobs whose worker stopped reporting.

        Single UPDATE statements, so two processes sweeping at once never both act on a job.
        """
        lost = f"its worker stopped reporting for over {lease_s:g} s (jobs.lease_s)"
        gave_up = f"{lost}; gave up after {max_attempts} attempts (jobs.max_attempts)"
        expired = (IngestJob.status == "running", IngestJob.worker.is_not(None),
                   IngestJob.heartbeat_at < utcnow() - timedelta(seconds=lease_s))
        fail = (update(IngestJob).where(*expired, IngestJob.attempts >= max_attempts)
                .values(status="failed", error=gave_up, finished_at=utcnow())
                .returning(IngestJob.id, IngestJob.worker).execution_options(synchronize_session=False))
        requeue = (update(IngestJob).where(*expired, IngestJob.attempts < max_attempts)
                   .values(status="queued", worker=None, heartbeat_at=None)
                   .returning(IngestJob.id).execution_options(synchronize_session=False))
        with self.db.session() as s:
            failed = [LeaseOutcome(job_id, False, gave_up.replace("its worker", f"worker {worker}"))
                      for job_id, worker in s.execute(fail).all()]
            requeued = [LeaseOutcome(job_id, True, f"{lost}; queued again") for job_id in s.scalars(requeue).all()]
        return failed + requeued

    def state(self, job_id: int) -> str | None:
        """A job's status, or None when there is no such job."""
        with self.db.session() as s:
            return s.scalar(select(IngestJob.status).where(IngestJob.id == job_id))

    def job(self, job_id: int) -> dict[str, Any] | None:
        """A job with its latest files and every failure, as the admin page shows it."""
        with self.db.session() as s:
            row = s.execute(select(IngestJob, Collection.name).join(Collection).where(IngestJob.id == job_id)).first()
            return None if row is None else self._view(s, row[0], row[1])

    def recent(self, limit: int) -> list[dict[str, Any]]:
        """The newest jobs queued through the app (not the command line's), newest first."""
        query = (select(IngestJob, Collection.name).join(Collection).where(IngestJob.requested_by.is_not(None))
                 .order_by(IngestJob.id.desc()).limit(limit))
        with self.db.session() as s:
            return [self._view(s, job, name) for job, name in s.execute(query).all()]

    @staticmethod
    def _view(s: Any, job: IngestJob, collection: str) -> dict[str, Any]:
        files = s.scalars(select(IngestJobFile).where(IngestJobFile.job_id == job.id)
                          .order_by(IngestJobFile.id.desc()).limit(FILES_SHOWN)).all()
        failed = s.execute(select(IngestJobFile.path, IngestJobFile.reason)
                           .where(IngestJobFile.job_id == job.id, IngestJobFile.outcome == "failed")
                           .order_by(IngestJobFile.id).limit(FAILURES_SHOWN)).all()
        counts = dict(job.counts or {})
        return {
            "id": job.id, "collection": collection, "source": job.root, "sync": bool(job.sync),
            "started_by": job.requested_by or "", "state": job.status, "total": job.total_files,
            "done": job.done_files, "attempts": job.attempts, "worker": job.worker,
            "files": [{"path": f.path, "outcome": f.outcome, "chunks": f.chunks, "reason": f.reason}
                      for f in reversed(files)],
            "failures": [(p, r) for p, r in failed],
            "summary": counts if job.status == "done" else {}, "error": job.error,
            "started": job.started_at, "finished": job.finished_at,
        }
