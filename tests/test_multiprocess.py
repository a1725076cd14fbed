"""Several processes, one truth: two app processes and an ingest worker on one PostgreSQL server.

Every process here is a real ``run.py`` process (uvicorn serving the whole app, or the worker)
sharing a fresh PostgreSQL database and one data folder; the answering model is the Ollama
stand-in over loopback HTTP.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import PROJECT_ROOT, postgres_url
from tests.fake_ollama import FakeOllama, FakeOllamaScript
from tests.storage.conftest import _fresh_postgres_database
from tests.ui.conftest import free_port

ADMIN_PASSWORD = "admin-password-1"
START_TIMEOUT_S = 240
JOB_TIMEOUT_S = 300


@dataclass
class Cluster:
    """A shared data folder and database, and the processes started on them."""

    root: Path
    env: dict[str, str]
    procs: list[tuple[subprocess.Popen[bytes], Path]] = field(default_factory=list)

    def start(self, name: str, *args: str, **env: str) -> subprocess.Popen[bytes]:
        """Start ``run.py ARGS`` in its own process group; output goes to a log file."""
        log = self.root / f"{name}.log"
        proc = subprocess.Popen(
            [sys.executable, "run.py", *args], cwd=PROJECT_ROOT, env={**self.env, **env},
            stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True,
        )
        self.procs.append((proc, log))
        return proc

    def logs(self) -> str:
        """The end of every process's output, for failure messages."""
        return "\n".join(f"--- {log.name} (exit {p.poll()}):\n{log.read_text(errors='replace')[-3000:]}"
                         for p, log in self.procs)

    def stop(self) -> None:
        """SIGTERM every process group still running, then SIGKILL what is left."""
        for proc, _ in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc, _ in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=20)


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOllama]:
    with FakeOllama(FakeOllamaScript(reply="It says so in the handbook [1].")) as server:
        yield server


@pytest.fixture
def cluster(tmp_path: Path, embedder: Any, fake: FakeOllama) -> Iterator[Cluster]:
    """A fresh PostgreSQL database with an admin, a data folder, and the settings every process reads."""
    from assistant.services import build_services
    from assistant.settings import load_settings

    for url in _fresh_postgres_database(postgres_url()):
        share = tmp_path / "share"
        share.mkdir()
        env = {**os.environ, "ENCLAVE_DATA_DIR": str(tmp_path / "data"), "ENCLAVE_DATABASE_URL": url,
               "ENCLAVE_WEB__COOKIE_SECURE": "false", "ENCLAVE_WEB__INGEST_ROOTS": f'["{share}"]',
               "ENCLAVE_GENERATION__BACKEND": "ollama", "ENCLAVE_GENERATION__OLLAMA__HOSTS": f'["{fake.url}"]',
               "ENCLAVE_JOBS__POLL_S": "0.2", "ENCLAVE_JOBS__INDEX_CHECK_S": "0.2", "ENCLAVE_INGEST__SAVE_EVERY_S": "2"}
        settings = load_settings(data_dir=tmp_path / "data", database_url=url)
        services = build_services(settings, embedder=embedder)  # migrates; the admin exists before apps start
        services.web.accounts.ensure_admin(ADMIN_PASSWORD)
        services.close()
        built = Cluster(tmp_path, env)
        try:
            yield built
        finally:
            built.stop()


def write_docs(folder: Path, docs: dict[str, str]) -> Path:
    folder.mkdir(parents=True)
    for name, text in docs.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def wait_for(what: str, check: Callable[[], Any], timeout: float, cluster: Cluster) -> Any:
    """Poll ``check`` until it returns something truthy; fail with every process's log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        if any(p.poll() not in (None, -signal.SIGKILL) for p, _ in cluster.procs):
            break  # a process died on its own
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}\n{cluster.logs()}")


@contextmanager
def signed_in(port: int, cluster: Cluster) -> Iterator[httpx.Client]:
    """An admin session on the app process listening on ``port``, once it answers."""
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx.get(f"{base}/login", timeout=5).status_code == 200
        except httpx.TransportError:
            return False

    wait_for(f"the app on port {port}", up, START_TIMEOUT_S, cluster)
    with httpx.Client(base_url=base, timeout=60) as client:
        response = client.post("/login", data={"username": "admin", "password": ADMIN_PASSWORD, "next": "/"})
        assert response.status_code == 303, response.text
        yield client


def ask_sources(client: httpx.Client, question: str) -> list[str]:
    """The files of the passages an app process retrieved for a question."""
    response = client.post("/v1/chat/completions", json={
        "model": "enclave", "messages": [{"role": "user", "content": question}], "collections": ["handbook"]})
    assert response.status_code == 200, response.text
    return [source["file"] for source in response.json()["sources"]]


def finished_job(client: httpx.Client, job_id: int, cluster: Cluster) -> dict[str, Any]:
    """Poll an app process for a job until it ends; returns the states it showed on the way."""
    seen: list[str] = []

    def ended() -> dict[str, Any] | None:
        job = client.get(f"/api/jobs/{job_id}").json()
        seen.append(job["state"])
        return job if job["state"] in ("done", "failed") else None

    job = wait_for(f"ingest job {job_id}", ended, JOB_TIMEOUT_S, cluster)
    return {**job, "seen": seen}


def ingest_through(client: httpx.Client, folder: Path) -> int:
    response = client.post("/api/ingest", json={"folder": str(folder), "collection": "handbook"})
    assert response.status_code == 202, response.text
    return int(response.json()["job_id"])


def test_ingest_through_one_app_process_answers_from_the_other_without_restart(cluster: Cluster) -> None:
    port_a, port_b = free_port(), free_port()
    cluster.start("app-a", "serve", "--no-browser", "--no-worker", "--port", str(port_a))
    cluster.start("app-b", "serve", "--no-browser", "--no-worker", "--port", str(port_b))
    cluster.start("worker", "worker")
    first = write_docs(cluster.root / "share" / "first", {
        "parking.md": "# Parking\n\nStaff park their bicycles in the covered rack behind building C.\n"})
    second = write_docs(cluster.root / "share" / "second", {
        "sabbatical.md": "# Sabbatical\n\nAfter seven years of service, employees may take a three-month "
                         "paid sabbatical, agreed with their manager six months ahead.\n",
        "broken.pdf": "this is not a PDF at all"})

    with signed_in(port_a, cluster) as app_a, signed_in(port_b, cluster) as app_b:
        job = finished_job(app_b, ingest_through(app_a, first), cluster)  # progress read from the other app
        assert job["state"] == "done", job
        assert ask_sources(app_b, "Where do staff park their bicycles?")[0] == "parking.md"
        before = ask_sources(app_b, "How long is the paid sabbatical after seven years of service?")
        assert "sabbatical.md" not in before

        job_id = ingest_through(app_a, second)
        job = finished_job(app_b, job_id, cluster)
        assert job["state"] == "done" and job["total"] == 2 and job["done"] == 2, job
        assert [p for p, _ in job["failures"]] == ["broken.pdf"], "the failure reason reaches the other app"
        assert app_a.get(f"/api/jobs/{job_id}").json()["files"] == job["files"], "both apps show the same job"

        def answered() -> bool:
            sources = ask_sources(app_b, "How long is the paid sabbatical after seven years of service?")
            return bool(sources) and sources[0] == "sabbatical.md"

        wait_for("the second app to answer from the new version", answered, 30, cluster)
        assert ask_sources(app_b, "Where do staff park their bicycles?")[0] == "parking.md"
    assert all(p.poll() is None for p, _ in cluster.procs), cluster.logs()


def test_a_killed_workers_job_is_requeued_and_finished_by_another(cluster: Cluster, embedder: Any) -> None:
    from assistant.audit import SYSTEM
    from assistant.services import build_services
    from assistant.settings import load_settings

    lines = " ".join(f"Clause {n} of the archive covers retention of ledger {n} for audit purposes." for n in range(60))
    bulk = write_docs(cluster.root / "share" / "bulk", {
        f"record-{i:02d}.md": f"# Record {i}\n\nRecord {i} keeps the marker word zephyr{i}. {lines}\n"
        for i in range(40)})
    settings = load_settings(data_dir=cluster.root / "data", database_url=cluster.env["ENCLAVE_DATABASE_URL"],
                             web={"ingest_roots": [str(bulk.parent)]}, jobs={"in_process_worker": False})
    app = build_services(settings, embedder=embedder, index_writer=False)  # this test plays an app process
    try:
        job_id = app.web.jobs.start_folder(SYSTEM, str(bulk), "archive")
        first = cluster.start("worker-1", "worker", ENCLAVE_JOBS__LEASE_S="5")
        wait_for("the first worker to claim the job", lambda: app.web.jobs.job(SYSTEM, job_id).state == "running",
                 START_TIMEOUT_S, cluster)
        os.killpg(first.pid, signal.SIGKILL)  # the worker and its parser processes die mid-job
        first.wait(timeout=20)
        assert app.web.jobs.job(SYSTEM, job_id).state == "running", "nobody has noticed yet"

        cluster.start("worker-2", "worker", ENCLAVE_JOBS__LEASE_S="5")
        wait_for("the job to end", lambda: app.web.jobs.job(SYSTEM, job_id).ended,
                 JOB_TIMEOUT_S, cluster)
        job = app.web.jobs.job(SYSTEM, job_id)
        assert job.state == "done" and job.attempts == 2, job
        assert job.total == 40 and job.done == 40, "progress restarts with the new attempt, nothing twice"
        status = {c["name"]: c for c in app.corpus.status()["collections"]}["archive"]
        assert status["documents"] == 40
        for i in (0, 39):
            found = app.retriever.retrieve(f"zephyr{i}", ["archive"]).passages
            assert found and found[0].chunk.file == f"record-{i:02d}.md"
        events = [e.action for e in app.web.audit.events(SYSTEM, action="ingest_requeued")]
        assert events == ["ingest_requeued"]
    finally:
        app.close()
