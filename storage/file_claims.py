"""One job's files shared between several workers (the PostgreSQL index backend), claimed one by one.

The worker that claims a job lists the files to parse and offers them here; every worker (that
one included) then claims open files with ``SELECT ... FOR UPDATE SKIP LOCKED``, so two workers
never take the same file, and renews a lease on what it holds. A claim whose worker stopped
renewing for ``lease_s`` is open to anyone again. A file is marked done in the transaction
that writes its chunks (``DocumentStore.write_documents(claim=...)``), and only by the worker
that still holds it: a file is written once, and a worker killed at any point loses nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from storage.db import Database
from storage.errors import StorageError
from storage.job_store import FileProgress, add_files
from storage.models import IngestFileClaimRow, IngestJobRow, utcnow


class ClaimLost(StorageError):
    """Another worker took the file over (this worker stopped renewing its lease): its work is not kept."""


@dataclass(frozen=True)
class OfferedFile:
    """A file a job needs parsed: its path under the job's folder, its content hash, whether it replaces one."""

    path: str
    content_hash: str
    is_update: bool


@dataclass(frozen=True)
class FileClaim:
    """A file one worker holds, with what it needs to ingest it."""

    id: int
    job_id: int
    collection_id: int
    root: str
    file: OfferedFile


@dataclass(frozen=True)
class ClaimOutcome:
    """What became of a done file."""

    path: str
    outcome: str
    chunks: int
    reason: str


class FileClaims:
    """The ``ingest_file_claims`` table (PostgreSQL only: SQLite has no ``SKIP LOCKED``)."""

    def __init__(self, db: Database, lease_s: float) -> None:
        self.db = db
        self.lease_s = lease_s

    def offer(self, job_id: int, files: Sequence[OfferedFile]) -> None:
        """Open a job's files to every worker; files offered before (an earlier attempt) keep their state."""
        if not files:
            return
        rows = [{"job_id": job_id, "path": f.path, "content_hash": f.content_hash, "is_update": f.is_update,
                 "status": "open", "chunks": 0, "reason": ""} for f in files]
        with self.db.session() as s:
            s.execute(insert(IngestFileClaimRow).on_conflict_do_nothing(
                index_elements=["job_id", "path"]), rows)

    def claim(self, worker: str, limit: int, job_id: int | None = None) -> list[FileClaim]:
        """Take up to ``limit`` open (or abandoned) files of running jobs, of ``job_id`` only when given."""
        claim, job = IngestFileClaimRow, IngestJobRow
        abandoned = (claim.status == "claimed") & (claim.heartbeat_at < utcnow() - timedelta(seconds=self.lease_s))
        free = (select(claim.id).join(job, job.id == claim.job_id)
                .where(job.status == "running", (claim.status == "open") | abandoned)
                .order_by(claim.job_id, claim.id).limit(limit).with_for_update(of=claim, skip_locked=True))
        if job_id is not None:
            free = free.where(claim.job_id == job_id)
        take = (update(claim).where(claim.id.in_(free.scalar_subquery()))
                .values(status="claimed", worker=worker, heartbeat_at=utcnow())
                .returning(claim.id, claim.job_id, claim.path, claim.content_hash, claim.is_update)
                .execution_options(synchronize_session=False))
        with self.db.session() as s:
            taken = s.execute(take).all()
            jobs = {j.id: j for j in s.execute(select(job.id, job.collection_id, job.root)
                                               .where(job.id.in_({t.job_id for t in taken}))).all()}
        return sorted((FileClaim(t.id, t.job_id, jobs[t.job_id].collection_id, jobs[t.job_id].root,
                                 OfferedFile(t.path, t.content_hash, t.is_update)) for t in taken),
                      key=lambda c: c.id)

    def heartbeat(self, worker: str) -> None:
        """Renew the lease on every file ``worker`` holds."""
        with self.db.session() as s:
            s.execute(update(IngestFileClaimRow).where(IngestFileClaimRow.worker == worker,
                                                       IngestFileClaimRow.status == "claimed")
                      .values(heartbeat_at=utcnow()))

    def release(self, worker: str) -> None:
        """Give back the files ``worker`` holds (it is stopping): they are open again at once."""
        with self.db.session() as s:
            s.execute(update(IngestFileClaimRow).where(IngestFileClaimRow.worker == worker,
                                                       IngestFileClaimRow.status == "claimed")
                      .values(status="open", worker=None, heartbeat_at=None))

    def completion(self, claim: FileClaim, worker: str, outcome: str, chunks: int,
                   reason: str = "") -> Callable[[Session], None]:
        """What the file's write runs in its transaction (``DocumentStore.write_documents(also=...)``): the file
        marked done and added to its job's progress; raises ``ClaimLost`` when ``worker`` no longer holds it."""
        def complete(s: Session) -> None:
            done = s.execute(update(IngestFileClaimRow).where(
                IngestFileClaimRow.id == claim.id, IngestFileClaimRow.worker == worker,
                IngestFileClaimRow.status == "claimed").values(status="done", outcome=outcome, chunks=chunks,
                                                               reason=reason))
            if not done.rowcount:  # type: ignore[attr-defined]
                raise ClaimLost(f"{claim.file.path} was taken over by another worker")
            add_files(s, claim.job_id, [FileProgress(claim.file.path, outcome, chunks, reason)])

        return complete

    def fail(self, claim: FileClaim, worker: str, reason: str) -> None:
        """Mark a file that could not be ingested done, with the reason the admin sees."""
        with self.db.session() as s:
            self.completion(claim, worker, "failed", 0, reason)(s)

    def remaining(self, job_id: int) -> int:
        """Files of the job not done yet, held or not."""
        with self.db.session() as s:
            return int(s.scalar(select(func.count()).where(IngestFileClaimRow.job_id == job_id,
                                                           IngestFileClaimRow.status != "done")) or 0)

    def outcomes(self, job_id: int, paths: Sequence[str]) -> list[ClaimOutcome]:
        """What became of these done files of the job, whichever worker did them."""
        claim = IngestFileClaimRow
        with self.db.session() as s:
            rows = s.execute(select(claim.path, claim.outcome, claim.chunks, claim.reason).where(
                claim.job_id == job_id, claim.status == "done", claim.path.in_(list(paths))).order_by(claim.id))
            return [ClaimOutcome(r.path, r.outcome or "failed", r.chunks, r.reason) for r in rows]
