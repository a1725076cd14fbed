"""The ingest job queue: each job claimed once, leases that expire, progress every process can read."""

from __future__ import annotations

import threading

from storage.db import Database
from storage.documents import DocumentStore
from storage.job_store import FileProgress, JobStore


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
    assert shown is not None and shown["state"] == "failed" and "jobs.max_attempts" in (shown["error"] or "")
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
    assert (shown["state"], shown["total"], shown["done"]) == ("running", 3, 2)
    assert [f["path"] for f in shown["files"]] == ["a.md", "b.pdf"]
    assert shown["failures"] == [("b.pdf", "not a PDF")]

    assert worker.claim("worker-2") is None, "a running job is not claimed again"
    worker.requeue(job_id)  # the worker stopped (Ctrl-C): the next claim starts the job afresh
    again = worker.claim("worker-2")
    assert again is not None and again.attempts == 2
    restarted = worker.job(job_id)
    assert restarted is not None and restarted["done"] == 0 and restarted["files"] == []
