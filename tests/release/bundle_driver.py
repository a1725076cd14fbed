"""Inside a network namespace with only loopback: install the offline bundle as an air-gapped site would.

Usage (as root): unshare -n -- python -m tests.release.bundle_driver WORK_DIR ARCHIVE PYTHON [--no-netns]

The environment of every command is that of a machine that never saw this one's set-up: a fresh
``HOME`` (no pip cache, no ``~/.cache/enclave`` wheels) and no pip configuration (``PIP_CONFIG_FILE``
is the null device, so this machine's ``find-links`` and local indexes are not read). Then, with the
README's commands: unpack, ``make verify-bundle``, ``make install``; ``run.py serve`` with the
packaged answering model; ingest a folder and ask over the HTTP API; ``make test`` on a short part of
the suite; ``run.py backup``; and an upgrade: the archive unpacked again as a newer version (its
version bumped and one more migration), installed beside the first, run on the same data dir.
WORK_DIR/result.json says what was seen; the test judges it. Each command's output is in WORK_DIR/logs/.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

DOCS = {
    "leave.md": "# Leave\n\nEmployees accrue 1.5 days of paid leave per month, up to 30 days a year.\n",
    "parking.md": "# Parking\n\nParking permits are issued by the facilities desk on Mondays.\n",
}
QUESTION = "How many days of paid leave do employees accrue per month?"
ADMIN_PASSWORD = "bundle-admin-password-1"
# A quick part of the suite: the layer contracts (lint-imports), the database on SQLite, the packaged embedder.
SUITE_PART = ("tests/test_layers.py tests/storage/test_db.py tests/assistant/test_embeddings.py -q -x "
              "-k 'not concurrent and not background'")
PROBE_MIGRATION = '''"""A migration only the upgraded bundle has (written by tests/release/bundle_driver.py)."""

import sqlalchemy as sa
from alembic import op

revision = "9999"
down_revision = "{head}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("bundle_upgrade_probe", sa.Column("id", sa.Integer, primary_key=True))


def downgrade() -> None:
    op.drop_table("bundle_upgrade_probe")
'''


class Steps:
    """Runs commands in a clean environment, logging each and timing it into ``result``."""

    def __init__(self, work: Path, python: str) -> None:
        self.work, self.python = work, python
        self.result: dict[str, Any] = {"steps": {}}
        (work / "logs").mkdir()
        home = work / "home"
        home.mkdir()
        inherited = {key: value for key, value in os.environ.items()
                     if not key.startswith(("PIP_", "ENCLAVE_", "HF_", "VIRTUAL_ENV", "PYTHON", "CI"))}
        path = [part for part in inherited.get("PATH", "/usr/bin:/bin").split(":") if not part.startswith(sys.prefix)]
        self.env = {**inherited, "HOME": str(home), "PATH": ":".join(path), "PIP_CONFIG_FILE": os.devnull}

    def run(self, name: str, command: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
        started = time.monotonic()
        done = subprocess.run(command, cwd=cwd, env={**self.env, **env}, capture_output=True, text=True)
        seconds = round(time.monotonic() - started, 1)
        (self.work / "logs" / f"{name}.txt").write_text(f"$ {' '.join(command)}\n{done.stdout}\n{done.stderr}")
        self.result["steps"][name] = {"rc": done.returncode, "s": seconds,
                                      "tail": (done.stdout + done.stderr)[-1500:]}
        return done

    def must(self, name: str, command: list[str], cwd: Path, **env: str) -> str:
        done = self.run(name, command, cwd, **env)
        if done.returncode != 0:
            raise RuntimeError(f"{name} failed ({done.returncode}): {(done.stdout + done.stderr)[-3000:]}")
        return done.stdout

    def unpack(self, name: str, archive: Path) -> Path:
        target = self.work / name
        target.mkdir()
        self.must(f"unpack-{name}", ["tar", "-xzf", str(archive), "-C", str(target)], target)
        (bundle,) = target.iterdir()
        return bundle

    def make(self, name: str, bundle: Path, *targets: str) -> str:
        return self.must(name, ["make", *targets, f"PYTHON={self.python}"], bundle)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _call(url: str, token: str, body: dict[str, Any] | None = None, timeout: float = 300) -> Any:
    request = urllib.request.Request(url, data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


def _wait_for_port(port: int, server: subprocess.Popen[bytes], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited with {server.returncode}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.3)
    raise RuntimeError(f"the server did not listen on {port} within {seconds} s")


def serve_ingest_ask(steps: Steps, bundle: Path, data: Path, share: Path) -> None:
    """``run.py serve`` from the bundle's .venv; ingest and ask through the HTTP API with an admin's token."""
    port, python = _free_port(), str(bundle / ".venv" / "bin" / "python")
    env = {**steps.env, "ENCLAVE_ADMIN_PASSWORD": ADMIN_PASSWORD, "ENCLAVE_GENERATION__BACKEND": "embedded",
           "ENCLAVE_WEB__INGEST_ROOTS": json.dumps([str(share.parent)])}
    log = (steps.work / "logs" / "serve.txt").open("wb")
    started = time.monotonic()
    server = subprocess.Popen([python, "run.py", "serve", "--no-browser", "--port", str(port), "--data-dir", str(data)],
                              cwd=bundle, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_for_port(port, server, 240)
        steps.result["serve_start_s"] = round(time.monotonic() - started, 1)
        created = steps.must("token", [python, "run.py", "users", "token", "create", "admin", "--name", "bundle",
                                       "--json", "--data-dir", str(data)], bundle)
        token, base = json.loads(created)["token"], f"http://127.0.0.1:{port}"
        job = _call(f"{base}/api/ingest", token, {"folder": str(share), "collection": "handbook"})
        deadline = time.monotonic() + 240
        while (state := _call(f"{base}/api/jobs/{job['job_id']}", token))["state"] not in ("done", "failed", "held"):
            if time.monotonic() > deadline:
                raise RuntimeError(f"ingestion did not finish: {state}")
            time.sleep(0.5)
        steps.result["ingest"] = state
        answer = _call(f"{base}/v1/chat/completions", token,
                       {"model": "enclave", "messages": [{"role": "user", "content": QUESTION}]})
        steps.result["answer"] = {key: answer.get(key) for key in ("citations", "refused", "backend")}
        steps.result["answer"]["content"] = answer["choices"][0]["message"]["content"]
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


def schema_of(data: Path) -> tuple[str, set[str]]:
    """The Alembic revision of the data dir's SQLite database, and its tables."""
    with sqlite3.connect(data / "enclave.db") as db:
        (revision,) = db.execute("SELECT version_num FROM alembic_version").fetchone()
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    return str(revision), tables


def newer_version(bundle: Path, head: str) -> str:
    """Make an unpacked bundle a newer release: bump its version and add a migration on top of ``head``."""
    pyproject = bundle / "pyproject.toml"
    text = pyproject.read_text(encoding="utf-8")
    old = text.split('version = "', 1)[1].split('"', 1)[0]
    pyproject.write_text(text.replace(f'version = "{old}"', f'version = "{old}.post1"', 1), encoding="utf-8")
    versions = bundle / "storage" / "migrations" / "versions"
    (versions / "9999_bundle_upgrade.py").write_text(PROBE_MIGRATION.format(head=head), encoding="utf-8")
    return f"{old}.post1"


def upgrade(steps: Steps, archive: Path, data: Path) -> None:
    """The newer bundle unpacked beside the older one, installed, and run on the same data dir."""
    bundle = steps.unpack("v2", archive)
    before, _ = schema_of(data)
    version = newer_version(bundle, before)
    # The edit is what verify-bundle exists to catch: it must name the changed file (a real newer bundle has its own).
    edited = steps.run("verify-edited", ["make", "verify-bundle", f"PYTHON={steps.python}"], bundle)
    steps.result["verify_edited"] = {"rc": edited.returncode, "output": edited.stdout + edited.stderr}
    steps.make("install-v2", bundle, "install")
    python = str(bundle / ".venv" / "bin" / "python")
    status = steps.must("status-v2", [python, "run.py", "status", "--json", "--data-dir", str(data)], bundle)
    asked = steps.must("ask-v2", [python, "run.py", "ask", QUESTION, "--retrieve-only", "--json",
                                  "--data-dir", str(data)], bundle)
    after, tables = schema_of(data)
    installed = steps.must("version-v2", [python, "-c", "import importlib.metadata as m; print(m.version('enclave'))"],
                           bundle).strip()
    steps.result["upgrade"] = {"status": json.loads(status), "ask": json.loads(asked), "schema_before": before,
                               "schema": after, "probe_table": "bundle_upgrade_probe" in tables,
                               "installed_version": installed, "expected_version": version}


def main() -> None:
    work, archive, python = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    if "--no-netns" not in sys.argv:  # a new namespace's loopback starts down
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    steps = Steps(work, python)
    steps.result["interfaces"] = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    share, data = work / "shares" / "handbook", work / "data"
    share.mkdir(parents=True)
    for name, text in DOCS.items():
        (share / name).write_text(text, encoding="utf-8")
    try:
        bundle = steps.unpack("v1", archive)
        steps.make("verify", bundle, "verify-bundle")
        steps.make("install", bundle, "install")
        serve_ingest_ask(steps, bundle, data, share)
        steps.run("suite", ["make", "test", f"PYTHON={python}", f"PYTEST_ARGS={SUITE_PART}"], bundle)
        steps.must("backup", [str(bundle / ".venv" / "bin" / "python"), "run.py", "backup",
                              str(work / "before-upgrade.tar.gz"), "--data-dir", str(data)], bundle)
        upgrade(steps, archive, data)
    except (RuntimeError, OSError, ValueError) as error:
        steps.result["error"] = str(error)
    (work / "result.json").write_text(json.dumps(steps.result, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
