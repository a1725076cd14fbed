"""One job's files shared by workers: each claimed by one, reclaimable once its lease runs out, written once."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest

from storage.db import Database
from storage.documents import DocumentStore, NewDocument
from storage.file_claims import ClaimLost, FileClaims, OfferedFile
from storage.job_store import JobStore

LEASE_S = 1.0


@pytest.fixture
def pg(pgvector_url: str) -> Iterator[Database]:
    database = Database(pgvector_url)
    database.migrate()
    yield database
    database.dispose()


def _running_job(db: Database, files: int) -> tuple[int, int]:
    cid = DocumentStore(db).collection_id("handbook", create=True)
    assert cid is not None
    jobs = JobStore(db)
    jobs.enqueue(cid, "/share", False, "admin")
    job = jobs.claim("planner")
    assert job is not None
    FileClaims(db, LEASE_S).offer(job.id, [OfferedFile(f"f{i}.md", f"{i:064x}", False) for i in range(files)])
    return cid, job.id


def test_each_file_is_claimed_by_exactly_one_of_several_workers(pg: Database) -> None:
    _, job_id = _running_job(pg, 30)
    taken: dict[str, list[str]] = {}

    def work(name: str) -> None:
        own = Database(pg.url)  # its own connections, as another process has
        claims, mine = FileClaims(own, LEASE_S), []
        while found := claims.claim(name, 2):
            mine += [c.file.path for c in found]
        taken[name] = mine
        own.dispose()

    workers = [threading.Thread(target=work, args=(f"worker-{i}",)) for i in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    every = [path for paths in taken.values() for path in paths]
    assert sorted(every) == sorted(f"f{i}.md" for i in range(30))
    assert FileClaims(pg, LEASE_S).remaining(job_id) == 30, "claimed, not done"


def test_a_file_whose_worker_stopped_renewing_is_taken_over_and_the_late_write_is_refused(pg: Database) -> None:
    cid, job_id = _running_job(pg, 1)
    claims, store = FileClaims(pg, LEASE_S), DocumentStore(pg)
    [slow] = claims.claim("slow", 1)
    assert claims.claim("other", 1) == [], "held under a live lease"
    time.sleep(LEASE_S + 0.2)
    [taken] = claims.claim("other", 1)
    assert taken.file == slow.file

    doc = NewDocument("f0.md", slow.file.content_hash, 10, 1, "F0", [(1, "text")], [], np.zeros((0, 384)), False)
    with pytest.raises(ClaimLost):
        store.write_documents(cid, "/share", [doc], claims.completion(slow, "slow", "added", 0))
    assert store.known_documents(cid, "/share") == {}, "the late worker's write was rolled back"
    store.write_documents(cid, "/share", [doc], claims.completion(taken, "other", "added", 0))
    assert list(store.known_documents(cid, "/share")) == ["f0.md"]
    assert claims.remaining(job_id) == 0
    assert [(o.path, o.outcome) for o in claims.outcomes(job_id, ["f0.md"])] == [("f0.md", "added")]
    job = JobStore(pg).job(job_id)
    assert job is not None and job.done == 1 and [f.path for f in job.files] == ["f0.md"]
