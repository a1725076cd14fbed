"""Sources in the database: folders bound to a collection, and their runs, which are ingest jobs.

A source's run is an ``ingest_jobs`` row with its ``source_id``: the job queue claims it like any
other job (``JobStore.claim``), with the source's rules. The database keeps at most one queued and one
running run per source (two partial unique indexes), so a second request joins the queued run and a
second worker never starts a run of a source that is running.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from storage.db import Database
from storage.errors import StorageError
from storage.job_store import FileProgress, _iso, _utc
from storage.models import Collection, IngestJobFileRow, IngestJobRow, SourceRow

TRIGGERS = ("schedule", "change", "manual", "confirm")


class SourceExists(StorageError):
    """A source of that name is registered already."""


@dataclass(frozen=True)
class SyncRules:
    """Which files of a folder count, and how much a run may remove before it is held for an admin.

    ``max_removal_share`` None: the run removes whatever is gone (an admin confirmed it).
    """

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    max_file_mb: float | None = None
    max_removal_share: float | None = None


@dataclass(frozen=True)
class NewSource:
    """What an admin registers."""

    name: str
    collection_id: int
    folder: str
    schedule: str
    include: tuple[str, ...]
    exclude: tuple[str, ...]
    max_file_mb: float | None
    max_removal_share: float
    created_by: str


@dataclass(frozen=True)
class SourceRun:
    """One run of a source as its history shows it: when, why, what it did, what failed and why, phase times."""

    job: int
    trigger: str
    state: str
    started: datetime | None
    finished: datetime | None
    counts: Mapping[str, int] = field(default_factory=dict)
    phases: Mapping[str, float] = field(default_factory=dict)
    failures: tuple[FileProgress, ...] = ()
    reason: str | None = None

    def as_json(self) -> dict[str, Any]:
        """The run as a JSON-ready dict (times in ISO 8601 with their offset)."""
        return {"job": self.job, "trigger": self.trigger, "state": self.state, "started": _iso(self.started),
                "finished": _iso(self.finished), "counts": dict(self.counts), "phases": dict(self.phases),
                "failures": [f.as_json() for f in self.failures], "reason": self.reason}


@dataclass(frozen=True)
class Source:
    """A registered source with the state of its runs."""

    id: int
    name: str
    collection: str
    folder: str
    schedule: str
    include: tuple[str, ...]
    exclude: tuple[str, ...]
    max_file_mb: float | None
    max_removal_share: float
    enabled: bool
    created_by: str
    last_run: SourceRun | None = None
    queued: bool = False
    running: bool = False

    @property
    def held(self) -> str | None:
        """Why the last finished run removed nothing and waits for an admin; None when it did not."""
        return self.last_run.reason if self.last_run and self.last_run.state == "held" else None

    def as_json(self) -> dict[str, Any]:
        """The source as a JSON-ready dict."""
        return {"name": self.name, "collection": self.collection, "folder": self.folder, "schedule": self.schedule,
                "include": list(self.include), "exclude": list(self.exclude), "max_file_mb": self.max_file_mb,
                "max_removal_share": self.max_removal_share, "enabled": self.enabled, "created_by": self.created_by,
                "queued": self.queued, "running": self.running, "held": self.held,
                "last_run": self.last_run.as_json() if self.last_run else None}


COUNTS = ("added", "updated", "renamed", "removed", "unchanged")


class SourceStore:
    """Reads and writes sources and queues their runs."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, new: NewSource) -> int:
        """Register a source; returns its id. Raises SourceExists for a name in use."""
        row = SourceRow(name=new.name, collection_id=new.collection_id, folder=new.folder, schedule=new.schedule,
                        include=list(new.include), exclude=list(new.exclude), max_file_mb=new.max_file_mb,
                        max_removal_share=new.max_removal_share, enabled=True, created_by=new.created_by)
        try:
            with self.db.session() as s:
                s.add(row)
                s.flush()
                return row.id
        except IntegrityError as exc:
            raise SourceExists(f"there is a source named {new.name} already") from exc

    def sources(self) -> list[Source]:
        """Every source, by name, with its last finished run and whether a run is queued or running."""
        with self.db.session() as s:
            rows = s.execute(select(SourceRow, Collection.name).join(Collection).order_by(SourceRow.name)).all()
            running_or_queued = (IngestJobRow.source_id.is_not(None), IngestJobRow.status.in_(("queued", "running")))
            active = {(sid, state) for sid, state in s.execute(
                select(IngestJobRow.source_id, IngestJobRow.status).where(*running_or_queued)).all()}
            last_ids = {sid: job for sid, job in s.execute(
                select(IngestJobRow.source_id, IngestJobRow.id).where(
                    IngestJobRow.source_id.is_not(None), IngestJobRow.status.not_in(("queued", "running")))
                .order_by(IngestJobRow.id)).all()}
            last = {job.id: job for job in s.scalars(
                select(IngestJobRow).where(IngestJobRow.id.in_(list(last_ids.values()))))}
            return [_source(row, name, _run(last[last_ids[row.id]], ()) if row.id in last_ids else None,
                            (row.id, "queued") in active, (row.id, "running") in active) for row, name in rows]

    def source(self, name: str) -> Source | None:
        """One source by name, or None."""
        return next((s for s in self.sources() if s.name == name), None)

    def set_enabled(self, source_id: int, enabled: bool) -> None:
        """Switch a source's schedule and watching on or off (runs asked for by hand still run)."""
        with self.db.session() as s:
            s.execute(update(SourceRow).where(SourceRow.id == source_id).values(enabled=enabled))

    def remove(self, source_id: int) -> None:
        """Forget a source and its queued run; its documents and its past runs stay."""
        with self.db.session() as s:
            s.execute(delete(IngestJobRow).where(IngestJobRow.source_id == source_id, IngestJobRow.status == "queued"))
            s.execute(delete(SourceRow).where(SourceRow.id == source_id))

    def queue_run(self, source_id: int, trigger: str, requested_by: str) -> tuple[int, bool]:
        """Queue a run of a source, or join the one already queued; returns (job id, whether it is new).

        A ``confirm`` request turns the queued run into a confirmed one (it may remove what is gone).
        """
        with self.db.session() as s:
            row = s.get(SourceRow, source_id)
            if row is None:
                raise StorageError(f"there is no source {source_id}")
            collection_id, folder = row.collection_id, row.folder
        try:
            with self.db.session() as s:
                job = IngestJobRow(collection_id=collection_id, root=folder, status="queued", counts={}, sync=True,
                                   requested_by=requested_by, attempts=0, total_files=0, done_files=0,
                                   source_id=source_id, trigger=trigger)
                s.add(job)
                s.flush()
                return job.id, True
        except IntegrityError:
            with self.db.session() as s:
                queued = IngestJobRow.source_id == source_id, IngestJobRow.status == "queued"
                if trigger == "confirm":
                    s.execute(update(IngestJobRow).where(*queued).values(trigger="confirm"))
                job_id = s.scalar(select(IngestJobRow.id).where(*queued))
            if job_id is None:  # the queued run was claimed meanwhile: queue another
                return self.queue_run(source_id, trigger, requested_by)
            return job_id, False

    def runs(self, source_id: int, limit: int) -> list[SourceRun]:
        """A source's runs, newest first, with their failed files."""
        with self.db.session() as s:
            jobs = s.scalars(select(IngestJobRow).where(IngestJobRow.source_id == source_id)
                             .order_by(IngestJobRow.id.desc()).limit(limit)).all()
            failed = s.scalars(select(IngestJobFileRow).where(
                IngestJobFileRow.job_id.in_([j.id for j in jobs]), IngestJobFileRow.outcome == "failed")
                .order_by(IngestJobFileRow.id)).all()
            by_job: dict[int, list[FileProgress]] = {}
            for f in failed:
                by_job.setdefault(f.job_id, []).append(FileProgress(f.path, f.outcome, f.chunks, f.reason))
            return [_run(job, by_job.get(job.id, ())) for job in jobs]


def rules_of(row: SourceRow, trigger: str | None) -> SyncRules:
    """The rules a run of this source follows; a confirmed run may remove any share."""
    return SyncRules(tuple(row.include or ()), tuple(row.exclude or ()), row.max_file_mb,
                     None if trigger == "confirm" else row.max_removal_share)


def _source(row: SourceRow, collection: str, last: SourceRun | None, queued: bool, running: bool) -> Source:
    return Source(row.id, row.name, collection, row.folder, row.schedule, tuple(row.include or ()),
                  tuple(row.exclude or ()), row.max_file_mb, row.max_removal_share, bool(row.enabled),
                  row.created_by, last, queued, running)


def _run(job: IngestJobRow, failures: Sequence[FileProgress]) -> SourceRun:
    summary = dict(job.counts or {})
    counts = {name: int(summary.get(name, 0)) for name in COUNTS}
    counts["failed"] = len(summary.get("failed", ())) if isinstance(summary.get("failed"), list) else len(failures)
    reason = job.error if job.status in ("held", "failed", "interrupted") else None
    return SourceRun(job.id, job.trigger or "manual", job.status, _utc(job.started_at), _utc(job.finished_at),
                     counts, dict(summary.get("phases") or {}), tuple(failures), reason)
