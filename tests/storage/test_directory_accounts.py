"""Migration 0009 on SQLite and PostgreSQL: accounts and memberships made before it stay local and manual."""

from __future__ import annotations

from alembic import command
from sqlalchemy import text

from storage.account_store import AccountStore, Membership
from storage.db import Database, alembic_config


def test_migration_0009_keeps_existing_accounts_local_and_memberships_manual(db_url: str) -> None:
    db = Database(db_url)
    try:
        config = alembic_config()
        with db.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "0007")
        with db.engine.begin() as conn:
            conn.execute(text("INSERT INTO users (username, password_hash, role, active, failed_sign_ins, "
                              "created_at) VALUES ('alice', 'x', 'user', true, 0, CURRENT_TIMESTAMP)"))
            conn.execute(text("INSERT INTO groups (name) VALUES ('staff')"))
            conn.execute(text("INSERT INTO group_members (group_id, user_id) SELECT groups.id, users.id "
                              "FROM groups, users"))
            conn.execute(text("INSERT INTO web_sessions (token_hash, user_id, created_at, expires_at, client) "
                              "SELECT 'h', id, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP + INTERVAL '1 day', '' "
                              "FROM users") if db_url.startswith("postgres") else
                         text("INSERT INTO web_sessions (token_hash, user_id, created_at, expires_at, client) "
                              "SELECT 'h', id, CURRENT_TIMESTAMP, datetime('now', '+1 day'), '' FROM users"))
        db.migrate()
        assert db.schema_version() == "0012"
        store = AccountStore(db)
        alice = store.user("alice")
        assert alice is not None and alice.source == "local" and not alice.directory_disabled
        assert store.memberships(alice.id) == [Membership("staff", "manual")]  # not lost to a table copy
        assert store.session_user("h") == alice
        assert store.directory_users() == []
        store.add_directory_user("dan", "uid=dan,ou=people,dc=example,dc=org", "user")
        assert [u.username for u in store.directory_users()] == ["dan"]
    finally:
        db.dispose()
