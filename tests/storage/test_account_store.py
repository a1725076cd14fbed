"""Users, groups, grants, sessions, audit events and chats on SQLite and PostgreSQL (migration 0002)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import inspect

from storage.account_store import AccountStore
from storage.chat_store import ChatStore
from storage.db import Database
from storage.documents import DocumentStore


def test_migration_0002_adds_the_web_tables(db: Database) -> None:
    tables = set(inspect(db.engine).get_table_names())
    assert {"users", "groups", "group_members", "collection_grants", "web_sessions", "audit_events", "chats",
            "chat_messages", "feedback"} <= tables


def test_grants_reach_users_only_through_their_groups(db: Database) -> None:
    store, docs = AccountStore(db), DocumentStore(db)
    hr, finance = docs.collection_id("hr", create=True), docs.collection_id("finance", create=True)
    alice = store.add_user("alice", "hash", "user")
    bob = store.add_user("bob", "hash", "user")
    staff = store.group_id("staff", create=True)
    assert staff is not None and hr is not None and finance is not None
    store.set_member(staff, alice, True)
    store.set_grant(hr, staff, True)
    store.set_grant(hr, staff, True)  # granting twice changes nothing

    assert store.readable_collections(alice) == {"hr"}
    assert store.readable_collections(bob) == set()
    assert store.groups() == [{"name": "staff", "members": ["alice"], "collections": ["hr"]}]

    store.set_grant(hr, staff, False)
    assert store.readable_collections(alice) == set()


def test_sessions_expire_and_end(db: Database) -> None:
    store = AccountStore(db)
    uid = store.add_user("alice", "hash", "user")
    now = datetime.now(UTC)
    store.add_session("live", uid, now + timedelta(hours=1), "127.0.0.1")
    store.add_session("old", uid, now - timedelta(seconds=1), "127.0.0.1")

    user = store.session_user("live")
    assert user is not None and user.username == "alice"
    assert store.session_user("old") is None
    assert store.session_user("unknown") is None

    store.update_user(uid, active=False)
    assert store.session_user("live") is None  # a disabled user's session stops working at once
    store.delete_sessions(user_id=uid)
    store.update_user(uid, active=True)
    assert store.session_user("live") is None


def test_chats_keep_messages_in_order_and_delete_with_feedback(db: Database) -> None:
    accounts, chats = AccountStore(db), ChatStore(db)
    uid = accounts.add_user("alice", "hash", "user")
    chat = chats.create(uid, "Travel", ["hr"])
    first = chats.add_message(chat, "Which class?", "Economy [1].", "Ollama x", {"citations": [{"n": 1}]})
    chats.add_message(chat, "And long flights?", "Business [1].", "Ollama x", {})
    message = chats.message(first)
    assert message is not None
    chats.add_feedback(message, uid, False, "too short")

    assert [m.question for m in chats.messages(chat)] == ["Which class?", "And long flights?"]
    assert chats.feedback()[0]["citations"] == [{"n": 1}]
    chats.delete(chat)
    assert chats.chats(uid) == [] and chats.messages(chat) == [] and chats.feedback() == []


def test_audit_events_newest_first(db: Database) -> None:
    store = AccountStore(db)
    store.add_event("alice", "sign_in", "alice", {"client": "127.0.0.1"})
    store.add_event("alice", "question_asked", "1", {"question": "Which class?"})

    events = store.events()
    assert [e["action"] for e in events] == ["question_asked", "sign_in"]
    assert events[0]["detail"] == {"question": "Which class?"}
    assert [e["action"] for e in store.events(action="sign_in")] == ["sign_in"]


def test_a_user_created_twice_at_once_exists_once(db: Database) -> None:
    first, second = AccountStore(db), AccountStore(db)  # two app processes starting on an empty database
    assert first.add_user_if_absent("admin", "hash-1", "admin") is not None
    assert second.add_user_if_absent("admin", "hash-2", "admin") is None
    stored = first.user("admin")
    assert first.count_users() == 1 and stored is not None and stored.password_hash == "hash-1"
