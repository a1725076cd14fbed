"""Sources kept in step with their folder, on SQLite and PostgreSQL: runs, the removal hold, history,
schedules, the watcher, overlapping runs and a restart."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from assistant.audit import SYSTEM
from assistant.errors import InvalidInput
from assistant.source_scheduler import SourceScheduler
from assistant.sources import parse_schedule
from tests.conftest import postgres_url
from tests.storage.conftest import _fresh_postgres_database

TOPICS = ("parking", "canteen", "badges", "printers", "lockers", "bicycles", "visitors", "laptops", "phones", "keys")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str | None]:
    """No URL (SQLite in the data dir), or a fresh database on the test PostgreSQL server."""
    if request.param == "sqlite":
        yield None
    else:
        yield from _fresh_postgres_database(postgres_url())


@pytest.fixture
def share(tmp_path: Path) -> Path:
    """A folder of ten memos, one topic each, in nested folders."""
    folder = tmp_path / "share"
    for n, topic in enumerate(TOPICS):
        memo = folder / f"team-{n % 3}" / f"{topic}.md"
        memo.parent.mkdir(parents=True, exist_ok=True)
        memo.write_text(f"# {topic.title()}\n\nThe rule on {topic} number {n} is kept by the office.\n", "utf-8")
    return folder


@pytest.fixture
def services(make_services: Any, database_url: str | None, tmp_path: Path) -> Any:
    """Services whose jobs are run by the test (no worker thread), with a quick scheduler."""
    return make_services(
        database_url=database_url, web={"ingest_roots": [str(tmp_path)]},
        jobs={"in_process_worker": False, "lease_s": 0.5, "poll_s": 0.1},
        sources={"settle_s": 0.5, "refresh_s": 0.3},
    )


def _paths(services: Any, collection: str = "memos") -> dict[str, int]:
    return {d.path: d.id for d in services.web.library.documents(SYSTEM, collection)}


def _added(services: Any, share: Path, **options: Any) -> None:
    services.web.sources.add(SYSTEM, "share", str(share), "memos", **options)
    run = services.web.sources.run_here(SYSTEM, "share")  # joins the first run that adding queued
    assert (run.state, run.counts["added"]) == ("done", 10), run


def _wait_for(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"waited {timeout:g} s for {what}")


def test_a_run_that_would_remove_too_much_removes_nothing_until_an_admin_confirms(services: Any, share: Path) -> None:
    _added(services, share)
    for topic in TOPICS[:3]:  # 30% of the documents, over the default 20%
        next(share.rglob(f"{topic}.md")).unlink()
    held = services.web.sources.run_here(SYSTEM, "share")
    assert held.state == "held" and "would be removed" in (held.reason or ""), held
    assert held.counts["removed"] == 0 and len(_paths(services)) == 10
    source = services.web.sources.source(SYSTEM, "share")
    assert source.held == held.reason and source.as_json()["held"] == held.reason
    assert services.retriever.retrieve("rule on parking", ["memos"]).passages[0].chunk.file.endswith("parking.md")

    confirmed = services.web.sources.run_here(SYSTEM, "share", confirm=True)
    assert (confirmed.state, confirmed.trigger, confirmed.counts["removed"]) == ("done", "confirm", 3), confirmed
    assert len(_paths(services)) == 7 and services.web.sources.source(SYSTEM, "share").held is None
    with pytest.raises(InvalidInput, match="no held run"):
        services.web.sources.confirm(SYSTEM, "share")


def test_an_unmounted_share_empty_or_missing_is_held_and_removes_nothing(services: Any, share: Path) -> None:
    _added(services, share)
    away = share.with_name("away")
    share.rename(away)
    missing = services.web.sources.run_here(SYSTEM, "share")
    assert missing.state == "held" and "share looks unmounted" in (missing.reason or ""), missing
    share.mkdir()  # the mount point, with nothing mounted on it
    empty = services.web.sources.run_here(SYSTEM, "share")
    assert empty.state == "held" and "share looks unmounted" in (empty.reason or ""), empty
    assert len(_paths(services)) == 10
    share.rmdir()
    away.rename(share)  # mounted again: the next run is an ordinary one, and the hold is over
    back = services.web.sources.run_here(SYSTEM, "share")
    assert (back.state, back.counts["unchanged"], back.counts["removed"]) == ("done", 10, 0), back
    assert services.web.sources.source(SYSTEM, "share").held is None


def test_history_records_each_run_with_counts_failures_and_phases(services: Any, share: Path) -> None:
    _added(services, share)
    (share / "team-0" / "parking.md").write_text("# Parking\n\nParking moved to level two.\n", "utf-8")
    (share / "new.md").write_text("# New\n\nA new memo about the library.\n", "utf-8")
    (share / "blank.txt").write_bytes(b"")
    services.web.sources.run_here(SYSTEM, "share")
    runs = services.web.sources.runs(SYSTEM, "share")
    assert [r.state for r in runs] == ["done", "done"]
    latest = runs[0]
    assert {k: latest.counts[k] for k in ("added", "updated", "unchanged", "removed", "failed")} == {
        "added": 1, "updated": 1, "unchanged": 9, "removed": 0, "failed": 1}
    assert [(f.path, f.reason) for f in latest.failures] == [("blank.txt", "empty file (0 bytes)")]
    assert set(latest.phases) == {"scan", "plan", "parse", "embed", "remove", "save"}
    assert latest.started and latest.finished and latest.finished >= latest.started
    assert runs[1].counts["added"] == 10


def test_patterns_and_size_limit_choose_the_files(services: Any, share: Path) -> None:
    (share / "drafts").mkdir()
    (share / "drafts" / "plan.md").write_text("# Plan\n\nA draft plan.\n", "utf-8")
    (share / "big.txt").write_text("word " * 300_000, "utf-8")  # 1.5 MB
    services.web.sources.add(SYSTEM, "share", str(share), "memos", exclude=["drafts"], max_file_mb=1.0)
    run = services.web.sources.run_here(SYSTEM, "share")
    assert "drafts/plan.md" not in _paths(services) and run.counts["added"] == 10
    assert [f.path for f in run.failures] == ["big.txt"]
    assert "1 MB limit (the source's size limit)" in run.failures[0].reason

    services.web.sources.add(SYSTEM, "policies", str(share), "only-parking", include=["*/parking.md"])
    services.web.sources.run_here(SYSTEM, "policies")
    assert list(_paths(services, "only-parking")) == ["team-0/parking.md"]


def test_overlapping_runs_are_refused(services: Any, share: Path) -> None:
    sources, store = services.web.sources, services.web.jobs.store
    services.web.sources.add(SYSTEM, "share", str(share), "memos")
    first, new = sources.sync(SYSTEM, "share")
    assert not new, "adding queued the first run; asking again joins it"
    assert store.claim("worker-a").id == first
    second, new = sources.sync(SYSTEM, "share")
    assert new and second != first, "a run asked for while one runs waits behind it"
    assert sources.sync(SYSTEM, "share") == (second, False)
    assert store.claim("worker-b") is None, "no second run of the same source while the first runs"
    services.web.sources.add(SYSTEM, "other", str(share / "team-1"), "other")
    assert store.claim("worker-b").source_id == sources.source(SYSTEM, "other").id, "other sources' runs go on"


def test_a_run_interrupted_by_a_restart_resumes(services: Any, share: Path) -> None:
    _added(services, share)
    for n in range(3):
        (share / f"later-{n}.md").write_text(f"# Later {n}\n\nMemo {n} written after the first run.\n", "utf-8")
    job, _ = services.web.sources.sync(SYSTEM, "share")
    assert services.web.jobs.store.claim("worker-that-dies").id == job  # then its process is killed
    time.sleep(0.6)  # past jobs.lease_s without a heartbeat
    while services.web.jobs.run_next():  # the restarted worker finds the lease expired and runs the job again
        pass
    run = services.web.sources.runs(SYSTEM, "share")[0]
    assert (run.job, run.state, run.counts["added"], run.counts["unchanged"]) == (job, "done", 3, 10), run
    assert len(_paths(services)) == 13


def test_a_dead_workers_run_gives_way_to_the_run_queued_behind_it(services: Any, share: Path) -> None:
    _added(services, share)
    dying, _ = services.web.sources.sync(SYSTEM, "share")
    assert services.web.jobs.store.claim("worker-that-dies").id == dying
    (share / "late.md").write_text("# Late\n\nWritten while the first run ran.\n", "utf-8")
    behind, new = services.web.sources.sync(SYSTEM, "share")
    assert new
    time.sleep(0.6)  # past jobs.lease_s: requeuing the dead run would make two queued runs of one source
    while services.web.jobs.run_next():
        pass
    runs = {r.job: r for r in services.web.sources.runs(SYSTEM, "share")}
    assert runs[dying].state == "interrupted" and "queued since" in (runs[dying].reason or "")
    assert (runs[behind].state, runs[behind].counts["added"]) == ("done", 1)


def test_schedules_fire(services: Any, share: Path) -> None:
    services.web.sources.add(SYSTEM, "share", str(share), "memos", schedule="every 10s")
    services.web.sources.run_here(SYSTEM, "share")
    scheduler = SourceScheduler(services.web.sources, services.settings.sources.model_copy(update={"watch": False}))
    scheduler.start()
    try:
        scheduled = _wait_for(
            lambda: [r for r in services.web.sources.runs(SYSTEM, "share") if r.trigger == "schedule"],
            20, "the schedule to queue a run")
    finally:
        scheduler.stop()
    assert scheduled[0].state == "queued"
    assert parse_schedule("0 2 * * 1-5") is not None
    with pytest.raises(InvalidInput, match="cron expression"):
        services.web.sources.add(SYSTEM, "bad", str(share), "memos", schedule="every blue moon")


def test_a_renamed_and_a_deleted_file_in_a_watched_folder_are_picked_up(services: Any, share: Path) -> None:
    _added(services, share, schedule="every 1d", max_removal_share=0.5)
    before = _paths(services)
    scheduler = SourceScheduler(services.web.sources, services.settings.sources)
    stop = threading.Event()
    worker = threading.Thread(target=services.web.jobs.run_worker, args=(stop,), daemon=True)
    scheduler.start()
    worker.start()
    try:
        time.sleep(1.0)  # the scheduler has read the source and watches its folder
        (share / "team-0" / "parking.md").rename(share / "team-0" / "car-park.md")
        (share / "team-1" / "canteen.md").unlink()
        run = _wait_for(lambda: next((r for r in services.web.sources.runs(SYSTEM, "share")
                                      if r.trigger == "change" and r.state == "done"), None), 60, "a change run")
    finally:
        scheduler.stop()
        stop.set()
        worker.join(30)
    assert (run.counts["renamed"], run.counts["removed"], run.counts["added"]) == (1, 1, 0), run
    after = _paths(services)
    assert after["team-0/car-park.md"] == before["team-0/parking.md"], "the renamed file keeps its document"
    assert "team-1/canteen.md" not in after and "team-0/parking.md" not in after


def test_migration_0008_keeps_every_job_and_its_files(tmp_path: Path, database_url: str | None) -> None:
    from sqlalchemy import text

    from storage.db import Database
    from storage.job_store import JobStore
    from tests.storage.test_job_store import _migrate_to

    db = Database(database_url or f"sqlite:///{tmp_path / 'old.db'}")
    try:
        _migrate_to(db, "0007")
        with db.engine.begin() as conn:
            conn.execute(text("INSERT INTO collections (id, name, created_at) VALUES (1, 'hr', CURRENT_TIMESTAMP)"))
            conn.execute(text(
                "INSERT INTO ingest_jobs (id, collection_id, root, status, started_at, counts, requested_by, "
                "attempts, total_files, done_files, sync) VALUES (1, 1, '/web', 'done', CURRENT_TIMESTAMP, '{}', "
                "'admin', 1, 2, 2, false)"))
            conn.execute(text("INSERT INTO ingest_job_files (job_id, path, outcome, chunks, reason) VALUES "
                              "(1, 'ok.md', 'added', 3, ''), (1, 'c.pdf', 'failed', 0, 'encrypted')"))
        db.migrate()
        job = JobStore(db).job(1)
        assert job is not None and [f.path for f in job.files] == ["ok.md", "c.pdf"]
        assert [(f.path, f.reason) for f in job.failures] == [("c.pdf", "encrypted")]
    finally:
        db.dispose()
