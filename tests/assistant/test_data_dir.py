"""The data dir and the database are private to the app's user; looser modes are reported at start."""

from __future__ import annotations

import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

from assistant.data_dir import loose_permissions


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_data_dir_and_the_database_files_are_made_private(make_services: Callable[..., Any]) -> None:
    services = make_services()
    services.web.accounts.ensure_admin("admin-password-1")  # a write: SQLite opens its WAL
    data = services.settings.data_dir
    assert mode(data) == 0o700
    for name in ("enclave.db", "enclave.db-wal", "enclave.db-shm"):
        assert (data / name).is_file() and mode(data / name) == 0o600, name
    assert loose_permissions(services.settings) == []


def test_a_data_dir_others_can_read_is_reported(make_services: Callable[..., Any]) -> None:
    services = make_services()
    data = services.settings.data_dir
    (data / "enclave.toml").write_text('default_collection = "default"\n')
    for path, loose in ((data, 0o755), (data / "enclave.db", 0o644), (data / "enclave.toml", 0o644)):
        path.chmod(loose)
    found = loose_permissions(services.settings)
    assert len(found) == 3 and "chmod 700" in found[0] and all("readable by other users" in f for f in found)
    assert str(data / "enclave.toml") in found[2]
