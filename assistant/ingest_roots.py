"""The server folders admins may ingest from: configured in ``web.ingest_roots``, changed by admins.

An admin adds or removes a root on the admin page (or with ``run.py roots``); the whole list is
saved with the other admin settings (``LiveSettings``), so every process uses it within
``jobs.settings_check_s`` and a restart keeps it. A root is shown and stored as its real path,
so the folder an admin reads in the list is the folder that is read: a typed path with ``..``
or a symbolic link in it is refused with the real path to type instead.
"""

from __future__ import annotations

import os
from pathlib import Path

from assistant import audit_events
from assistant.audit import AuditLog, Principal, require_admin
from assistant.errors import InvalidInput, NotFoundError
from assistant.live_settings import LiveSettings

NO_ROOTS = "none yet: add one on the admin page (Ingest tab) or with `run.py roots add FOLDER`"


class IngestRoots:
    """Lists, adds and removes the folders admins may ingest from, for every process at once."""

    def __init__(self, live: LiveSettings, audit: AuditLog) -> None:
        self.live = live
        self.audit = audit

    def current(self) -> list[Path]:
        """The roots in use now, as real paths (for the checks; no admin needed)."""
        return [Path(root).resolve() for root in self.live.current().web.ingest_roots]

    def folders(self, actor: Principal) -> list[str]:
        """The roots in use now (admins only)."""
        require_admin(actor)
        return [str(root) for root in self.current()]

    def add(self, actor: Principal, folder: str) -> Path:
        """Let admins ingest from ``folder`` and its subfolders, in every process (admins only)."""
        require_admin(actor)
        path = checked_root(folder, self.live.base.data_dir)
        self.live.refresh()
        roots = self.current()
        covering = next((root for root in roots if path.is_relative_to(root)), None)
        if covering is not None:
            raise InvalidInput(f"{path} is already open to ingest, as part of {covering}")
        self._save([*roots, path])
        self.audit.record(actor, audit_events.IngestRootAdded(str(path)))
        return path

    def remove(self, actor: Principal, folder: str) -> Path:
        """Stop admins ingesting from the root ``folder``; what was ingested from it stays (admins only)."""
        require_admin(actor)
        self.live.refresh()
        roots = self.current()
        typed = folder.strip()
        wanted = os.path.normpath(typed) if typed else ""
        path = next((root for root in roots if wanted in (str(root), str(root.resolve()))), None)
        if path is None:
            shown = ", ".join(str(root) for root in roots) or "none"
            raise NotFoundError(f"{typed or '(nothing typed)'} is not a folder admins may ingest from; "
                                f"those are: {shown}")
        self._save([root for root in roots if root != path])
        self.audit.record(actor, audit_events.IngestRootRemoved(str(path)))
        return path

    def _save(self, roots: list[Path]) -> None:
        saved = self.live.saved()
        self.live.save(saved.model_copy(update={"ingest_roots": [str(root) for root in roots]}))


def checked_root(folder: str, data_dir: Path) -> Path:
    """The real path of a folder an admin typed to ingest from; raises InvalidInput saying why it cannot be one."""
    typed = folder.strip()
    if not typed or "\x00" in typed:
        raise InvalidInput("type the full path of a folder on the server, such as /srv/shares/hr")
    path = Path(typed)
    if not path.is_absolute():
        raise InvalidInput(f"{typed} is not a full path: type one that starts with /")
    if ".." in path.parts:
        raise InvalidInput(f"{typed} contains '..': type the folder's own path")
    if not path.exists():
        raise InvalidInput(f"{typed} does not exist on the server")
    if not path.is_dir():
        raise InvalidInput(f"{typed} is not a folder")
    real = path.resolve()
    if real != Path(os.path.normpath(typed)):
        raise InvalidInput(f"{typed} goes through a symbolic link to {real}: type {real} if that is the folder meant")
    data = data_dir.resolve()
    if real.is_relative_to(data) or data.is_relative_to(real):
        raise InvalidInput(f"{real} holds Enclave's own data folder ({data}) or lies inside it: choose a folder "
                           "of documents")
    return real
