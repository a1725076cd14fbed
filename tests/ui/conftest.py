"""A running web app on 127.0.0.1 with users, grants and an Ollama stand-in, shared per test module."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from assistant.audit import SYSTEM
from assistant.services import Services, build_services
from assistant.settings import load_settings
from tests.fake_ollama import FakeOllama

# `make screenshots` sets it to docs/screenshots; otherwise the browser tests save theirs in a temporary folder.
SCREENSHOTS_ENV = "ENCLAVE_SCREENSHOTS_DIR"
PASSWORDS = {"admin": "admin-password-1", "alice": "alice-password-1", "bob": "bob-password-12"}


@dataclass
class World:
    """Services with users admin, alice (group staff, reads the granted collections) and bob (no groups)."""

    services: Services
    fake: FakeOllama
    root: Path
    url: str = ""
    app: Any = None
    ids: dict[str, Any] = field(default_factory=dict)


def build_world(root: Path, embedder: Any, fake: FakeOllama, collections: dict[str, Path],
                granted: list[str], **overrides: Any) -> World:
    """Ingest each folder into its collection and set up the users; ``granted`` collections go to staff."""
    sections: dict[str, Any] = {
        "generation": {"backend": "ollama", "ollama": {"hosts": [fake.url], "read_timeout_s": 20}},
        "web": {"cookie_secure": False, "ingest_roots": [str(root)]},
    }
    for name, values in overrides.items():  # settings are immutable once built: tests set theirs here
        sections[name] = {**sections[name], **values} if name in sections else values
    settings = load_settings(data_dir=root / "data", **sections)
    services = build_services(settings, embedder=embedder)
    for name, folder in collections.items():
        services.ingest.ingest(folder, name)
    web = services.web
    web.accounts.ensure_admin(PASSWORDS["admin"])
    for name in ("alice", "bob"):
        web.accounts.create_user(SYSTEM, name, PASSWORDS[name])
    web.access.create_group(SYSTEM, "staff")
    web.access.set_member(SYSTEM, "alice", "staff")
    for name in granted:
        web.access.set_grant(SYSTEM, "staff", name)
    return World(services, fake, root)


def free_port() -> int:
    """A port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def serve() -> Iterator[Any]:
    """Start apps with uvicorn in a thread; all are stopped when the module ends."""
    import uvicorn

    from ui.app import build_app
    from ui.server import uvicorn_options

    running: list[tuple[Any, threading.Thread]] = []

    def start(world: World) -> str:
        port = free_port()
        world.app = build_app(world.services)
        options = uvicorn_options(world.services.settings.web)  # as ui.server runs it
        server = uvicorn.Server(uvicorn.Config(world.app, host="127.0.0.1", port=port, **options))
        thread = threading.Thread(target=server.run, name="enclave-test-server", daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("the web app did not start")
            time.sleep(0.05)
        running.append((server, thread))
        world.url = f"http://127.0.0.1:{port}"
        return world.url

    yield start
    for server, thread in running:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def empty_world(embedder: Any, tmp_path_factory: pytest.TempPathFactory, serve: Any) -> Iterator[World]:
    """A served app with the users and no collections, for tests of routes rather than answers."""
    root = tmp_path_factory.mktemp("empty-world")
    with FakeOllama() as fake:
        built = build_world(root, embedder, fake, {}, [])
        serve(built)
        yield built
        built.services.close()


def screenshot_folder(environ: Mapping[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where browser tests save screenshots: ``ENCLAVE_SCREENSHOTS_DIR`` when set, else a new temporary folder."""
    chosen = environ.get(SCREENSHOTS_ENV)
    folder = Path(chosen) if chosen else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder this run's browser tests save screenshots in (never the docs, unless asked)."""
    return screenshot_folder(os.environ, tmp_path_factory)
