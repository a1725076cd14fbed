"""Sources: folders kept in step with a collection, on a schedule, on change, and on demand.

A source is a folder (a local disk, an NFS or SMB mount) bound to a collection, with a schedule,
include and exclude patterns, a size limit and an on/off switch. Each run is an ingest job with
``--sync`` semantics (changed files replaced, renames keep their embeddings, deleted files removed)
queued in the job store, so runs of many sources queue fairly and two runs of one source never
overlap. A run that would remove more than the source's share of its documents, or finds the folder
missing or empty, removes nothing and is held with the reason until an admin confirms.
``assistant.source_scheduler`` fires the schedules and watches local folders.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from assistant import audit_events
from assistant.access import NAME_RE
from assistant.audit import SYSTEM, AuditLog, Principal, require_admin
from assistant.corpus import Corpus
from assistant.errors import InvalidInput, NotFoundError
from assistant.jobs import IngestJobs
from assistant.settings import SourceSettings
from storage.job_store import ENDED
from storage.sources import NewSource, Source, SourceExists, SourceRun, SourceStore

__all__ = ["Source", "SourceRun", "SourceService", "parse_schedule"]

INTERVAL_RE = re.compile(r"^(?:every\s+)?(\d+)\s*(s|m|h|d)$", re.IGNORECASE)
UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}
SHORTEST_INTERVAL_S = 10
RUN_SEARCH = 50  # runs of one source looked through for the one just run (others may have run meanwhile)


def parse_schedule(schedule: str, start: datetime | None = None) -> Any:
    """The APScheduler trigger of ``every 15m`` (s, m, h or d) or a five-field cron expression; InvalidInput if neither.

    An interval counts from ``start`` (the source's last run), so a restart does not put the next run off.
    """
    from apscheduler.triggers.cron import CronTrigger
    from apscheduler.triggers.interval import IntervalTrigger

    text = " ".join(schedule.split())
    interval = INTERVAL_RE.match(text)
    if interval:
        seconds = int(interval[1]) * UNIT_S[interval[2].lower()]
        if seconds < SHORTEST_INTERVAL_S:
            raise InvalidInput(f"a schedule runs at most every {SHORTEST_INTERVAL_S} s")
        return IntervalTrigger(seconds=seconds, start_date=start, timezone="UTC")
    try:
        return CronTrigger.from_crontab(text, timezone="UTC")
    except ValueError as exc:
        raise InvalidInput(f"the schedule {schedule!r} is neither like 'every 15m' (s, m, h, d) nor a cron "
                           f"expression such as '0 2 * * *' (in UTC): {exc}") from exc


def _patterns(patterns: Sequence[str]) -> tuple[str, ...]:
    cleaned = tuple(p.strip() for p in patterns if p.strip())
    if any("\x00" in p for p in cleaned):
        raise InvalidInput("a pattern may not contain a NUL character")
    return cleaned


class SourceService:
    """What admins do with sources, from the admin page, the command line and the API."""

    def __init__(self, store: SourceStore, corpus: Corpus, jobs: IngestJobs, settings: SourceSettings,
                 audit: AuditLog) -> None:
        self.store = store
        self.corpus = corpus
        self.jobs = jobs
        self.settings = settings
        self.audit = audit

    def add(self, actor: Principal, name: str, folder: str, collection: str, schedule: str | None = None,
            include: Sequence[str] = (), exclude: Sequence[str] = (), max_file_mb: float | None = None,
            max_removal_share: float | None = None) -> Source:
        """Register a source and queue its first run (admins only; the web app's admins only under web.ingest_roots)."""
        require_admin(actor)
        name, collection = name.strip(), collection.strip()
        for what, value in (("source", name), ("collection", collection)):
            if not NAME_RE.match(value):
                raise InvalidInput(f"choose or type a {what} name (letters, digits, spaces and . _ -)")
        path = self._folder(actor, folder)
        schedule = " ".join((schedule or self.settings.default_schedule).split())
        parse_schedule(schedule)
        share = self.settings.max_removal_share if max_removal_share is None else max_removal_share
        if not 0 <= share <= 1:
            raise InvalidInput("the removal limit is a share between 0 and 1 (0.2 is 20%)")
        if max_file_mb is not None and max_file_mb <= 0:
            raise InvalidInput("the size limit must be above 0 MB")
        new = NewSource(name, self.corpus.collection_id(collection, create=True), str(path), schedule,
                        _patterns(include), _patterns(exclude), max_file_mb, share, actor.username)
        try:
            source_id = self.store.add(new)
        except SourceExists as exc:
            raise InvalidInput(str(exc)) from exc
        self.audit.record(actor, audit_events.SourceAdded(name, folder=str(path), collection=collection,
                                                          schedule=schedule))
        self.queue(source_id, "manual", actor.username)
        return self.source(actor, name)

    def sources(self, actor: Principal) -> list[Source]:
        """Every source with the state of its runs (admins only)."""
        require_admin(actor)
        return self.store.sources()

    def source(self, actor: Principal, name: str) -> Source:
        """One source by name (admins only)."""
        require_admin(actor)
        found = self.store.source(name)
        if found is None:
            raise NotFoundError(f"there is no source named {name}")
        return found

    def runs(self, actor: Principal, name: str, limit: int | None = None) -> list[SourceRun]:
        """A source's runs, newest first: counts, failed files with reasons, phase times (admins only)."""
        return self.store.runs(self.source(actor, name).id, limit or self.settings.runs_shown)

    def sync(self, actor: Principal, name: str) -> tuple[int, bool]:
        """Queue a run now, or join the one already queued; returns (job id, whether it is a new run)."""
        return self.queue(self.source(actor, name).id, "manual", actor.username)

    def run_here(self, actor: Principal, name: str, confirm: bool = False) -> SourceRun:
        """Queue a run (a confirmed one with ``confirm``) and run queued jobs in this process until it ends.

        For the command line: jobs queued before it run first, and a worker elsewhere may run it instead.
        """
        job_id = self.confirm(actor, name) if confirm else self.sync(actor, name)[0]
        while (state := self.jobs.store.state(job_id)) not in ENDED:
            if state is None:
                raise NotFoundError(f"the run of {name} was dropped: the source was removed meanwhile")
            if not self.jobs.run_next():
                time.sleep(self.jobs.settings.jobs.poll_s)
        return next(r for r in self.runs(actor, name, limit=RUN_SEARCH) if r.job == job_id)

    def confirm(self, actor: Principal, name: str) -> int:
        """Let the held source's next run remove what is gone from its folder, and queue that run; returns its job."""
        source = self.source(actor, name)
        if source.held is None:
            raise InvalidInput(f"{name} has no held run to confirm")
        self.audit.record(actor, audit_events.SourceChanged(name, change="removals confirmed"))
        return self.queue(source.id, "confirm", actor.username)[0]

    def set_enabled(self, actor: Principal, name: str, enabled: bool) -> Source:
        """Pause or resume a source's schedule and watching; runs asked for by hand still run."""
        source = self.source(actor, name)
        self.store.set_enabled(source.id, enabled)
        self.audit.record(actor, audit_events.SourceChanged(name, change="resumed" if enabled else "paused"))
        return self.source(actor, name)

    def remove(self, actor: Principal, name: str) -> None:
        """Forget a source; the documents it brought stay in their collection, and its past runs in the job list."""
        source = self.source(actor, name)
        self.store.remove(source.id)
        self.audit.record(actor, audit_events.SourceRemoved(name))

    def queue(self, source_id: int, trigger: str, requested_by: str = SYSTEM.username) -> tuple[int, bool]:
        """Queue a run of a source (the scheduler and watcher call this) and wake this process's worker."""
        queued = self.store.queue_run(source_id, trigger, requested_by)
        self.jobs.notify()
        return queued

    def enabled(self) -> list[Source]:
        """The sources switched on, for the scheduler and the watcher."""
        return [s for s in self.store.sources() if s.enabled]

    def _folder(self, actor: Principal, folder: str) -> Path:
        if actor is not SYSTEM:
            return self.jobs.allowed_folder(folder)  # the web app's admins: only under web.ingest_roots
        if not folder.strip() or "\x00" in folder:
            raise InvalidInput("type the path of a folder on the server")
        path = Path(folder.strip()).expanduser().resolve()
        if not path.is_dir():
            raise InvalidInput(f"{path} is not a folder")
        return path

