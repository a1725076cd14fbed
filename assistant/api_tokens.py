"""Per-user API tokens: created and revoked by their owner (or an admin), checked on every API request.

A token is 32 random bytes (256 bits) from ``secrets``; the database keeps only its SHA-256.
A slow password hash (Argon2) protects low-entropy secrets people choose; a 256-bit random
token cannot be guessed or brute-forced from its hash, so a fast hash loses nothing and keeps
every API request cheap, while a copy of the database still lets nobody in. Revocation is a
database write that the next request sees: nothing is cached.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

from assistant import audit_events
from assistant.audit import AuditLog, Principal
from assistant.errors import InvalidInput, NotFoundError, PermissionDenied
from storage.account_store import AccountStore, UserRecord
from storage.api_tokens import ApiTokenStore
from storage.api_tokens import TokenRecord as TokenRecord  # re-exported for ui/, which never imports storage

TOKEN_PREFIX = "enc_"
SHOWN_PREFIX = 10  # "enc_" and six characters: enough to tell tokens apart, useless to guess one
MAX_ACTIVE = 50
MAX_NAME = 100
MAX_EXPIRY_DAYS = 3650
TOUCH_EVERY = timedelta(seconds=60)  # last-used time to the minute, without a write on every request


def hash_token(secret: str) -> str:
    """The stored form of a token."""
    return hashlib.sha256(secret.encode()).hexdigest()


class ApiTokenService:
    """Creates, lists, revokes and resolves API tokens; users manage their own, admins anyone's."""

    def __init__(self, store: ApiTokenStore, accounts: AccountStore, audit: AuditLog) -> None:
        self.store = store
        self.accounts = accounts
        self.audit = audit

    def create(self, actor: Principal, owner: str, name: str,
               expires_days: int | None = None) -> tuple[TokenRecord, str]:
        """Create a token for ``owner``; returns it with the secret, which is shown this once only.

        With ``expires_days`` the token is refused from that many days on; without, it lasts
        until it is revoked.
        """
        user = self._owner(actor, owner)
        name = name.strip()
        if not name or len(name) > MAX_NAME or any(ord(c) < 32 for c in name):
            raise InvalidInput(f"name the token (1 to {MAX_NAME} characters, e.g. the script that uses it)")
        if expires_days is not None and not 1 <= expires_days <= MAX_EXPIRY_DAYS:
            raise InvalidInput(f"a token expires after 1 to {MAX_EXPIRY_DAYS} days, or never")
        expires = datetime.now(UTC) + timedelta(days=expires_days) if expires_days is not None else None
        if sum(t.revoked_at is None for t in self.store.tokens(user.id)) >= MAX_ACTIVE:
            raise InvalidInput(f"{owner} already has {MAX_ACTIVE} tokens: revoke one first")
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        record = self.store.add(user.id, name, hash_token(secret), secret[:SHOWN_PREFIX], expires)
        created = audit_events.ApiTokenCreated(owner, token=record.id, name=name, expires_days=expires_days)
        self.audit.record(actor, created)
        return record, secret

    def tokens(self, actor: Principal, owner: str) -> list[TokenRecord]:
        """The owner's tokens, newest first, revoked ones included."""
        return self.store.tokens(self._owner(actor, owner).id)

    def revoke(self, actor: Principal, owner: str, token_id: int) -> None:
        """Revoke one of the owner's tokens; requests carrying it are refused from now on."""
        user = self._owner(actor, owner)
        token = self.store.token(token_id)
        if token is None or token.user_id != user.id:
            raise NotFoundError(f"{owner} has no API token {token_id}")
        self.store.revoke(token_id, datetime.now(UTC))
        self.audit.record(actor, audit_events.ApiTokenRevoked(owner, token=token_id, name=token.name))

    def principal(self, secret: str | None) -> Principal | None:
        """Who a bearer token acts for, or None when it is unknown, revoked, expired or its user is disabled."""
        if not secret or not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
            return None
        found = self.store.owner(hash_token(secret))
        if found is None or not found[1].active:
            return None
        token, user = found
        now = datetime.now(UTC)
        if token.expires_at is not None and token.expires_at <= now:
            return None
        if token.last_used_at is None or now - token.last_used_at >= TOUCH_EVERY:
            self.store.touch(token.id, now)
        return Principal(user.id, user.username, user.role)

    def _owner(self, actor: Principal, username: str) -> UserRecord:
        if not actor.is_admin and actor.username != username:
            raise PermissionDenied("you may only manage your own API tokens")
        user = self.accounts.user(username)
        if user is None:
            raise NotFoundError(f"there is no user named {username!r}")
        return user
