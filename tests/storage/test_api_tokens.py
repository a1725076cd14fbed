"""API tokens on SQLite and PostgreSQL (migration 0003): stored hashed, revoked at once, gone with their user."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import delete, inspect, select

from assistant.api_tokens import ApiTokenService, hash_token
from assistant.audit import SYSTEM, AuditLog, Principal
from assistant.errors import NotFoundError, PermissionDenied
from storage.account_store import AccountStore
from storage.accounts import User
from storage.api_tokens import ApiToken, ApiTokenStore
from storage.db import Database


def _service(db: Database) -> tuple[ApiTokenService, AccountStore]:
    accounts = AccountStore(db)
    return ApiTokenService(ApiTokenStore(db), accounts, AuditLog(accounts)), accounts


def test_migration_0003_adds_the_token_table(db: Database) -> None:
    assert (db.schema_version() or "") >= "0003"
    columns = {c["name"] for c in inspect(db.engine).get_columns("api_tokens")}
    assert {"user_id", "name", "token_hash", "prefix", "created_at", "last_used_at", "revoked_at"} <= columns


def test_only_the_hash_is_stored_and_revocation_is_immediate(db: Database) -> None:
    tokens, accounts = _service(db)
    uid = accounts.add_user("alice", "hash", "user")
    alice = Principal(uid, "alice", "user")
    record, secret = tokens.create(alice, "alice", "nightly report")
    with db.session() as s:
        stored = s.scalars(select(ApiToken)).one()
        assert stored.token_hash == hash_token(secret) and secret not in (stored.token_hash, stored.prefix)
    assert tokens.principal(secret) == alice
    assert tokens.principal(secret[:-1] + ("A" if secret[-1] != "A" else "B")) is None
    assert tokens.tokens(alice, "alice")[0].last_used_at is not None

    tokens.revoke(alice, "alice", record.id)
    assert tokens.principal(secret) is None
    assert tokens.tokens(alice, "alice")[0].revoked_at is not None


def test_users_manage_only_their_own_tokens_and_disabled_users_are_refused(db: Database) -> None:
    tokens, accounts = _service(db)
    alice_id, bob_id = accounts.add_user("alice", "hash", "user"), accounts.add_user("bob", "hash", "user")
    bob = Principal(bob_id, "bob", "user")
    record, secret = tokens.create(SYSTEM, "alice", "made by an admin")
    with pytest.raises(PermissionDenied):
        tokens.create(bob, "alice", "x")
    with pytest.raises(PermissionDenied):
        tokens.tokens(bob, "alice")
    with pytest.raises(PermissionDenied):
        tokens.revoke(bob, "alice", record.id)
    with pytest.raises(NotFoundError):
        tokens.revoke(bob, "bob", record.id)  # someone else's token id reads as unknown
    accounts.update_user(alice_id, active=False)
    assert tokens.principal(secret) is None
    with db.session() as s:
        s.execute(delete(User).where(User.id == alice_id))
    assert tokens.store.tokens(alice_id) == [] and tokens.principal(secret) is None
    assert datetime.now(UTC) >= record.created_at
