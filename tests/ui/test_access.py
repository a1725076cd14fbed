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

from tests.fake_ollama import FakeOllama, FakeOllamaScript
from tests.ui.conftest import PASSWORDS, World, build_world

PARAM_RE = re.compile(r"\{(\w+)(:\w+)?\}")


def make_pdf(path: Path, pages: list[str]) -> None:
    """A small text PDF, one paragraph per page."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("helvetica", size=12)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 8, text)
    pdf.output(str(path))


@pytest.fixture(scope="module")
def world(embedder: Any, tmp_path_factory: pytest.TempPathFactory, serve: Any) -> Iterator[World]:
    root = tmp_path_factory.mktemp("access")
    (root / "hr").mkdir()
    (root / "payroll").mkdir()
    make_pdf(root / "hr" / "travel.pdf", ["Travel policy overview.", "Employees fly economy class under six hours."])
    (root / "payroll" / "salaries.md").write_text("# Salaries\n\nEngineer salary bands run from one to seven.\n")
    with FakeOllama(FakeOllamaScript(reply="Economy class [1].")) as fake:
        built = build_world(root, embedder, fake, {"hr": root / "hr", "payroll": root / "payroll"}, ["hr"])
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
                walk(ctx.route.routes, prefix + ctx.path)
                continue
            path = PARAM_RE.sub(lambda m: "1" if m.group(2) != ":path" else "x", prefix + ctx.path)
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
            if path == "/login":
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
                       "/view/chunk/0", "/view/doc/1/page/999"):
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
        policy = client.get("/login").headers["content-security-policy"]
    assert "default-src 'self'" in policy and "connect-src 'self'" in policy and "img-src 'self' data: blob:" in policy


def test_sign_out_ends_the_session_on_the_server(world: World) -> None:
    with signed_in(world, "alice") as client:
        token = client.cookies["enclave_session"]
        assert client.post("/logout").status_code == 303
        stale = httpx.get(f"{world.url}/chat/config", cookies={"enclave_session": token})
        assert stale.status_code == 401
