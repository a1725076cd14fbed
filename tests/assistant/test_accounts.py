"""Sign-in, lockout, sessions and every admin action refused to plain users, through the real services."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from assistant.audit import SYSTEM, Principal
from assistant.audit_events import SignIn
from assistant.errors import AccountLocked, InvalidInput, PermissionDenied, SignInFailed
from assistant.services import build_services
from assistant.settings import load_settings

PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def web(embedder: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One set of services for the module: Argon2 hashing is deliberately slow, so users are made once."""
    settings = load_settings(data_dir=tmp_path_factory.mktemp("accounts"),
                             web={"max_failed_sign_ins": 3, "lockout_minutes": 15})
    services = build_services(settings, embedder=embedder)
    services.web.accounts.ensure_admin("admin-password-1")
    for name in ("alice", "bob", "carol", "dave"):
        services.web.accounts.create_user(SYSTEM, name, PASSWORD)
    yield services.web
    services.close()


@pytest.fixture(scope="module")
def alice(web: Any) -> Principal:
    return web.accounts.sign_in("alice", PASSWORD)[0]


def test_first_start_creates_one_admin_with_a_generated_password(make_services: Callable[..., Any]) -> None:
    accounts = make_services().web.accounts
    generated = accounts.ensure_admin(None)
    assert generated and len(generated) >= 12
    assert accounts.ensure_admin(None) is None  # only on the very first start
    principal, token = accounts.sign_in("admin", generated)
    assert principal.is_admin and accounts.session(token) == principal


def test_sign_in_opens_a_session_and_sign_out_ends_it(web: Any) -> None:
    principal, token = web.accounts.sign_in("alice", PASSWORD, "10.0.0.7")
    assert principal.username == "alice" and not principal.is_admin
    assert web.accounts.session(token) == principal
    assert web.accounts.session(token + "x") is None
    web.accounts.sign_out(token)
    assert web.accounts.session(token) is None
    events = web.audit.events(SYSTEM)
    assert [e.action for e in events[:2]] == ["sign_out", "sign_in"]
    assert events[1].detail == {"client": "10.0.0.7"}
    assert events[1].event == SignIn("alice", client="10.0.0.7")


def test_wrong_password_and_unknown_user_read_the_same(web: Any) -> None:
    with pytest.raises(SignInFailed) as wrong:
        web.accounts.sign_in("alice", "not the password")
    with pytest.raises(SignInFailed) as unknown:
        web.accounts.sign_in("mallory", "not the password")
    assert str(wrong.value) == str(unknown.value) == "wrong user name or password"


def test_repeated_failures_lock_the_account_even_for_the_right_password(web: Any) -> None:
    for _ in range(3):
        with pytest.raises(SignInFailed):
            web.accounts.sign_in("bob", "guess")
    with pytest.raises(AccountLocked, match="locked"):
        web.accounts.sign_in("bob", PASSWORD)
    web.accounts.set_active(SYSTEM, "bob", True)  # an admin unlocks
    assert web.accounts.sign_in("bob", PASSWORD)[0].username == "bob"
    assert "account_locked" in [e.action for e in web.audit.events(SYSTEM)]


def test_guessing_unknown_names_locks_too_so_names_stay_secret(web: Any) -> None:
    for _ in range(3):
        with pytest.raises(SignInFailed):
            web.accounts.sign_in("nobody", "guess")
    with pytest.raises(AccountLocked):
        web.accounts.sign_in("nobody", "guess")


def test_sessions_expire(make_services: Callable[..., Any]) -> None:
    accounts = make_services(web={"session_hours": 3 / 3600}).web.accounts
    accounts.ensure_admin("admin-password-1")
    _, token = accounts.sign_in("admin", "admin-password-1")
    assert accounts.session(token) is not None  # a window of seconds: sign-in itself is slow on a busy machine
    time.sleep(3.5)
    assert accounts.session(token) is None


def test_new_password_ends_other_sessions_and_disabled_users_cannot_sign_in(web: Any) -> None:
    carol, token = web.accounts.sign_in("carol", PASSWORD)
    web.accounts.set_password(carol, "carol", "another long password")
    assert web.accounts.session(token) is None
    web.accounts.set_active(SYSTEM, "carol", False)
    with pytest.raises(SignInFailed):
        web.accounts.sign_in("carol", "another long password")


def test_passwords_are_stored_as_argon2_hashes(web: Any) -> None:
    stored = web.accounts.store.user("alice").password_hash
    assert stored.startswith("$argon2id$") and PASSWORD not in stored


def test_weak_passwords_bad_names_and_the_last_admin_are_refused(web: Any) -> None:
    with pytest.raises(InvalidInput, match="10 characters"):
        web.accounts.create_user(SYSTEM, "erin", "short")
    with pytest.raises(InvalidInput, match="user names"):
        web.accounts.create_user(SYSTEM, "../erin", PASSWORD)
    with pytest.raises(InvalidInput, match="last admin"):
        web.accounts.set_role(SYSTEM, "admin", "user")


ADMIN_ACTIONS: dict[str, Callable[[Any, Principal], object]] = {
    "list users": lambda w, p: w.accounts.users(p),
    "create user": lambda w, p: w.accounts.create_user(p, "eve", PASSWORD, "admin"),
    "set role": lambda w, p: w.accounts.set_role(p, "alice", "admin"),
    "disable user": lambda w, p: w.accounts.set_active(p, "admin", False),
    "other's password": lambda w, p: w.accounts.set_password(p, "admin", PASSWORD),
    "list groups": lambda w, p: w.access.groups(p),
    "create group": lambda w, p: w.access.create_group(p, "staff"),
    "delete group": lambda w, p: w.access.delete_group(p, "staff"),
    "join group": lambda w, p: w.access.set_member(p, "alice", "staff"),
    "grant": lambda w, p: w.access.set_grant(p, "staff", "hr"),
    "create collection": lambda w, p: w.access.create_collection(p, "secret"),
    "audit log": lambda w, p: w.audit.events(p),
    "feedback log": lambda w, p: w.chats.feedback_log(p),
    "corpus status": lambda w, p: w.library.status(p),
    "list documents": lambda w, p: w.library.documents(p),
    "remove document": lambda w, p: w.library.remove(p, 1),
    "ingest folder": lambda w, p: w.jobs.start_folder(p, "/", "hr"),
    "upload": lambda w, p: w.jobs.start_upload(p, [], "hr"),
    "ingest roots": lambda w, p: w.jobs.roots(p),
    "list jobs": lambda w, p: w.jobs.jobs(p),
    "ollama models": lambda w, p: w.runtime.server_models(p, "ollama", {"hosts": "http://127.0.0.1:9"}),
    "change settings": lambda w, p: w.runtime.change(p, "embedded", 3, {"ollama": {"hosts": "http://127.0.0.1:9"}}),
}


@pytest.mark.parametrize("action", ADMIN_ACTIONS)
def test_admin_actions_are_refused_to_users_inside_the_service(web: Any, alice: Principal, action: str) -> None:
    with pytest.raises(PermissionDenied):
        ADMIN_ACTIONS[action](web, alice)


def test_a_locked_account_answers_as_slowly_as_an_unknown_name(web: Any) -> None:
    """Every sign-in does one password hash, so timing tells no real name from an unknown one."""
    import statistics

    for _ in range(3):
        with pytest.raises(SignInFailed):
            web.accounts.sign_in("dave", "guess")

    def seconds(name: str) -> float:
        begun = time.perf_counter()
        with pytest.raises(SignInFailed):
            web.accounts.sign_in(name, "guess")
        return time.perf_counter() - begun

    seconds("never-a-user")  # the first unknown name makes the stand-in hash
    locked = statistics.median(seconds("dave") for _ in range(5))
    unknown = statistics.median(seconds("never-a-user") for _ in range(5))
    assert locked > unknown / 2, (locked, unknown)  # without the hash a locked account answered 10x faster
