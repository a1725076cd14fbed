"""The ingest job queue: each job claimed once, leases that expire, progress every process can read."""

from __future__ import annotations

import json
import threading

from alembic import command
from sqlalchemy import inspect, text

from storage.db import Database, alembic_config
from storage.documents import DocumentStore
from storage.job_store import FileProgress, IngestJob, JobStore


def _queue(db: Database, n: int) -> list[int]:
    cid = DocumentStore(db).collection_id("handbook", create=True)
    assert cid is not None
    return [JobStore(db).enqueue(cid, f"/share/{i}", False, "admin") for i in range(n)]


def test_each_queued_job_is_claimed_by_exactly_one_of_several_workers(db: Database) -> None:
    queued = _queue(db, 12)
    claimed: dict[str, list[int]] = {}

    def work(name: str) -> None:
        own = Database(db.url)  # its own connections, as another process has
        store, mine = JobStore(own), []
        while (job := store.claim(name)) is not None:
            mine.append(job.id)
            assert job.attempts == 1 and job.collection == "handbook"
        claimed[name] = mine
        own.dispose()

    workers = [threading.Thread(target=work, args=(f"worker-{i}",)) for i in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    every = [job_id for ids in claimed.values() for job_id in ids]
    assert sorted(every) == queued, f"each job once: {claimed}"
    assert {JobStore(db).state(job_id) for job_id in queued} == {"running"}


def test_a_dead_workers_job_is_requeued_then_failed_after_its_attempts(db: Database) -> None:
    (job_id,) = _queue(db, 1)
    store = JobStore(db)
    assert store.claim("worker-1") is not None
    assert store.expire_leases(lease_s=60, max_attempts=2) == [], "a live lease is left alone"

    (requeued,) = store.expire_leases(lease_s=0, max_attempts=2)  # no heartbeat since: the worker died
    assert requeued.job_id == job_id and requeued.requeued and "jobs.lease_s" in requeued.message
    second = store.claim("worker-2")
    assert second is not None and second.id == job_id and second.attempts == 2
    assert not store.heartbeat(job_id, "worker-1"), "the dead worker no longer holds the lease"
    assert store.heartbeat(job_id, "worker-2")

    (failed,) = store.expire_leases(lease_s=0, max_attempts=2)
    assert not failed.requeued and "worker-2" in failed.message
    shown = store.job(job_id)
    assert shown is not None and shown.state == "failed" and "jobs.max_attempts" in (shown.error or "")
    assert store.claim("worker-3") is None


def test_progress_written_by_the_worker_is_read_by_another_process(db: Database) -> None:
    (job_id,) = _queue(db, 1)
    worker = JobStore(db)
    assert worker.claim("worker-1") is not None
    worker.set_total(job_id, 3)
    worker.record_files(job_id, [FileProgress("a.md", "added", 4), FileProgress("b.pdf", "failed", 0, "not a PDF")])

    other = Database(db.url)
    try:
        shown = JobStore(other).job(job_id)
    finally:
        other.dispose()
    assert shown is not None
    assert (shown.state, shown.total, shown.done, shown.started_by) == ("running", 3, 2, "admin")
    assert [f.path for f in shown.files] == ["a.md", "b.pdf"]
    assert [(f.path, f.reason) for f in shown.failures] == [("b.pdf", "not a PDF")]
    assert IngestJob.from_json(json.loads(json.dumps(shown.as_json()))) == shown, "the record survives JSON"

    assert worker.claim("worker-2") is None, "a running job is not claimed again"
    worker.requeue(job_id)  # the worker stopped (Ctrl-C): the next claim starts the job afresh
    again = worker.claim("worker-2")
    assert again is not None and again.attempts == 2
    restarted = worker.job(job_id)
    assert restarted is not None and restarted.done == 0 and restarted.files == () and restarted.failures == ()


def test_a_command_line_run_is_listed_with_its_failures_only_among_all_jobs(db: Database) -> None:
    (queued,) = _queue(db, 1)
    cid = DocumentStore(db).collection_id("handbook")
    assert cid is not None
    store = JobStore(db)
    run = store.start(cid, "/share/cli")
    store.finish(run, "done", {"added": 2}, [FileProgress("scan.pdf", "failed", 0, "no text layer")])

    assert [job.id for job in store.recent(10)] == [queued], "the app lists the jobs queued through it"
    latest = store.recent(10, include_command_line=True)
    assert [job.id for job in latest] == [run, queued]
    assert latest[0].started_by == "" and latest[0].ended and latest[0].summary == {"added": 2}
    assert [(f.path, f.reason) for f in latest[0].failures] == [("scan.pdf", "no text layer")]
    assert latest[0].finished is not None and latest[0].finished.utcoffset() is not None, "times carry their offset"
    assert store.claim("worker-1") is not None
    assert store.claim("worker-1") is None, "a command-line run is never claimed"


def _migrate_to(db: Database, revision: str) -> None:
    config = alembic_config()
    with db.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def test_migration_0006_keeps_every_recorded_failure_once(db_url: str) -> None:
    db = Database(db_url)
    try:
        _migrate_to(db, "0005")
        with db.engine.begin() as conn:
            conn.execute(text("INSERT INTO collections (id, name, created_at) VALUES (1, 'hr', CURRENT_TIMESTAMP)"))
            conn.execute(text(
                "INSERT INTO ingest_jobs (id, collection_id, root, status, started_at, counts, requested_by, "
                "attempts, total_files, done_files) VALUES (1, 1, '/cli', 'done', CURRENT_TIMESTAMP, '{}', NULL, "
                "0, 0, 0), (2, 1, '/web', 'done', CURRENT_TIMESTAMP, '{}', 'admin', 1, 2, 2)"))
            # The command line recorded failures only at the end; a queued job also as progress.
            conn.execute(text("INSERT INTO ingest_failures (job_id, path, reason) VALUES "
                              "(1, 'a.pdf', 'no text'), (1, 'b.doc', 'not supported'), (2, 'c.pdf', 'encrypted')"))
            conn.execute(text("INSERT INTO ingest_job_files (job_id, path, outcome, chunks, reason) VALUES "
                              "(2, 'ok.md', 'added', 3, ''), (2, 'c.pdf', 'failed', 0, 'encrypted')"))
        _migrate_to(db, "0006")
        assert db.schema_version() == "0006"
        assert "ingest_failures" not in inspect(db.engine).get_table_names()
        db.migrate()  # the store reads today's schema; later migrations keep what 0006 moved
        store = JobStore(db)
        cli, web = store.job(1), store.job(2)
        assert cli is not None and web is not None
        assert [(f.path, f.reason) for f in cli.failures] == [("a.pdf", "no text"), ("b.doc", "not supported")]
        assert [(f.path, f.reason) for f in web.failures] == [("c.pdf", "encrypted")], "each failure once"
        assert [f.path for f in web.files] == ["ok.md", "c.pdf"]
    finally:
        db.dispose()
