"""Every route of the web app, enumerated from the app itself, refuses whoever may not use it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.routing import iter_route_contexts
from starlette.routing import Mount

from tests.conftest import backend_settings
from tests.fake_ollama import FakeOllama, FakeOllamaScript
from tests.ui.conftest import PASSWORDS, World, build_world
from tests.worlds import make_pdf

PARAM_RE = re.compile(r"\{(\w+)(:\w+)?\}")


def hr_and_payroll_shares(root: Path) -> dict[str, Path]:
    """Two collections' folders: a travel policy PDF for hr, salary bands for payroll."""
    (root / "hr").mkdir()
    (root / "payroll").mkdir()
    make_pdf(root / "hr" / "travel.pdf", ["Travel policy overview.", "Employees fly economy class under six hours."])
    (root / "payroll" / "salaries.md").write_text("# Salaries\n\nEngineer salary bands run from one to seven.\n")
    return {"hr": root / "hr", "payroll": root / "payroll"}


@pytest.fixture(scope="module", params=["in-process", "postgresql"])
def world(request: pytest.FixtureRequest, embedder: Any, tmp_path_factory: pytest.TempPathFactory,
          serve: Any) -> Iterator[World]:
    """The app on each index backend: grants are applied to the same searches either way."""
    root = tmp_path_factory.mktemp("access")
    with backend_settings(request, request.param) as backend, \
            FakeOllama(FakeOllamaScript(reply="Economy class [1].")) as fake:
        built = build_world(root, embedder, fake, hr_and_payroll_shares(root), ["hr"], **backend)
        serve(built)
        library = built.services.web.library
        from assistant.audit import SYSTEM

        for doc in library.documents(SYSTEM):
            built.ids[doc.collection] = doc.id
        yield built
        built.services.close()


def concrete_routes(app: Any) -> list[tuple[str, str]]:
    """(method, path) for every route of the app and of every mounted app, with placeholders filled in."""
    found: list[tuple[str, str]] = []

    def walk(routes: Any, prefix: str) -> None:
        for ctx in iter_route_contexts(routes):
            if isinstance(ctx.route, Mount):
                walk(ctx.route.routes, prefix + (ctx.path or ""))
                continue
            path = PARAM_RE.sub(lambda m: "1" if m.group(2) != ":path" else "x", prefix + (ctx.path or ""))
            for method in sorted(ctx.methods or {"GET"}):
                found.append((method, path))

    walk(app.routes, "")
    return found


@contextmanager
def signed_in(world: World, user: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=world.url, follow_redirects=False, timeout=20) as client:
        response = client.post("/login", data={"username": user, "password": PASSWORDS[user], "next": "/"})
        assert response.status_code == 303, response.text
        yield client


def test_the_enumeration_sees_the_gradio_routes(world: World) -> None:
    paths = {path for _, path in concrete_routes(world.app)}
    assert {"/chat/gradio_api/upload", "/admin/gradio_api/queue/join", "/view/chunk/1", "/login"} <= paths
    assert len(paths) > 100


def test_anonymous_is_refused_on_every_route(world: World) -> None:
    routes = [*concrete_routes(world.app), ("GET", "/not-a-route"), ("GET", "/chat/gradio_api/info")]
    with httpx.Client(base_url=world.url, follow_redirects=False, timeout=20) as client:
        for method, path in routes:
            if ROUTE_POLICIES.get((method, path)) == PUBLIC:  # the sign-in pages
                continue
            response = client.request(method, path, headers={"accept": "text/html"})
            assert response.status_code in (401, 303), (method, path, response.status_code)
            if response.status_code == 303:
                assert response.headers["location"].startswith("/login?next=")
            assert "travel" not in response.text.lower()


def test_users_are_refused_every_admin_route_and_gradio_uploads(world: World) -> None:
    with signed_in(world, "alice") as client:
        admin_routes = [(m, p) for m, p in concrete_routes(world.app) if p.startswith("/admin")]
        assert admin_routes
        for method, path in admin_routes:
            assert client.request(method, path).status_code == 403, (method, path)
        assert client.post("/chat/gradio_api/upload", files={"files": ("a.txt", b"x")}).status_code == 403
        assert client.get("/chat/gradio_api/file=/etc/passwd").status_code == 403
        assert client.get("/chat/").status_code == 200


def test_nobody_makes_the_server_fetch_a_url(world: World) -> None:
    with signed_in(world, "admin") as client:
        for target in ("http://example.com/x.png", "https://example.com/x", "//example.com/x"):
            assert client.get(f"/chat/gradio_api/file={target}").status_code == 403


def test_documents_open_for_readers_and_for_nobody_else(world: World) -> None:
    hr, payroll = world.ids["hr"], world.ids["payroll"]
    urls = ["/view/doc/{}/page/0", "/view/doc/{}/page/1/image.png", "/view/doc/{}/file"]
    with signed_in(world, "alice") as alice, signed_in(world, "bob") as bob:
        page = alice.get(f"/view/doc/{hr}/page/1")
        assert page.status_code == 200 and "economy class" in page.text
        assert alice.get(f"/view/doc/{hr}/page/1/image.png").content.startswith(b"\x89PNG")
        download = alice.get(f"/view/doc/{hr}/file")
        assert download.headers["content-disposition"].startswith("attachment")
        for url in urls:
            assert bob.get(url.format(hr)).status_code == 404
            assert alice.get(url.format(payroll)).status_code == 404
            assert "Salaries" not in alice.get(url.format(payroll)).text
        for forged in ("/view/doc/999999/file", "/view/doc/-1/page/0", "/view/doc/..%2F..%2Fetc%2Fpasswd/file",
                       "/view/chunk/0", "/view/doc/1/page/999", "/view/doc/18446744073709551616/file",
                       "/view/chunk/9223372036854775808", "/view/doc/1/page/4294967296/image.png"):
            assert alice.get(forged).status_code in (404, 422), forged


def test_sign_in_sets_a_strict_http_only_cookie_and_never_redirects_elsewhere(world: World) -> None:
    with httpx.Client(base_url=world.url, follow_redirects=False, timeout=20) as client:
        for target, expected in (("/chat/", "/chat/"), ("//evil.example/x", "/"), ("https://evil.example", "/"),
                                 ("/\\evil.example", "/")):
            response = client.post("/login", data={"username": "alice", "password": PASSWORDS["alice"],
                                                    "next": target})
            assert response.headers["location"] == expected
        cookie = response.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
        wrong = client.post("/login", data={"username": "alice", "password": "nope", "next": "/"})
        assert wrong.status_code == 401 and "wrong user name or password" in wrong.text
        assert "set-cookie" not in wrong.headers


def test_every_response_carries_a_same_origin_content_policy(world: World) -> None:
    with httpx.Client(base_url=world.url, timeout=20) as client:
        headers = client.get("/login").headers
    policy = headers["content-security-policy"]
    assert headers["referrer-policy"] == "same-origin"  # under no-referrer, our own form posts say Origin: null
    assert "default-src 'self'" in policy and "connect-src 'self'" in policy and "img-src 'self' data: blob:" in policy


def test_sign_out_ends_the_session_on_the_server(world: World) -> None:
    with signed_in(world, "alice") as client:
        token = client.cookies["enclave_session"]
        assert client.post("/logout").status_code == 303
        stale = httpx.get(f"{world.url}/chat/config", cookies={"enclave_session": token})
        assert stale.status_code == 401


# --- every route has a declared policy, and each policy holds -------------------------------------

PUBLIC, SIGNED_IN, ADMIN = "public", "signed-in", "admin"
# Every route of our own, with who may use it. A route missing here fails the test below: whoever
# adds a route decides, here, who may call it. /v1 and /api also take an API token (ui.gate).
ROUTE_POLICIES: dict[tuple[str, str], str] = {
    ("GET", "/login"): PUBLIC, ("POST", "/login"): PUBLIC, ("GET", "/favicon.ico"): PUBLIC,
    ("GET", "/login/oidc"): PUBLIC, ("GET", "/login/oidc/callback"): PUBLIC,  # single sign-on (404 while off)
    ("GET", "/"): SIGNED_IN, ("POST", "/logout"): SIGNED_IN,
    ("GET", "/view/chunk/{chunk_id}"): SIGNED_IN,
    ("GET", "/view/doc/{document_id}/page/{ordinal}"): SIGNED_IN,
    ("GET", "/view/doc/{document_id}/page/{ordinal}/image.png"): SIGNED_IN,
    ("GET", "/view/doc/{document_id}/file"): SIGNED_IN,
    ("GET", "/account/tokens"): SIGNED_IN, ("POST", "/account/tokens"): SIGNED_IN,
    ("POST", "/account/tokens/{token_id}/revoke"): SIGNED_IN,
    ("GET", "/account/password"): SIGNED_IN, ("POST", "/account/password"): SIGNED_IN,
    ("GET", "/v1/models"): SIGNED_IN, ("GET", "/v1/models/{model_id}"): SIGNED_IN,
    ("POST", "/v1/chat/completions"): SIGNED_IN,
    ("GET", "/api/status"): SIGNED_IN, ("GET", "/api/openapi.json"): SIGNED_IN,
    ("GET", "/api/documents"): SIGNED_IN, ("GET", "/api/documents/{document_id}"): SIGNED_IN,
    ("GET", "/api/documents/{document_id}/file"): SIGNED_IN,
    ("POST", "/api/ingest"): ADMIN, ("GET", "/api/jobs"): ADMIN, ("GET", "/api/jobs/{job_id}"): ADMIN,
    ("GET", "/api/sources"): ADMIN, ("POST", "/api/sources"): ADMIN, ("GET", "/api/sources/{name}"): ADMIN,
    ("GET", "/api/sources/{name}/runs"): ADMIN, ("POST", "/api/sources/{name}/sync"): ADMIN,
    ("POST", "/api/sources/{name}/confirm"): ADMIN, ("POST", "/api/sources/{name}/pause"): ADMIN,
    ("POST", "/api/sources/{name}/resume"): ADMIN, ("DELETE", "/api/sources/{name}"): ADMIN,
}
# Gradio's own routes come and go with the library: one policy per mount, with the exceptions first.
MOUNT_EXCEPTIONS = {"/chat/gradio_api/upload": ADMIN, "/chat/gradio_api/file=": ADMIN,
                    "/chat/gradio_api/file/": ADMIN}
MOUNT_POLICIES = {"/chat": SIGNED_IN, "/admin": ADMIN}
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/api/ingest"): {"folder": "/", "collection": "hr"},
    ("POST", "/api/sources"): {"name": "share", "folder": "/", "collection": "hr"},
}


def route_templates(app: Any) -> list[tuple[str, str, str, str | None]]:
    """(method, path template, a concrete path, the mount it is under or None) for every route."""
    found: list[tuple[str, str, str, str | None]] = []

    def walk(routes: Any, prefix: str, mount: str | None) -> None:
        for ctx in iter_route_contexts(routes):
            if isinstance(ctx.route, Mount):
                walk(ctx.route.routes, prefix + (ctx.path or ""), mount or prefix + (ctx.path or ""))
                continue
            template = prefix + (ctx.path or "")
            concrete = PARAM_RE.sub(lambda m: "1" if m.group(2) != ":path" else "x", template)
            found.extend((method, template, concrete, mount) for method in sorted(ctx.methods or {"GET"}))

    walk(app.routes, "", None)
    return found


def policy_of(method: str, template: str, mount: str | None) -> str | None:
    if mount is None:
        return ROUTE_POLICIES.get((method, template))
    for prefix, policy in MOUNT_EXCEPTIONS.items():
        if template.startswith(prefix):
            return policy
    return MOUNT_POLICIES.get(mount)


def test_every_route_has_a_declared_policy_and_the_table_has_no_stale_entries(world: World) -> None:
    routes = route_templates(world.app)
    undeclared = [(m, t) for m, t, _, mount in routes if policy_of(m, t, mount) is None]
    assert not undeclared, f"routes without a policy in ROUTE_POLICIES: {undeclared}"
    own = {(m, t) for m, t, _, mount in routes if mount is None}
    assert set(ROUTE_POLICIES) <= own, f"stale entries: {set(ROUTE_POLICIES) - own}"
    assert {("POST", "/v1/chat/completions"), ("POST", "/api/ingest")} <= own  # the API is enumerated too


def api_token(world: World, user: str) -> str:
    from assistant.audit import SYSTEM

    return str(world.services.web.tokens.create(SYSTEM, user, f"access test {user}")[1])


def call(client: httpx.Client, method: str, template: str, path: str, **headers: str) -> httpx.Response:
    body = BODIES.get((method, template))
    return client.request(method, path, json=body, headers=headers or None)


def test_each_route_enforces_its_policy_for_users_and_api_tokens(world: World) -> None:
    # Sign-out and revoking would end this test's own session and token; they are tested on their own.
    routes = [r for r in route_templates(world.app) if r[1] not in ("/logout", "/account/tokens/{token_id}/revoke")]
    user_token, admin_token = api_token(world, "alice"), api_token(world, "admin")
    with signed_in(world, "alice") as alice, httpx.Client(base_url=world.url, timeout=30) as bare:
        for method, template, path, mount in routes:
            policy = policy_of(method, template, mount)
            api = path.startswith(("/v1/", "/api/"))
            with_token = call(bare, method, template, path, authorization=f"Bearer {user_token}").status_code
            if policy == SIGNED_IN and mount is not None:  # Gradio's own routes (some stream forever)
                assert with_token == 401, (method, path, with_token)
                continue
            as_user = call(alice, method, template, path).status_code
            if policy == ADMIN:
                assert as_user == 403, (method, path, as_user)
                assert with_token == (403 if api else 401), (method, path, with_token)
            elif policy == SIGNED_IN:
                assert as_user not in (401, 403), (method, path, as_user)
                assert (with_token not in (401, 403)) if api else (with_token == 401), (method, path, with_token)
            elif policy == PUBLIC:
                assert as_user not in (401, 403) and with_token not in (401, 403), (method, path)
        admin = {"authorization": f"Bearer {admin_token}"}
        assert bare.get("/api/jobs", headers=admin).status_code == 200
        assert bare.get("/admin/", headers=admin).status_code == 401  # a token opens the API only, never the UI
        for forged in ("Bearer enc_not-a-real-token", "Bearer x", "Basic YWRtaW46YWRtaW4=", f"bearer {user_token}x"):
            assert bare.get("/api/status", headers={"authorization": forged}).status_code == 401, forged


def test_a_revoked_token_and_a_disabled_users_token_are_refused(world: World) -> None:
    from assistant.audit import SYSTEM

    tokens = world.services.web.tokens
    record, secret = tokens.create(SYSTEM, "bob", "to revoke")
    with httpx.Client(base_url=world.url, timeout=30, headers={"authorization": f"Bearer {secret}"}) as client:
        assert client.get("/api/status").status_code == 200
        with signed_in(world, "alice") as alice:  # nobody revokes another user's token
            assert alice.post(f"/account/tokens/{record.id}/revoke").status_code == 404
        assert client.get("/api/status").status_code == 200
        world.services.web.accounts.set_active(SYSTEM, "bob", False)
        assert client.get("/api/status").status_code == 401
        world.services.web.accounts.set_active(SYSTEM, "bob", True)
        assert client.get("/api/status").status_code == 200
        tokens.revoke(SYSTEM, "bob", record.id)
        assert client.get("/api/status").status_code == 401


def payroll_chunk(world: World) -> int:
    passages = world.services.retriever.retrieve("engineer salary bands", ["payroll"]).passages
    return int(passages[0].chunk.id)


def test_a_user_without_a_grant_gets_nothing_of_another_collection(world: World) -> None:
    secret_doc, chunk = world.ids["payroll"], payroll_chunk(world)
    urls = [f"/view/chunk/{chunk}", f"/view/doc/{secret_doc}/page/0", f"/view/doc/{secret_doc}/page/0/image.png",
            f"/view/doc/{secret_doc}/file", f"/api/documents/{secret_doc}", f"/api/documents/{secret_doc}/file"]
    token = api_token(world, "alice")
    with signed_in(world, "alice") as alice, httpx.Client(base_url=world.url, timeout=60) as bare:
        by_token = {"authorization": f"Bearer {token}"}
        for url in urls:
            by_cookie, with_token = alice.get(url), bare.get(url, headers=by_token)
            assert by_cookie.status_code == 404, (url, by_cookie.status_code)
            assert with_token.status_code == (404 if url.startswith("/api/") else 401), (url, with_token.status_code)
            assert "salary" not in by_cookie.text.lower() + with_token.text.lower()
        listed = alice.get("/api/documents").text + alice.get("/api/documents?collection=payroll").text
        assert "salaries" not in listed.lower()
        asked = bare.post("/v1/chat/completions", headers=by_token, json={
            "model": "enclave", "messages": [{"role": "user", "content": "What are the engineer salary bands?"}]})
        assert "salar" not in str(asked.json().get("sources", "")).lower()
    with signed_in(world, "admin") as admin:  # the same URLs do work for someone who may read payroll
        assert admin.get(f"/view/chunk/{chunk}").status_code == 200
        assert admin.get(f"/api/documents/{secret_doc}/file").status_code == 200


def test_another_users_chats_and_their_citations_are_not_found(world: World) -> None:
    from assistant.errors import NotFoundError

    chats, accounts = world.services.web.chats, world.services.web.accounts
    alice = accounts.sign_in("alice", PASSWORDS["alice"])[0]
    bob = accounts.sign_in("bob", PASSWORDS["bob"])[0]
    events = list(chats.ask(alice, None, "Which class do employees fly under six hours?"))
    saved = events[-1].chat_id  # type: ignore[union-attr]
    for attempt in (lambda: chats.messages(bob, saved), lambda: chats.rename(bob, saved, "mine"),
                    lambda: chats.delete(bob, saved), lambda: chats.ask(bob, saved, "and business class?").__next__()):
        with pytest.raises(NotFoundError):
            attempt()
    assert chats.messages(alice, saved)  # still there, untouched


def raw_get(world: World, path: str, cookie: str) -> tuple[int, bytes]:
    """A request with the path exactly as written (clients normalise ``..`` and case away)."""
    import socket

    host, port = world.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nCookie: enclave_session={cookie}\r\n"
                     "Connection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return int(data.split(b" ", 2)[1]), data


def test_forged_paths_are_refused(world: World) -> None:
    hr = world.ids["hr"]
    with signed_in(world, "alice") as alice, signed_in(world, "admin") as admin:
        cookie = alice.cookies["enclave_session"]
        for path in ("/chat/../admin/", "/chat/..%2fadmin/", "/chat/%2e%2e/admin/", "/view/../admin/",
                     f"/view/doc/{hr}/../../../admin/", "/ADMIN/", "/Admin/gradio_api/info", "//admin/",
                     "/admin%2f", "/chat/gradio_api/file=/etc/passwd", "/chat/gradio_api/file=..%2f..%2fetc/passwd",
                     "/chat/gradio_api/FILE=/etc/passwd", "/chat/gradio_api/file%3D/etc/passwd",
                     f"/view/doc/{hr}/../../../../etc/passwd", "/view/doc/%2e%2e%2f%2e%2e%2fetc%2fpasswd/file",
                     "/api/documents/..%2f..%2fetc%2fpasswd/file", f"/view/doc/{hr}%00/file", "/view/doc/0x1/file",
                     f"/VIEW/doc/{hr}/file", f"/view/doc/{hr}/FILE", "/api/documents/-1/file",
                     "/api/documents/99999999999/file"):
            status, body = raw_get(world, path, cookie)
            assert status in (400, 401, 403, 404, 422), (path, status)
            assert b"root:" not in body and b"Enclave \xc2\xb7 Admin" not in body, path
        served = len(world.fake.requests)
        for target in (f"{world.fake.url}/api/tags", world.fake.url.upper() + "/api/tags",
                       world.fake.url.replace("://", "%3A%2F%2F") + "/api/tags",
                       world.fake.url.replace("://", "%253A%252F%252F") + "/api/tags",
                       "/etc/passwd", "..%2f..%2f..%2fetc%2fpasswd", "%2Fetc%2Fpasswd"):
            response = admin.get(f"/admin/gradio_api/file={target}")
            assert response.status_code in (400, 403, 404), (target, response.status_code)
            assert "root:" not in response.text
        assert len(world.fake.requests) == served  # the server fetched nothing on anyone's behalf
        assert admin.get(f"/view/doc/{hr}/file").status_code == 200  # the honest path still works


def test_cached_uploads_are_for_admins_under_every_spelling_of_gradios_file_route(world: World) -> None:
    with signed_in(world, "alice") as alice, signed_in(world, "admin") as admin:
        uploaded = admin.post("/admin/gradio_api/upload", files={"files": ("plan.txt", b"the merger closes in May")})
        cached = uploaded.json()[0]
        assert admin.get(f"/admin/gradio_api/file={cached}").text == "the merger closes in May"
        for path in (f"/chat/gradio_api/file={cached}", f"/chat/gradio_api/file/{cached}",
                     f"/chat/gradio_api/file%2F{cached}", f"/chat/gradio_api/file%3D{cached}",
                     f"/admin/gradio_api/file/{cached}"):
            response = alice.get(path)
            assert response.status_code == 403 and "merger" not in response.text, (path, response.status_code)


def test_users_change_their_own_password_only_by_knowing_the_current_one(world: World) -> None:
    from assistant.audit import SYSTEM

    first, second = "pat-first-password", "pat-second-password"
    world.services.web.accounts.create_user(SYSTEM, "pat", first)
    with httpx.Client(base_url=world.url, timeout=30) as pat, httpx.Client(base_url=world.url, timeout=30) as other:
        for client in (pat, other):
            assert client.post("/login", data={"username": "pat", "password": first}).status_code == 303
        assert 'name="current"' in pat.get("/account/password").text
        for form, message in (
            ({"current": "not-my-password", "new": second, "repeated": second}, "current password is wrong"),
            ({"current": first, "new": second, "repeated": second + "x"}, "differ"),
            ({"current": first, "new": "short", "repeated": "short"}, "at least 10"),
        ):
            refused = pat.post("/account/password", data=form)
            assert refused.status_code == 400 and message in refused.text, form
        assert pat.get("/account/password").status_code == 200, "a refused change leaves the session open"
        changed = pat.post("/account/password", data={"current": first, "new": second, "repeated": second})
        assert changed.status_code == 303 and changed.headers["location"] == "/login"
        for client in (pat, other):  # every session ends, on every device
            assert client.get("/account/password", follow_redirects=False).status_code in (302, 303, 401)
    with httpx.Client(base_url=world.url, timeout=30) as fresh:
        assert fresh.post("/login", data={"username": "pat", "password": first}).status_code == 401
        assert fresh.post("/login", data={"username": "pat", "password": second}).status_code == 303
    assert [e.user for e in world.services.web.audit.events(SYSTEM, action="password_changed")][-1] == "pat"


def test_the_cited_page_picture_marks_the_passage_and_refuses_spans_off_the_page(world: World) -> None:
    passages = world.services.retriever.retrieve("Which class do employees fly?", ["hr"]).passages
    cited = next(p.chunk for p in passages if "economy" in p.chunk.text)
    with signed_in(world, "alice") as alice:
        viewer = alice.get(f"/view/chunk/{cited.id}").text
        found = re.search(r'src="(/view/doc/\d+/page/\d+/image\.png\?start=\d+&amp;end=\d+)"', viewer)
        assert found, "the viewer's picture asks for the cited span"
        marked = alice.get(found.group(1).replace("&amp;", "&"))
        plain = alice.get(found.group(1).split("?")[0])
        assert marked.status_code == plain.status_code == 200
        assert marked.content.startswith(b"\x89PNG") and marked.content != plain.content
        for span in ("start=100000&end=100001", "start=5&end=2", "start=-1&end=3"):
            refused = alice.get(f"{found.group(1).split('?')[0]}?{span}")
            assert refused.status_code in (400, 422), span


# --- every state-changing route is refused to pages of other origins ------------------------------

STATE_CHANGING = ("POST", "PUT", "PATCH", "DELETE")


def foreign_origins(world: World) -> list[dict[str, str]]:
    """How a page of another origin shows in a browser's request: another port of this host is another site."""
    port = int(world.url.rsplit(":", 1)[1])
    other = f"http://127.0.0.1:{port + 1}"
    return [{"sec-fetch-site": "same-site", "origin": other}, {"sec-fetch-site": "cross-site"},
            {"origin": other}, {"origin": "null"}, {"origin": f"https://127.0.0.1:{port}"},
            {"origin": "http://evil.example"}, {"referer": f"{other}/attack.html"}]


def test_every_state_changing_route_is_refused_to_other_origins(world: World) -> None:
    routes = [(m, t, p) for m, t, p, _ in route_templates(world.app) if m in STATE_CHANGING]
    assert ("POST", "/chat/gradio_api/queue/join", "/chat/gradio_api/queue/join") in routes  # Gradio's too
    assert len(routes) > 20
    with signed_in(world, "admin") as admin, httpx.Client(base_url=world.url, timeout=30) as bare:
        for method, template, path in routes:
            for headers in foreign_origins(world):
                response = call(admin, method, template, path, **headers)
                assert response.status_code == 403, (method, path, headers, response.status_code)
                assert "another site" in response.text
            anonymous = call(bare, method, template, path, origin="http://evil.example")
            assert anonymous.status_code == 403, (method, path)
        assert admin.get("/chat/").status_code == 200  # nothing above ended the session


def test_every_response_leaves_out_cors_and_foreign_preflights_are_refused(world: World) -> None:
    paths = sorted({p for _, _, p, _ in route_templates(world.app)})
    evil = {"origin": "http://evil.example", "access-control-request-method": "POST",
            "access-control-request-headers": "content-type"}
    with signed_in(world, "admin") as admin:
        for path in paths:
            preflight = admin.options(path, headers=evil)
            assert preflight.status_code == 403, (path, preflight.status_code)
            assert not [h for h in preflight.headers if h.startswith("access-control-")], path
        for path in ("/chat/config", "/admin/config", "/chat/gradio_api/info", "/api/status", "/v1/models"):
            response = admin.get(path, headers={"origin": "http://evil.example"})
            assert response.status_code == 200, path
            assert not [h for h in response.headers if h.startswith("access-control-")], (path, response.headers)
