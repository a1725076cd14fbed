"""Users, passwords, sign-in with lockout, and server-side sessions.

Passwords are hashed with Argon2id. A session is a random token held in the browser's
cookie; the database keeps only its SHA-256, so a copy of the database signs nobody in.
"""

from __future__ import annotations

import functools
import hashlib
import re
import secrets
import threading
from datetime import UTC, datetime, timedelta

from assistant import audit_events
from assistant.audit import AuditLog, Principal, require_admin
from assistant.errors import AccountLocked, InvalidInput, NotFoundError, PermissionDenied, SignInFailed
from assistant.settings import WebSettings
from storage.account_store import AccountStore, UserRecord

ROLES = ("admin", "user")
USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$")
MIN_PASSWORD = 10
LOCKED_MESSAGE = "too many failed sign-ins: this account is locked for a while (an admin can unlock it)"
THROTTLED_MESSAGE = "too many failed sign-ins from your address: wait a few minutes before trying again"
UNKNOWN_USER = "(unknown user)"  # what the audit log says for a name that is no account


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _principal(user: UserRecord) -> Principal:
    return Principal(user.id, user.username, user.role)


def check_password_rules(password: str) -> None:
    """Raise InvalidInput when a new password is too weak to accept."""
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(f"passwords need at least {MIN_PASSWORD} characters")


class AccountService:
    """Sign-in, sessions and user administration; admin actions check the actor's role inside."""

    def __init__(self, store: AccountStore, settings: WebSettings, audit: AuditLog) -> None:
        from argon2 import PasswordHasher

        self.store = store
        self.settings = settings
        self.audit = audit
        self._hasher = PasswordHasher()
        self._unknown_failures: dict[str, tuple[int, datetime]] = {}
        self._client_failures: dict[str, tuple[int, datetime]] = {}
        self._lock = threading.Lock()
        # One password hash at a time: each already uses every core (Argon2 lanes), and a storm of
        # sign-ins hashing at once would starve the questions of users already signed in.
        self._hashing = threading.Lock()

    # first start

    def ensure_admin(self, password: str | None) -> str | None:
        """Create the user ``admin`` when there are no users; returns the password when one was generated."""
        if self.store.count_users() > 0:
            return None
        generated = None if password else secrets.token_urlsafe(12)
        chosen = password or generated
        assert chosen is not None
        check_password_rules(chosen)
        if self.store.add_user_if_absent("admin", self._hasher.hash(chosen), "admin") is None:
            return None  # another app process created the first admin a moment ago
        self.audit.record("system", audit_events.UserCreated("admin", role="admin", first_start=True))
        return generated

    # sign-in and sessions

    def sign_in(self, username: str, password: str, client: str = "",
                admins_only: bool = False) -> tuple[Principal, str]:
        """Check a password and open a session; returns the principal and the cookie token.

        With ``admins_only`` (company sign-in on, ``directory.local_accounts = "admins"``) only local
        admins get in: the break-glass accounts.

        Raises:
            AccountLocked: too many failures in a row; the account unlocks after ``lockout_minutes``.
            SignInFailed: the name or password is wrong, the account is disabled, or this client
                address failed ``client_failed_sign_ins`` times within ``lockout_minutes``.
        """
        now = datetime.now(UTC)
        self._check_client(client, now)
        user = self.store.user(username)
        # Exactly one hash whatever follows: a locked account, an unknown name and a wrong password take as long.
        matches = self._hasher_verify(user.password_hash if user else self._dummy_hash(), password)
        if not matches:
            self._count_client(client, now)
        if user is None:
            self._count_unknown(username, client, now)  # locks like a real account, so names stay secret
            raise SignInFailed("wrong user name or password")
        if _locked(user, now):
            self.audit.record(username, audit_events.SignInRefused(username, reason="locked", client=client))
            raise AccountLocked(LOCKED_MESSAGE)
        if not matches or not user.active:
            self._count_failure(user, client)
            raise SignInFailed("wrong user name or password")
        if admins_only and user.role != "admin":
            self.audit.record(username, audit_events.SignInRefused(username, reason="local sign-in is for admins",
                                                                   client=client))
            raise SignInFailed("sign in with your company account")
        self.store.update_user(user.id, failed_sign_ins=0, locked_until=None)
        if self._hasher.check_needs_rehash(user.password_hash):
            self.store.update_user(user.id, password_hash=self._hasher.hash(password))
        return _principal(user), self.open_session(user, client)

    def open_session(self, user: UserRecord, client: str, method: str = "local") -> str:
        """Start a session for a user whose identity was just proven; returns the cookie token."""
        token = secrets.token_urlsafe(32)
        expires = datetime.now(UTC) + timedelta(hours=self.settings.session_hours)
        self.store.add_session(_hash_token(token), user.id, expires, client)
        self.audit.record(user.username, audit_events.SignIn(user.username, client=client, method=method))
        return token

    @functools.cache  # noqa: B019 - one hash per service, made on the first unknown name
    def _dummy_hash(self) -> str:
        return self._hasher.hash(secrets.token_urlsafe(16))

    def _hasher_verify(self, password_hash: str, password: str) -> bool:
        from argon2.exceptions import InvalidHashError, VerificationError

        try:
            with self._hashing:
                return bool(self._hasher.verify(password_hash, password))
        except (VerificationError, InvalidHashError):
            return False

    def _count_failure(self, user: UserRecord, client: str, method: str = "local") -> None:
        failures = user.failed_sign_ins + 1
        if failures >= self.settings.max_failed_sign_ins:
            until = datetime.now(UTC) + timedelta(minutes=self.settings.lockout_minutes)
            self.store.update_user(user.id, failed_sign_ins=0, locked_until=until)
            locked = audit_events.AccountLocked(user.username, failures=failures, client=client)
            self.audit.record(user.username, locked)
        else:
            self.store.update_user(user.id, failed_sign_ins=failures)
            self.audit.record(user.username, audit_events.SignInFailed(user.username, client=client, method=method))

    def check_account(self, user: UserRecord, client: str) -> None:
        """Raise AccountLocked while too many failures in a row keep the account locked (any sign-in method)."""
        if _locked(user, datetime.now(UTC)):
            self.audit.record(user.username, audit_events.SignInRefused(user.username, reason="locked", client=client))
            raise AccountLocked(LOCKED_MESSAGE)

    def count_failure(self, user: UserRecord, client: str, method: str = "local") -> None:
        """One more failed sign-in of an account in a row; locks it at ``max_failed_sign_ins``."""
        self._count_failure(user, client, method)

    def check_client(self, client: str) -> None:
        """Raise SignInFailed when a client address failed too often lately (any sign-in method)."""
        self._check_client(client, datetime.now(UTC))

    def count_client_failure(self, client: str) -> None:
        """One more failed sign-in from a client address (any sign-in method)."""
        self._count_client(client, datetime.now(UTC))

    def _check_client(self, client: str, now: datetime) -> None:
        """Refuse a client address with too many recent failures, before any account is looked at."""
        if not client:
            return  # the command line and the services' own callers, not a network client
        with self._lock:
            count, until = self._client_failures.get(client, (0, now))
        if count >= self.settings.client_failed_sign_ins and until > now:
            refused = audit_events.SignInRefused(UNKNOWN_USER, reason="client throttled", client=client)
            self.audit.record(UNKNOWN_USER, refused)
            raise SignInFailed(THROTTLED_MESSAGE)

    def _count_client(self, client: str, now: datetime) -> None:
        """One more failure from a client address; the count lapses lockout_minutes after the last one."""
        if not client:
            return
        with self._lock:
            if len(self._client_failures) > 10_000:
                self._client_failures.clear()
            count, until = self._client_failures.get(client, (0, now))
            count = count + 1 if until > now else 1
            self._client_failures[client] = (count, now + timedelta(minutes=self.settings.lockout_minutes))

    def _count_unknown(self, username: str, client: str, now: datetime) -> None:
        """Failures for names that are no account, kept in memory and locked like real accounts."""
        limit = self.settings.max_failed_sign_ins
        with self._lock:
            if len(self._unknown_failures) > 10_000:
                self._unknown_failures.clear()
            count, until = self._unknown_failures.get(username, (0, now))
            if count >= limit and until > now:
                raise AccountLocked(LOCKED_MESSAGE)
            count = 1 if count >= limit else count + 1
            self._unknown_failures[username] = (count, now + timedelta(minutes=self.settings.lockout_minutes))
        # The typed name may be a password typed into the wrong field: never stored.
        self.audit.record(UNKNOWN_USER, audit_events.SignInFailed(UNKNOWN_USER, client=client, unknown_user=True))

    def session(self, token: str | None) -> Principal | None:
        """The principal a cookie token belongs to, or None when absent, unknown or expired."""
        if not token:
            return None
        user = self.store.session_user(_hash_token(token))
        return _principal(user) if user else None

    def sign_out(self, token: str) -> None:
        """End the session of a cookie token."""
        principal = self.session(token)
        self.store.delete_sessions(token_hash=_hash_token(token))
        if principal:
            self.audit.record(principal, audit_events.SignOut(principal.username))

    # administration

    def users(self, actor: Principal) -> list[dict[str, object]]:
        """Every user with role, state and groups (admins only)."""
        require_admin(actor)
        now = datetime.now(UTC)
        return [{"username": u.username, "role": u.role, "active": u.active, "groups": groups,
                 "locked": _locked(u, now), "source": u.source}
                for u, groups in self.store.users()]

    def create_user(self, actor: Principal, username: str, password: str, role: str = "user") -> None:
        """Add a user (admins only)."""
        require_admin(actor)
        if not USERNAME_RE.match(username):
            raise InvalidInput("user names are letters, digits and . _ @ - (at most 100), starting with a letter")
        if role not in ROLES:
            raise InvalidInput(f"role must be one of {', '.join(ROLES)}")
        if self.store.user(username):
            raise InvalidInput(f"there is already a user named {username!r}")
        check_password_rules(password)
        self.store.add_user(username, self._hasher.hash(password), role)
        self.audit.record(actor, audit_events.UserCreated(username, role=role))

    def set_password(self, actor: Principal, username: str, password: str) -> None:
        """Change a password (admins for anyone, users for themselves); other sessions end."""
        if not actor.is_admin and actor.username != username:
            raise PermissionDenied("you may only change your own password")
        user = self._user(username)
        check_password_rules(password)
        self.store.update_user(user.id, password_hash=self._hasher.hash(password), failed_sign_ins=0,
                               locked_until=None)
        self.store.delete_sessions(user_id=user.id)
        self.audit.record(actor, audit_events.PasswordChanged(username))

    def change_own_password(self, principal: Principal, current: str, new: str, repeated: str) -> None:
        """A signed-in user changes their own password, proving the current one; every session ends.

        Raises:
            AccountLocked: too many wrong current passwords in a row, as at sign-in.
            SignInFailed: the current password is wrong (counted towards the lockout).
            InvalidInput: the new password breaks the rules or the two copies differ.
        """
        user = self._user(principal.username)
        if _locked(user, datetime.now(UTC)):
            raise AccountLocked(LOCKED_MESSAGE)
        if not self._hasher_verify(user.password_hash, current):
            self._count_failure(user, "password change")
            raise SignInFailed("the current password is wrong")
        if new != repeated:
            raise InvalidInput("the two copies of the new password differ")
        if new == current:
            raise InvalidInput("the new password is the same as the current one")
        self.set_password(principal, principal.username, new)

    def set_role(self, actor: Principal, username: str, role: str) -> None:
        """Make a user an admin or a plain user (admins only); the last admin stays one."""
        require_admin(actor)
        if role not in ROLES:
            raise InvalidInput(f"role must be one of {', '.join(ROLES)}")
        user = self._user(username)
        if user.role == "admin" and role != "admin" and self.store.count_users("admin") <= 1:
            raise InvalidInput("this is the last admin: make another user admin first")
        self.store.update_user(user.id, role=role)
        self.audit.record(actor, audit_events.RoleChanged(username, role=role))

    def set_active(self, actor: Principal, username: str, active: bool) -> None:
        """Disable or re-enable a user (admins only); disabling ends their sessions."""
        require_admin(actor)
        user = self._user(username)
        if not active and user.role == "admin" and self.store.count_users("admin") <= 1:
            raise InvalidInput("this is the last admin: make another user admin first")
        self.store.update_user(user.id, active=active, failed_sign_ins=0, locked_until=None)
        if not active:
            self.store.delete_sessions(user_id=user.id)
        change = audit_events.UserEnabled if active else audit_events.UserDisabled
        self.audit.record(actor, change(username))

    def _user(self, username: str) -> UserRecord:
        user = self.store.user(username)
        if user is None:
            raise NotFoundError(f"there is no user named {username!r}")
        return user


def _aware(stamp: datetime) -> datetime:
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


def _locked(user: UserRecord, now: datetime) -> bool:
    """Whether too many failed sign-ins keep the account locked at ``now``."""
    return bool(user.locked_until and _aware(user.locked_until) > now)
