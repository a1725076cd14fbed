"""One person's own machine: a local account signed in by a one-time link, and their folders as sources.

``run.py desktop`` (``ui/desktop.py``) serves on loopback to its own window. Nobody types a password:
the process makes a random link token, keeps it in memory only and hands it to its window, which
opens ``/desktop/open?token=...`` once. The token signs in once, only from loopback, and only within
``LINK_VALID_S`` of the start; another local user's process that connects to the port meets the
sign-in page, and the desktop account has no password that could ever be typed there. A document
the window opens in a second window (the viewer) gets a link of its own the same way.
"""

from __future__ import annotations

import getpass
import hmac
import re
import secrets
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from assistant import audit_events
from assistant.accounts import USERNAME_RE, AccountService
from assistant.audit import SYSTEM
from assistant.errors import InvalidInput, SignInFailed
from assistant.sources import Source, SourceService
from storage.account_store import UserRecord

LINK_VALID_S = 120.0  # the window opens the link within seconds of the start
LOOPBACK_CLIENTS = frozenset({"127.0.0.1", "::1"})
NO_PASSWORD = "!"  # no Argon2 hash: no password ever verifies against it
REFUSED = "this desktop sign-in link is not valid (each link works once, right after `run.py desktop` starts)"


def desktop_username(login: str | None = None) -> str:
    """The account name for the person at this machine: their login name, made a valid account name."""
    name = re.sub(r"[^A-Za-z0-9._@-]", "-", login if login is not None else getpass.getuser()).strip("-.")
    return name if USERNAME_RE.match(name) else "me"


class DesktopSignIn:
    """The desktop account, made silently on first use, and the one-time link that signs its window in."""

    def __init__(self, accounts: AccountService, username: str, valid_s: float = LINK_VALID_S) -> None:
        self.accounts = accounts
        self.username = username
        self.valid_s = valid_s
        self._links: dict[str, float] = {}  # token -> when it stops working (monotonic)
        self._lock = threading.Lock()

    def prepare(self) -> None:
        """Make the account when absent: an admin, since the machine and its folders are theirs.

        Raises:
            SignInFailed: the account exists here but was disabled by an admin.
        """
        user = self._account()
        if not user.active:
            raise SignInFailed(f"the account {user.username} is disabled here: an admin can enable it")

    def new_link(self) -> str:
        """A new one-time token for one of this process's own windows."""
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._links[token] = time.monotonic() + self.valid_s
        return token

    def redeem(self, token: str, client: str) -> str:
        """Spend a one-time token and open a session; returns the session cookie's token.

        Raises:
            SignInFailed: a wrong, spent or expired token, a client that is not this machine, or a
                disabled account.
        """
        with self._lock:
            deadline = next((d for t, d in self._links.items() if hmac.compare_digest(t.encode(), token.encode())),
                            None)
            valid = deadline is not None and time.monotonic() < deadline and client in LOOPBACK_CLIENTS
            if valid:
                self._links.pop(token)
            else:
                self._links.clear()  # a wrong guess ends every open link: guessing leaves nothing to find
        if not valid:
            self.accounts.audit.record(self.username, audit_events.SignInRefused(
                self.username, reason="desktop link not valid", client=client))
            raise SignInFailed(REFUSED)
        user = self._account()
        if not user.active:  # disabled by an admin while the window was open
            raise SignInFailed(f"the account {user.username} is disabled here: an admin can enable it")
        return self.accounts.open_session(user, client, method="desktop")

    def _account(self) -> UserRecord:
        store = self.accounts.store
        user = store.user(self.username)
        if user is None:
            if store.add_user_if_absent(self.username, NO_PASSWORD, "admin") is not None:
                self.accounts.audit.record("system", audit_events.UserCreated(self.username, role="admin",
                                                                                 source="desktop"))
            user = store.user(self.username)
        assert user is not None
        return user


def follow_folders(sources: SourceService, folders: Iterable[Path]) -> list[Source]:
    """Make each folder a source (once: a folder already followed is kept) and queue a run of every source.

    Each new folder gets its own collection, named after it. Sources live in the database, so the
    folders chosen once are followed at every later start, with or without ``--folder``.
    """
    known = {Path(s.folder): s for s in sources.sources(SYSTEM)}
    taken = {s.name for s in known.values()}
    for folder in folders:
        path = folder.expanduser().resolve()
        if not path.is_dir():
            raise InvalidInput(f"{path} is not a folder")
        if path in known:
            continue
        name = _free_name(path.name, taken)
        taken.add(name)
        known[path] = sources.add(SYSTEM, name, str(path), name)  # queues its first run
    for source in sources.sources(SYSTEM):
        if source.enabled:
            sources.sync(SYSTEM, source.name)  # what changed while the app was closed (joins a queued run)
    return sources.sources(SYSTEM)


def _free_name(wanted: str, taken: set[str]) -> str:
    base = re.sub(r"[^A-Za-z0-9 ._-]", "-", wanted).strip(" .-_")[:60] or "Documents"
    name, n = base, 2
    while name in taken:
        name, n = f"{base} {n}", n + 1
    return name
