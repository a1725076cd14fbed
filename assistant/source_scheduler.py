"""Fires sources' schedules (APScheduler) and watches local folders for changes (watchdog, inotify on Linux).

The worker process runs one ``SourceScheduler``. Every ``sources.refresh_s`` it reads the sources any
process added, changed, paused or removed, and brings its timers and watches in step. A timer or a
settled change queues a run (``SourceService.queue``); the job queue runs it, so a run already queued
is joined rather than repeated. On network mounts the kernel reports no changes made by other machines:
there the schedule is what finds them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from assistant.settings import SourceSettings
from assistant.sources import Source, SourceService, parse_schedule
from ingest.scanner import is_ignored

log = logging.getLogger(__name__)
CHANGES = frozenset({"created", "modified", "moved", "deleted", "closed"})
"""Events that can change a document; opening and reading a file (the run itself does) are not among them."""


@dataclass(frozen=True)
class _Planned:
    schedule: str
    folder: str
    present: bool
    """Whether the folder was there to watch: a share mounted later is watched from then on."""


class SourceScheduler:
    """Queues sources' runs when their schedule fires and when their watched folder has settled after a change."""

    def __init__(self, sources: SourceService, settings: SourceSettings) -> None:
        self.sources = sources
        self.settings = settings
        self._planned: dict[int, _Planned] = {}
        self._watches: dict[int, Any] = {}
        self._scheduler: Any = None
        self._observer: Any = None

    def start(self) -> None:
        """Start the timers and the watcher on threads of this process."""
        from apscheduler.schedulers.background import BackgroundScheduler
        from watchdog.observers import Observer

        self._scheduler = BackgroundScheduler(timezone=UTC, job_defaults={"coalesce": True, "max_instances": 1,
                                                                         "misfire_grace_time": None})
        self._observer = Observer()
        self._scheduler.add_job(self.refresh, "interval", seconds=self.settings.refresh_s, id="refresh",
                                next_run_time=datetime.now(UTC))
        self._observer.start()
        self._scheduler.start()

    def stop(self) -> None:
        """Stop the timers and the watcher."""
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
        if self._observer is not None:
            self._observer.stop()
            self._observer.join()

    def refresh(self) -> None:
        """Bring timers and watches in step with the sources switched on now."""
        try:
            wanted = {s.id: s for s in self.sources.enabled()}
        except Exception:
            log.exception("sources: could not read the sources; trying again in %g s", self.settings.refresh_s)
            return
        for source_id in set(self._planned) - set(wanted):
            self._forget(source_id)
        for source in wanted.values():
            planned = _Planned(source.schedule, source.folder, Path(source.folder).is_dir())
            if self._planned.get(source.id) != planned:
                self._forget(source.id)
                self._plan(source)
                self._planned[source.id] = planned

    def _plan(self, source: Source) -> None:
        start = source.last_run.started if source.last_run and source.last_run.started else datetime.now(UTC)
        self._scheduler.add_job(self._due, parse_schedule(source.schedule, start), args=(source.id, "schedule"),
                                id=f"source-{source.id}", replace_existing=True)
        if self.settings.watch and Path(source.folder).is_dir():
            try:
                self._watches[source.id] = self._observer.schedule(_Changes(self, source.id), source.folder,
                                                                   recursive=True)
            except OSError as exc:  # e.g. fs.inotify.max_user_watches reached: the schedule still finds changes
                log.warning("source %s: cannot watch %s (%s); its schedule finds the changes", source.name,
                            source.folder, exc)

    def _forget(self, source_id: int) -> None:
        self._planned.pop(source_id, None)
        for job in (f"source-{source_id}", f"change-{source_id}"):
            if self._scheduler.get_job(job) is not None:
                self._scheduler.remove_job(job)
        watch = self._watches.pop(source_id, None)
        if watch is not None:
            self._observer.unschedule(watch)

    def changed(self, source_id: int) -> None:
        """A watched folder changed: run once it has been quiet for ``sources.settle_s`` (each change resets it)."""
        when = datetime.now(UTC) + timedelta(seconds=self.settings.settle_s)
        self._scheduler.add_job(self._due, "date", run_date=when, args=(source_id, "change"),
                                id=f"change-{source_id}", replace_existing=True)

    def _due(self, source_id: int, trigger: str) -> None:
        try:
            job, new = self.sources.queue(source_id, trigger)
        except Exception:
            log.exception("sources: could not queue a run of source %s", source_id)
            return
        log.info("source %s: %s run %s job %s", source_id, trigger, "queued as" if new else "joins queued", job)


class _Changes:
    """Watchdog's handler for one source's folder."""

    def __init__(self, scheduler: SourceScheduler, source_id: int) -> None:
        self.scheduler = scheduler
        self.source_id = source_id

    def dispatch(self, event: Any) -> None:
        if event.event_type not in CHANGES or (event.is_directory and event.event_type == "modified"):
            return
        paths = (event.src_path, getattr(event, "dest_path", "") or "")
        if all(not p or is_ignored(Path(str(p)).name) for p in paths):
            return  # editor swap files and the like
        self.scheduler.changed(self.source_id)
