"""Shared fixtures: offline mode, a network guard, every path under tmp_path, one embedder."""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from assistant.offline import enforce_offline

enforce_offline()  # before any test module imports a model library

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


def _guarded_connect(self: socket.socket, address: Any) -> Any:
    if not _loopback_or_local(address):
        raise ConnectionRefusedError(f"test network guard: outbound connection to {address!r} blocked")
    return _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> Any:
    if not _loopback_or_local(address):
        raise ConnectionRefusedError(f"test network guard: outbound connection to {address!r} blocked")
    return _real_connect_ex(self, address)


@pytest.fixture(autouse=True, scope="session")
def network_guard() -> Iterator[None]:
    """Any connection to a non-loopback address fails the test that made it."""
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]
    yield
    socket.socket.connect = _real_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _real_connect_ex  # type: ignore[method-assign]


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
