"""Company sign-in and the directory sync: accounts, roles and group memberships follow the directory.

A company account is made in Enclave at its first sign-in (``source = "directory"``, no password
here). At every sign-in and every sync its directory groups are mapped to Enclave groups
(``directory.group_map``, else an Enclave group of the same name), and only the memberships the
directory made are added or removed: an admin's own memberships stay. An account the directory
disabled or no longer has is disabled here at the next sync, which ends its sessions and stops its
API tokens; when the directory enables it again, its next sign-in enables it here.
"""

from __future__ import annotations

import logging
import secrets
import threading
from dataclasses import dataclass, field
from typing import NoReturn, Protocol

from assistant import audit_events
from assistant.accounts import UNKNOWN_USER, USERNAME_RE, AccountService
from assistant.audit import AuditLog, Principal, require_admin
from assistant.directory.ldap import WRONG_PASSWORD, DirectoryEntry
from assistant.directory.oidc import Flow, OidcProvider
from assistant.errors import DirectoryUnavailable, InvalidInput, SignInFailed
from assistant.settings import DirectorySettings
from storage.account_store import AccountStore, UserRecord

log = logging.getLogger(__name__)
ACTOR = "directory"  # who the audit log says made the sync's changes


class Directory(Protocol):
    """What company sign-in needs of a directory (``LdapDirectory``)."""

    @property
    def server_label(self) -> str: ...

    def authenticate(self, username: str, password: str) -> DirectoryEntry: ...

    def lookup_many(self, usernames: list[str]) -> dict[str, DirectoryEntry | None]: ...


@dataclass
class SyncReport:
    """What one sync did."""

    accounts: int = 0
    disabled: list[str] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)
    """One line per change, e.g. ``alice: left Finance``."""

    @property
    def changed(self) -> int:
        """How many changes the sync made."""
        return len(self.changes) + len(self.disabled)


class DirectoryService:
    """Signs people in with any method that is on, and keeps company accounts in step with the directory."""

    def __init__(self, settings: DirectorySettings, directory: Directory, store: AccountStore,
                 accounts: AccountService, audit: AuditLog, oidc: OidcProvider | None = None) -> None:
        self.settings = settings
        self.directory = directory
        self.oidc = oidc
        """The company's OpenID Connect provider when ``oidc.enabled``."""
        self.store = store
        self.accounts = accounts
        self.audit = audit
        self._syncing = threading.Lock()

    @property
    def enabled(self) -> bool:
        """Whether company sign-in with a password (LDAP / Active Directory) is on."""
        return self.settings.enabled

    # sign-in

    def sign_in(self, username: str, password: str, client: str = "") -> tuple[Principal, str]:
        """Sign in with a local or a company account; returns the principal and the session's cookie token.

        A name that is a local account signs in locally (the break-glass path, which works while the
        directory is down); any other name is checked by the directory when company sign-in is on.

        Raises:
            SignInFailed: wrong name or password, a disabled account, or a throttled client.
            DirectoryUnavailable: the directory cannot be reached (local accounts still sign in).
        """
        if not self.enabled:
            return self.accounts.sign_in(username, password, client)
        known = self.store.user(username)
        if known is not None and known.source == "local":
            return self.accounts.sign_in(username, password, client,
                                         admins_only=self.settings.local_accounts == "admins")
        self.accounts.check_client(client)
        if known is not None:  # locked here before the directory is asked: guessing never locks the company account
            self.accounts.check_account(known, client)
        entry = self._authenticate(username, password, client, known)
        user = self._account(entry, client)
        token = self.accounts.open_session(user, client, method="directory")
        return Principal(user.id, user.username, user.role), token

    def _authenticate(self, username: str, password: str, client: str, known: UserRecord | None) -> DirectoryEntry:
        shown = known.username if known else UNKNOWN_USER  # a name that is no account may be a mistyped password
        try:
            entry = self.directory.authenticate(username, password)
        except DirectoryUnavailable:
            self.audit.record(shown, audit_events.SignInRefused(shown, reason="directory unavailable", client=client))
            raise
        except SignInFailed:
            self.accounts.count_client_failure(client)
            if known is not None:
                self.accounts.count_failure(known, client, method="directory")
            else:
                failed = audit_events.SignInFailed(shown, client=client, unknown_user=True, method="directory")
                self.audit.record(shown, failed)
            raise
        if entry.disabled:
            self.audit.record(shown, audit_events.SignInRefused(shown, reason="disabled in directory", client=client))
            if known is not None and known.active:
                self._disable(known, "disabled in the directory")
            raise SignInFailed("this account is disabled in the company directory")
        return entry

    def _account(self, entry: DirectoryEntry, client: str, source: str = "directory") -> UserRecord:
        """The Enclave account of a directory entry (or a provider's ID token), made or brought up to date."""
        if not USERNAME_RE.match(entry.username):
            raise SignInFailed("this company account's name cannot be used in Enclave: tell an admin")
        user = self.store.user(entry.username)
        if user is not None and user.source != source:
            # Never merge: the directory must not take over an account made here (perhaps an admin's).
            self.audit.record(entry.username, audit_events.SignInRefused(
                entry.username, reason=f"name taken by a {user.source} account", client=client))
            raise SignInFailed("an account of this name signs in another way: an admin must rename one of them")
        if user is None:
            self.store.add_directory_user(entry.username, entry.dn, self._role(entry, source), source=source)
            self.audit.record(ACTOR, audit_events.UserCreated(entry.username, role=self._role(entry, source),
                                                                source=source))
        elif not user.active and not user.directory_disabled:
            self.audit.record(entry.username, audit_events.SignInRefused(
                entry.username, reason="disabled in Enclave", client=client))
            raise SignInFailed(WRONG_PASSWORD)
        found = self.store.user(entry.username)
        assert found is not None
        if found.failed_sign_ins or found.locked_until:
            self.store.update_user(found.id, failed_sign_ins=0, locked_until=None)
        self._apply(found, entry, SyncReport(), source)
        refreshed = self.store.user(entry.username)
        assert refreshed is not None
        return refreshed

    # OpenID Connect

    def oidc_start(self, redirect_url: str) -> tuple[str, Flow]:
        """Where to send the browser to sign in at the company's provider, and the flow its cookie keeps."""
        if self.oidc is None:
            raise SignInFailed("company single sign-on is not turned on")
        return self.oidc.start(redirect_url)

    def oidc_finish(self, code: str, state: str, flow: Flow | None, redirect_url: str,
                    client: str = "") -> tuple[Principal, str]:
        """Sign in the person the provider sent back; returns the principal and the session's cookie token.

        Raises:
            SignInFailed: a wrong state (not this browser's attempt), a refused code, or an invalid ID token.
            DirectoryUnavailable: the provider cannot be reached.
        """
        if self.oidc is None:
            raise SignInFailed("company single sign-on is not turned on")
        self.accounts.check_client(client)
        if flow is None or not secrets.compare_digest(flow.state, state):
            self._refused_oidc("state does not match", client)
        try:
            entry = self.oidc.finish(code, flow, redirect_url)
        except DirectoryUnavailable:
            self.audit.record(UNKNOWN_USER, audit_events.SignInRefused(UNKNOWN_USER, reason="provider unavailable",
                                                                      client=client))
            raise
        except SignInFailed as exc:
            self._refused_oidc(str(exc.__cause__ or exc)[:200], client)
        user = self._account(entry, client, source="oidc")
        token = self.accounts.open_session(user, client, method="oidc")
        return Principal(user.id, user.username, user.role), token

    def _refused_oidc(self, why: str, client: str) -> NoReturn:
        self.accounts.count_client_failure(client)
        self.audit.record(UNKNOWN_USER, audit_events.SignInRefused(UNKNOWN_USER, reason=f"oidc: {why}", client=client))
        raise SignInFailed("the company sign-in did not complete: start again from the sign-in page")

    # sync

    def sync(self, actor: Principal | None = None) -> SyncReport:
        """Bring every company account in step with the directory (admins, or the periodic sync).

        Raises:
            DirectoryUnavailable: the directory cannot be reached; nobody's access changed.
        """
        if actor is not None:
            require_admin(actor)
        if not self.enabled:
            raise InvalidInput("company sign-in is not turned on: set [directory] enabled = true")
        with self._syncing:
            users = self.store.directory_users()
            if not users:
                return SyncReport()
            try:
                entries = self.directory.lookup_many([u.username for u in users])
            except DirectoryUnavailable as exc:
                self.audit.record(ACTOR, audit_events.DirectorySyncFailed(self.directory.server_label, error=str(exc)))
                raise
            report = SyncReport(accounts=len(users))
            for user in users:
                entry = entries.get(user.username)
                if entry is None or entry.disabled:
                    if user.active:
                        gone = "removed from the directory" if entry is None else "disabled in the directory"
                        self._disable(user, gone)
                        report.disabled.append(user.username)
                elif user.active:
                    self._apply(user, entry, report)
            self.audit.record(ACTOR, audit_events.DirectorySynced(self.directory.server_label, accounts=report.accounts,
                                                                  changed=report.changed))
            return report

    def run_periodic_sync(self, stop: threading.Event) -> None:
        """Sync every ``directory.sync_minutes`` until ``stop`` is set; a failed sync is audited and retried."""
        while not stop.wait(self.settings.sync_minutes * 60):
            try:
                self.sync()
            except DirectoryUnavailable as exc:  # audited by sync; the next round tries again
                log.warning("directory sync failed: %s", exc)

    def start_periodic_sync(self) -> threading.Event | None:
        """Start the periodic sync in a thread when company sign-in is on; returns the event that stops it."""
        if not self.enabled:
            return None
        stop = threading.Event()
        threading.Thread(target=self.run_periodic_sync, args=(stop,), name="enclave-directory-sync",
                         daemon=True).start()
        return stop

    # changes

    def _mapping(self, source: str) -> tuple[dict[str, str], list[str]]:
        """The group map and admin groups of a source of accounts (``directory`` or ``oidc``)."""
        if source == "oidc" and self.oidc is not None:
            return self.oidc.settings.group_map, self.oidc.settings.admin_groups
        return self.settings.group_map, self.settings.admin_groups

    def _role(self, entry: DirectoryEntry, source: str = "directory") -> str:
        return "admin" if set(entry.groups) & set(self._mapping(source)[1]) else "user"

    def _disable(self, user: UserRecord, reason: str) -> None:
        self.store.update_user(user.id, active=False, directory_disabled=True)
        self.store.delete_sessions(user_id=user.id)
        self.audit.record(ACTOR, audit_events.DirectoryUserDisabled(user.username, reason=reason))

    def _apply(self, user: UserRecord, entry: DirectoryEntry, report: SyncReport, source: str = "directory") -> None:
        """Role, details and directory-made memberships from the entry; re-enable an account the directory disabled."""
        if user.directory_disabled:
            self.store.update_user(user.id, active=True, directory_disabled=False)
            self.audit.record(ACTOR, audit_events.DirectoryUserEnabled(user.username))
            report.changes.append(f"{user.username}: enabled")
        role = self._role(entry, source)
        if role != user.role:
            self.store.update_user(user.id, role=role)
            self.audit.record(ACTOR, audit_events.DirectoryRoleChanged(user.username, role=role))
            report.changes.append(f"{user.username}: now {role}")
        if (entry.name, entry.email, entry.dn) != (user.display_name, user.email, user.directory_dn):
            self.store.update_user(user.id, display_name=entry.name[:200], email=entry.email[:200],
                                   directory_dn=entry.dn)
        self._apply_groups(user, entry, report, source)

    def _apply_groups(self, user: UserRecord, entry: DirectoryEntry, report: SyncReport, source: str) -> None:
        wanted = self._enclave_groups(entry.groups, self._mapping(source)[0])
        current = {m.group: m.source for m in self.store.memberships(user.id)}
        for group, made_by in current.items():
            if made_by == source and group not in wanted:
                group_id = self.store.group_id(group)
                if group_id is not None:
                    self.store.set_member(group_id, user.id, False)
                self.audit.record(ACTOR, audit_events.GroupMemberRemoved(group, user=user.username))
                report.changes.append(f"{user.username}: left {group}")
        for group, directory_group in wanted.items():
            if group in current:
                continue  # already a member, by the directory or by an admin's choice
            group_id = self.store.group_id(group, create=True)
            assert group_id is not None
            self.store.set_member(group_id, user.id, True, source=source, directory_group=directory_group)
            self.audit.record(ACTOR, audit_events.GroupMemberAdded(group, user=user.username,
                                                                   directory_group=directory_group))
            report.changes.append(f"{user.username}: joined {group}")

    def _enclave_groups(self, directory_groups: tuple[str, ...], group_map: dict[str, str]) -> dict[str, str]:
        """Enclave group -> the directory group that puts the user in it."""
        existing = {str(g["name"]) for g in self.store.groups()}
        wanted: dict[str, str] = {}
        for name in directory_groups:
            mapped = group_map.get(name)
            if mapped is not None:
                wanted.setdefault(mapped, name)
            elif name in existing:
                wanted.setdefault(name, name)
        return wanted
