"""Sign-in against guessing: per-account lockout, a per-client throttle before it, and an audit log without typed names.

Clients come from several loopback addresses (127.0.0.0/8), as different machines would.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fake_ollama import FakeOllama
from tests.ui.conftest import PASSWORDS, World, build_world


@pytest.fixture(scope="module")
def world(empty_world: World) -> World:
    return empty_world


def from_address(url: str, address: str) -> httpx.Client:
    """A client whose connections come from another loopback address, as another machine's would."""
    return httpx.Client(base_url=url, follow_redirects=False, timeout=30,
                        transport=httpx.HTTPTransport(local_address=address))


def test_brute_force_sign_in_locks_the_account_and_the_lock_expires(
    embedder: Any, tmp_path: Path, serve: Any
) -> None:
    import time

    with FakeOllama() as fake:
        # three tries, then three seconds locked; these clients each fail once: the account lockout is what is tested
        locked = build_world(tmp_path, embedder, fake, {}, [],
                             web={"max_failed_sign_ins": 3, "lockout_minutes": 0.05, "client_failed_sign_ins": 3})
        serve(locked)
        addresses = iter(f"127.0.0.{n}" for n in range(10, 30))

        def sign_in(user: str, password: str) -> httpx.Response:
            with from_address(locked.url, next(addresses)) as client:
                return client.post("/login", data={"username": user, "password": password, "next": "/"})

        for user in ("alice", "nobody"):  # a name that is no account locks the same way: names stay secret
            for _ in range(3):
                assert sign_in(user, "wrong-password").status_code == 401
            refused = sign_in(user, PASSWORDS.get(user, "wrong-password"))
            assert refused.status_code == 401 and "locked" in refused.text and "set-cookie" not in refused.headers
        time.sleep(3.5)
        assert sign_in("alice", PASSWORDS["alice"]).status_code == 303
        locked.services.close()


def test_one_client_is_throttled_before_it_can_lock_anyone_out(embedder: Any, tmp_path: Path, serve: Any) -> None:
    from assistant.audit import SYSTEM

    with FakeOllama() as fake:
        world = build_world(tmp_path, embedder, fake, {}, [],
                            web={"max_failed_sign_ins": 4, "client_failed_sign_ins": 2})
        serve(world)
        form = {"username": "admin", "password": "wrong-password", "next": "/"}
        with from_address(world.url, "127.0.0.1") as attacker, from_address(world.url, "127.0.0.3") as owner:
            answers = [attacker.post("/login", data=form) for _ in range(6)]
            assert [a.status_code for a in answers] == [401] * 6
            assert "from your address" in answers[-1].text and "from your address" not in answers[1].text
            for user in ("alice", "no-such-user"):  # throttled whatever the name
                assert "from your address" in attacker.post("/login", data={**form, "username": user}).text
            for forged in ("10.9.8.7", "127.0.0.3", "203.0.113.5, 127.0.0.3"):  # uvicorn alone trusts 127.0.0.1
                again = attacker.post("/login", data=form, headers={"x-forwarded-for": forged})
                assert "from your address" in again.text, forged
            signed = owner.post("/login", data={**form, "password": PASSWORDS["admin"]})
            assert signed.status_code == 303, "the attacker's address is throttled; the admin's account is not locked"
        actions = [e.action for e in world.services.web.audit.events(SYSTEM, action="account_locked")]
        assert not actions
        world.services.close()


def test_a_name_that_is_no_account_is_never_written_to_the_audit_log(world: World) -> None:
    from assistant.audit import SYSTEM

    typed = "Tr0ub4dor&3-typed-in-the-wrong-field"
    with from_address(world.url, "127.0.0.4") as client:
        assert client.post("/login", data={"username": typed, "password": "x", "next": "/"}).status_code == 401
    events = world.services.web.audit.events(SYSTEM, limit=20)
    assert typed not in str(events)
    failed = next(e for e in events if e.action == "sign_in_failed")
    assert failed.target == failed.user == "(unknown user)"
