"""The data dir holds every document's text, the users' sessions and the settings: private to the app's user.

It is made 700 and the SQLite database 600 (its WAL and shared-memory files take the
database file's mode); a data dir or file that others can read is reported at start.
"""

from __future__ import annotations

import stat
from pathlib import Path

from assistant.settings import CONFIG_FILE_NAME, Settings

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


def make_data_dir(path: Path) -> None:
    """Create the data dir, readable by this user only (an existing one is left as the admin set it)."""
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)


def private_copy(source: Path, target: Path) -> None:
    """Copy a file that may hold secrets (a settings file) so only this user can read the copy."""
    import shutil

    target.unlink(missing_ok=True)
    target.touch(mode=PRIVATE_FILE)
    shutil.copyfile(source, target)


def loose_permissions(settings: Settings) -> list[str]:
    """Warnings for the data dir, the SQLite database files and the settings file when others may read them."""
    data_dir = settings.data_dir
    found: list[str] = []
    if data_dir.is_dir() and stat.S_IMODE(data_dir.stat().st_mode) & 0o077:
        found.append(f"the data dir {data_dir} is readable by other users: chmod 700 it")
    database = data_dir / "enclave.db"
    for path in (database, database.with_name("enclave.db-wal"), database.with_name("enclave.db-shm"),
                 data_dir / CONFIG_FILE_NAME):
        if path.is_file() and stat.S_IMODE(path.stat().st_mode) & 0o077:
            found.append(f"{path} is readable by other users: chmod 600 it")
    return found
