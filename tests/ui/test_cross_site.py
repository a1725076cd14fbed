"""Cross-site requests, form by form: a page of another origin (another port of this host too) changes nothing.

The policy over every route is in tests/ui/test_access.py; here each form is shown to keep
working from the app's own pages and to do nothing when another site submits it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from assistant.audit import SYSTEM
from tests.fake_ollama import FakeOllama
from tests.ui.conftest import PASSWORDS, World, build_world


@pytest.fixture(scope="module")
def world(empty_world: World) -> World:
    return empty_world


def own(world: World) -> dict[str, str]:
    """What a browser sends with a form on the app's own page."""
    return {"origin": world.url, "sec-fetch-site": "same-origin"}


def other_port(world: World) -> dict[str, str]:
    """What a browser sends with a form on a page served from another port of the same host."""
    port = int(world.url.rsplit(":", 1)[1])
    return {"origin": f"http://127.0.0.1:{port + 1}", "sec-fetch-site": "same-site"}


@contextmanager
def client(world: World, user: str | None = None) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=world.url, follow_redirects=False, timeout=30) as session:
        if user:
            signed = session.post("/login", data={"username": user, "password": PASSWORDS[user]}, headers=own(world))
            assert signed.status_code == 303
        yield session


def test_another_site_cannot_sign_a_browser_in(world: World) -> None:
    form = {"username": "bob", "password": PASSWORDS["bob"], "next": "/chat/"}
    with client(world) as victim:
        for headers in (other_port(world), {"origin": "http://evil.example"}, {"origin": "null"},
                        {"referer": "http://evil.example/login-csrf.html"}):
            refused = victim.post("/login", data=form, headers=headers)
            assert refused.status_code == 403 and "set-cookie" not in refused.headers, headers
        assert "enclave_session" not in victim.cookies
        assert victim.post("/login", data=form, headers=own(world)).status_code == 303
        referred = victim.post("/login", data=form, headers={"referer": f"{world.url}/login"})
        assert referred.status_code == 303  # a browser that sends only Referer, from our own page


def test_another_site_cannot_revoke_or_create_a_token(world: World) -> None:
    record, secret = world.services.web.tokens.create(SYSTEM, "alice", "kept")
    bearer = {"authorization": f"Bearer {secret}"}
    with client(world, "alice") as alice:
        revoke = f"/account/tokens/{record.id}/revoke"
        assert alice.post(revoke, headers=other_port(world)).status_code == 403
        assert alice.post("/account/tokens", data={"name": "planted"}, headers=other_port(world)).status_code == 403
        assert httpx.get(f"{world.url}/api/status", headers=bearer).status_code == 200
        assert "planted" not in alice.get("/account/tokens").text
        assert alice.post(revoke, headers=own(world)).status_code == 303
        assert httpx.get(f"{world.url}/api/status", headers=bearer).status_code == 401


def test_another_site_cannot_sign_a_user_out_or_change_a_password(world: World) -> None:
    from assistant.audit import SYSTEM as CLI

    world.services.web.accounts.create_user(CLI, "quinn", "quinn-password-1")
    PASSWORDS["quinn"] = "quinn-password-1"
    form = {"current": "quinn-password-1", "new": "quinn-password-2", "repeated": "quinn-password-2"}
    with client(world, "quinn") as quinn:
        assert quinn.post("/logout", headers=other_port(world)).status_code == 403
        assert quinn.post("/account/password", data=form, headers=other_port(world)).status_code == 403
        assert quinn.get("/account/password").status_code == 200, "still signed in"
        assert quinn.post("/account/password", data=form, headers=own(world)).status_code == 303
    with client(world) as fresh:
        assert fresh.post("/login", data={"username": "quinn", "password": "quinn-password-2"}).status_code == 303
        assert fresh.post("/logout", headers=own(world)).status_code == 303


def test_gradio_events_from_another_site_are_refused_and_never_queued(world: World) -> None:
    with client(world, "alice") as alice:
        config = alice.get("/chat/config").json()
        event = {"data": [], "fn_index": 0, "session_hash": "crosssite", "event_data": None, "trigger_id": None}
        refused = alice.post("/chat/gradio_api/queue/join", json=event, headers=other_port(world))
        assert refused.status_code == 403
        assert config["root"].startswith(world.url)


def test_api_calls_with_a_token_need_no_origin_but_a_cookie_does(world: World) -> None:
    _, secret = world.services.web.tokens.create(SYSTEM, "alice", "script")
    question = {"model": "enclave", "retrieve_only": True, "messages": [{"role": "user", "content": "travel?"}]}
    evil = {"origin": "http://evil.example"}
    with httpx.Client(base_url=world.url, timeout=60) as script:  # a bearer token is no ambient credential
        answer = script.post("/v1/chat/completions", json=question,
                             headers={**evil, "authorization": f"Bearer {secret}"})
        assert answer.status_code == 200
    with client(world, "alice") as alice:
        assert alice.post("/v1/chat/completions", json=question, headers=evil).status_code == 403
        assert alice.post("/v1/chat/completions", json=question, headers=own(world)).status_code == 200


def raw_request(world: World, host: str, path: str = "/login", extra: str = "") -> tuple[int, str]:
    """A request naming any Host (clients fill it in from the URL)."""
    import socket

    address, port = world.url.removeprefix("http://").split(":")
    with socket.create_connection((address, int(port)), timeout=30) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{extra}Connection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return int(data.split(b" ", 2)[1]), data.decode("utf-8", "replace")


def test_the_app_answers_only_as_its_own_hosts_and_never_reflects_a_forwarded_one(world: World) -> None:
    port = world.url.rsplit(":", 1)[1]
    for host in ("evil.example", f"rebound.evil.example:{port}", "", "a@b"):
        status, body = raw_request(world, host)
        assert status in (400, 421), (host, status)
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"):
        assert raw_request(world, host)[0] == 200, host
    with client(world, "alice") as alice:
        cookie = alice.cookies["enclave_session"]
    forwarded = "X-Forwarded-Host: evil.example\r\nX-Forwarded-Proto: https\r\nForwarded: host=evil.example\r\n"
    status, body = raw_request(world, f"127.0.0.1:{port}", "/chat/config",
                               f"Cookie: enclave_session={cookie}\r\n{forwarded}")
    assert status == 200 and "evil.example" not in body
    assert f'"root":"http://127.0.0.1:{port}/chat"' in body.replace(" ", "")


def test_a_public_url_names_the_one_host_and_its_scheme(embedder: Any, tmp_path: Path, serve: Any) -> None:
    with FakeOllama() as fake:
        behind_proxy = build_world(tmp_path, embedder, fake, {}, [], web={"public_url": "https://enclave.example.org"})
        serve(behind_proxy)
        assert raw_request(behind_proxy, "enclave.example.org")[0] == 200
        assert raw_request(behind_proxy, "10.1.2.3")[0] == 421  # with a public URL, other addresses are refused
        with httpx.Client(base_url=behind_proxy.url, follow_redirects=False, timeout=30,
                          headers={"host": "enclave.example.org"}) as browser:
            form = {"username": "alice", "password": PASSWORDS["alice"]}
            assert browser.post("/login", data=form, headers={"origin": "http://enclave.example.org"}).status_code \
                == 403  # http:// is another origin than the https:// users open
            signed = browser.post("/login", data=form, headers={"origin": "https://enclave.example.org"})
            assert signed.status_code == 303
            config = browser.get("/chat/config", cookies={"enclave_session": signed.cookies["enclave_session"]})
            assert config.json()["root"] == "https://enclave.example.org/chat"
        behind_proxy.services.close()
