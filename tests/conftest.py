"""Shared fixtures: offline mode, a network guard, every path under tmp_path, one embedder."""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings as hypothesis_settings

from assistant.offline import enforce_offline

enforce_offline()  # before any test module imports a model library

# Property tests replay the same examples on every run, so CI never fails on a new random draw;
# ENCLAVE_HYPOTHESIS_PROFILE=explore draws new ones (and deadlines stay off: these cores are shared).
hypothesis_settings.register_profile("ci", derandomize=True, deadline=None, database=None)
hypothesis_settings.register_profile("explore", deadline=None)
hypothesis_settings.load_profile(os.environ.get("ENCLAVE_HYPOTHESIS_PROFILE", "ci"))

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED = PROJECT_ROOT.parent / "shared"
DATASETS = SHARED / "datasets"


def _loopback_or_local(address: Any) -> bool:
    if not isinstance(address, tuple):
        return True  # AF_UNIX paths
    host = address[0]
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_sendto = socket.socket.sendto
_real_sendmsg = socket.socket.sendmsg
_real_getaddrinfo = socket.getaddrinfo
_real_gethostbyname = socket.gethostbyname
_real_gethostbyname_ex = socket.gethostbyname_ex
# Every blocked attempt, even one the code under test caught and swallowed; a test that made
# one fails at teardown (see ``no_blocked_network_attempts``).
BLOCKED_ATTEMPTS: list[str] = []


def _blocked(what: str) -> str:
    message = f"test network guard: {what} blocked"
    BLOCKED_ATTEMPTS.append(message)
    return message


def _local_name(host: Any) -> bool:
    """Whether resolving ``host`` stays on this machine: loopback names and IP literals (connect checks those)."""
    if host is None or isinstance(host, bytes | bytearray):
        host = host.decode() if host else ""
    if host in ("", "localhost") or str(host).endswith(".localhost"):
        return True
    try:
        ipaddress.ip_address(str(host).split("%")[0])
    except ValueError:
        return False
    return True


def _guarded_connect(self: socket.socket, address: Any) -> Any:
    if not _loopback_or_local(address):
        raise ConnectionRefusedError(_blocked(f"outbound connection to {address!r}"))
    return _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> Any:
    if not _loopback_or_local(address):
        raise ConnectionRefusedError(_blocked(f"outbound connection to {address!r}"))
    return _real_connect_ex(self, address)


def _guarded_sendto(self: socket.socket, data: Any, *args: Any) -> Any:
    address = args[-1]  # sendto(data, address) or sendto(data, flags, address)
    if not _loopback_or_local(address):
        raise ConnectionRefusedError(_blocked(f"datagram to {address!r}"))
    return _real_sendto(self, data, *args)


def _guarded_sendmsg(self: socket.socket, buffers: Any, *args: Any) -> Any:
    address = args[3] if len(args) > 3 else None
    if address is not None and not _loopback_or_local(address):
        raise ConnectionRefusedError(_blocked(f"datagram to {address!r}"))
    return _real_sendmsg(self, buffers, *args)


def _guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    if not _local_name(host):
        raise socket.gaierror(socket.EAI_NONAME, _blocked(f"DNS lookup of {host!r}"))
    return _real_getaddrinfo(host, *args, **kwargs)


def _guarded_gethostbyname(host: str) -> str:
    if not _local_name(host):
        raise socket.gaierror(socket.EAI_NONAME, _blocked(f"DNS lookup of {host!r}"))
    return _real_gethostbyname(host)


def _guarded_gethostbyname_ex(host: str) -> Any:
    if not _local_name(host):
        raise socket.gaierror(socket.EAI_NONAME, _blocked(f"DNS lookup of {host!r}"))
    return _real_gethostbyname_ex(host)


_GUARDS: list[tuple[Any, str, Any, Any]] = [
    (socket.socket, "connect", _guarded_connect, _real_connect),
    (socket.socket, "connect_ex", _guarded_connect_ex, _real_connect_ex),
    (socket.socket, "sendto", _guarded_sendto, _real_sendto),
    (socket.socket, "sendmsg", _guarded_sendmsg, _real_sendmsg),
    (socket, "getaddrinfo", _guarded_getaddrinfo, _real_getaddrinfo),
    (socket, "gethostbyname", _guarded_gethostbyname, _real_gethostbyname),
    (socket, "gethostbyname_ex", _guarded_gethostbyname_ex, _real_gethostbyname_ex),
]


@pytest.fixture(autouse=True, scope="session")
def network_guard() -> Iterator[None]:
    """Any connection, datagram or DNS lookup leaving the machine fails the test that made it.

    ``socket.create_connection`` and every client library go through ``socket.connect`` and
    ``getaddrinfo``; child processes are outside this guard, which is why
    tests/security/test_airgap_netns.py runs the whole app in a network namespace under strace.
    """
    for owner, name, guarded, _real in _GUARDS:
        setattr(owner, name, guarded)
    yield
    for owner, name, _guarded, real in _GUARDS:
        setattr(owner, name, real)


@pytest.fixture(autouse=True)
def no_blocked_network_attempts() -> Iterator[None]:
    """Fail the test if anything it ran tried to reach the network, even where the error was caught."""
    BLOCKED_ATTEMPTS.clear()
    yield
    attempts, BLOCKED_ATTEMPTS[:] = list(BLOCKED_ATTEMPTS), []
    if attempts:
        pytest.fail("network attempts during this test: " + "; ".join(attempts[:5]), pytrace=False)


FIGURES: list[tuple[str, str]] = []


@pytest.fixture
def record_figure(request: pytest.FixtureRequest) -> Any:
    """``record_figure(label, value)``: a measured figure, printed in the terminal summary (CI shows it)."""

    def record(label: str, value: Any) -> None:
        FIGURES.append((f"{request.node.nodeid}: {label}", str(value)))
        print(f"FIGURE {label}: {value}")

    return record


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """List every figure the tests recorded."""
    if FIGURES:
        terminalreporter.write_sep("=", "figures")
        for label, value in FIGURES:
            terminalreporter.write_line(f"{label} = {value}")


@pytest.fixture(autouse=True)
def isolated_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Data dir and config lookups go under tmp_path, never the user's home."""
    data_dir = tmp_path / "data"
    monkeypatch.setenv("ENCLAVE_DATA_DIR", str(data_dir))
    for key in [k for k in os.environ if k.startswith("ENCLAVE_") and k != "ENCLAVE_DATA_DIR"]:
        if key != "ENCLAVE_TEST_POSTGRES_URL":
            monkeypatch.delenv(key)
    return data_dir


@pytest.fixture(scope="session")
def embedder() -> Any:
    """The real default embedding model, loaded once per test session."""
    from assistant.embeddings import SentenceTransformerEmbedder
    from assistant.settings import EmbeddingSettings

    return SentenceTransformerEmbedder(EmbeddingSettings())  # type: ignore[call-arg]


@pytest.fixture
def make_services(embedder: Any, isolated_paths: Path) -> Iterator[Any]:
    """Build services on a fresh data dir (or a given one), sharing the session's embedder."""
    from assistant.services import build_services
    from assistant.settings import load_settings

    built: list[Any] = []

    def make(data_dir: Path | None = None, **overrides: Any) -> Any:
        settings = load_settings(data_dir=data_dir or isolated_paths, **overrides)
        services = build_services(settings, embedder=embedder)
        built.append(services)
        return services

    yield make
    for services in built:
        services.close()


def require_dataset(name: str) -> Path:
    """A folder of ../shared/datasets, or skip the test with the reason."""
    folder = DATASETS / name
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent (the shared datasets live beside the project, not in a user's clone)")
    return folder


def postgres_url() -> str:
    """The throwaway PostgreSQL server CI starts, or skip with the reason."""
    url = os.environ.get("ENCLAVE_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("ENCLAVE_TEST_POSTGRES_URL is not set (.ci/run starts a throwaway PostgreSQL and sets it)")
    return url


@pytest.fixture(scope="session")
def pgvector_server_url() -> Iterator[str]:
    """A PostgreSQL server with pgvector for this session (``ENCLAVE_TEST_PGVECTOR_URL``, or one started here)."""
    from tests.pgvector_server import Unavailable, pgvector_server

    given = os.environ.get("ENCLAVE_TEST_PGVECTOR_URL")
    if given:
        yield given
        return
    try:
        with pgvector_server() as url:
            yield url
    except Unavailable as exc:
        pytest.skip(f"no PostgreSQL with pgvector could be started: {exc}")


@pytest.fixture
def pgvector_url(pgvector_server_url: str) -> Iterator[str]:
    """A fresh, empty database on the pgvector server, dropped after the test."""
    from tests.storage.conftest import _fresh_postgres_database

    yield from _fresh_postgres_database(pgvector_server_url)


@contextmanager
def backend_settings(request: pytest.FixtureRequest, backend: str) -> Iterator[dict[str, Any]]:
    """Settings overrides that put services on ``backend``: a fresh pgvector database for ``postgresql``
    (for module-scoped worlds, which ``index_backend``'s environment cannot reach)."""
    if backend != "postgresql":
        yield {}
        return
    from tests.storage.conftest import _fresh_postgres_database

    for url in _fresh_postgres_database(request.getfixturevalue("pgvector_server_url")):
        yield {"database_url": url, "retrieval": {"index_backend": "postgresql"}}


@pytest.fixture(params=["in-process", "postgresql"])
def index_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each index backend in turn, for the services ``make_services`` builds (through the environment)."""
    if request.param == "postgresql":
        monkeypatch.setenv("ENCLAVE_DATABASE_URL", request.getfixturevalue("pgvector_url"))
        monkeypatch.setenv("ENCLAVE_RETRIEVAL__INDEX_BACKEND", "postgresql")
    return str(request.param)
