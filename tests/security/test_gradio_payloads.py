"""No request body makes the server open, copy or fetch a file: file references sent to every event of
every Gradio page, as every role, are refused before Gradio sees them (ui/payloads.py).

Each event and its inputs come from the mounted pages' own config, so a page or event added later is
probed too. The evidence is what a user would notice: Gradio's cache folder gets no copy, a local
HTTP server is never contacted, the database keeps its lock, and the app keeps answering.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import gradio as gr
import httpx
import pytest
from fastapi import FastAPI
from gradio.routes import App as GradioApp
from starlette.routing import Mount

from tests.fake_ollama import FakeOllama
from tests.ui.conftest import PASSWORDS, World, build_world, free_port, serve  # noqa: F401 (serve: a fixture)

pytestmark = pytest.mark.slow
SECRET = "payload-test-secret-d41d8cd9"
ROLES = (None, "alice", "admin")  # anonymous, a user, an admin


class Recorder(BaseHTTPRequestHandler):
    """Answers anything with the secret, and notes that it was asked."""

    def do_GET(self) -> None:
        self.server.seen.append(self.path)  # type: ignore[attr-defined]
        body = SECRET.encode()
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_HEAD = do_POST = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def watched() -> Iterator[ThreadingHTTPServer]:
    """A local HTTP server that records every request: the server must never fetch from it."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    server.seen = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Gradio's upload cache for this module's apps, so every file Gradio writes can be seen."""
    folder = tmp_path_factory.mktemp("gradio-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GRADIO_TEMP_DIR", str(folder))
        yield folder


@pytest.fixture(scope="module")
def outside(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Files outside the ingest roots and the upload cache: a secret, a pipe, a folder."""
    folder = tmp_path_factory.mktemp("outside")
    (folder / "secret.md").write_text(f"# Secret\n\n{SECRET}\n")
    os.mkfifo(folder / "pipe")
    (folder / "folder").mkdir()
    return folder


@pytest.fixture(scope="module")
def world(embedder: Any, tmp_path_factory: pytest.TempPathFactory, serve: Any, cache: Path) -> Iterator[World]:  # noqa: F811
    with FakeOllama() as fake:
        built = build_world(tmp_path_factory.mktemp("payloads"), embedder, fake, {}, [])
        serve(built)
        yield built
        built.services.close()


@contextmanager
def client_as(world: World, user: str | None) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=world.url, follow_redirects=False, timeout=10) as client:
        if user is not None:
            signed = client.post("/login", data={"username": user, "password": PASSWORDS[user], "next": "/"})
            assert signed.status_code == 303, signed.text
        yield client


def pages(app: Any) -> dict[str, gr.Blocks]:
    """Every mounted Gradio page, by mount path."""
    return {r.path: r.app.get_blocks() for r in app.routes if isinstance(r, Mount) and isinstance(r.app, GradioApp)}


def events(app: Any) -> list[tuple[str, int, int, str | None]]:
    """(mount, fn_index, number of inputs, api name) for every event of every page, from the pages' config."""
    found = []
    for prefix, blocks in pages(app).items():
        for dep in blocks.config["dependencies"]:
            api = dep.get("api_name") if dep.get("api_visibility", "public") != "private" else None
            found.append((prefix, dep["id"], len(dep["inputs"]), api))
    return found


def file_ref(path: str, **extra: Any) -> dict[str, Any]:
    return {"path": path, "meta": {"_type": "gradio.FileData"}, **extra}


def hostile_references(world: World, outside: Path, cache: Path, watched: ThreadingHTTPServer) -> list[Any]:
    """File references no request may make the server open, copy or fetch."""
    url = f"http://127.0.0.1:{watched.server_address[1]}/leak.md"
    planted = cache / "planted"
    planted.mkdir(exist_ok=True)
    if not (planted / "link.md").is_symlink():
        (planted / "link.md").symlink_to(outside / "secret.md")  # a symlink in the cache leading out of it
    db = world.services.settings.data_dir / "enclave.db"
    return [
        file_ref(str(outside / "secret.md")), file_ref(str(outside / "missing.md")), file_ref(str(outside / "folder")),
        file_ref(f"{cache}/../{outside.name}/secret.md"), file_ref(str(planted / "link.md")),
        file_ref(str(db)), file_ref("/proc/self/environ"), file_ref("/dev/null"),
        file_ref(url), file_ref(url.replace("http:", "https:")), file_ref("file:///proc/self/environ"),
        # Names off this machine: a lookup alone fails the test (tests/conftest.py's network guard).
        file_ref("https://huggingface.co/enclave-payload-probe.md"), file_ref("http://payload-probe.example/x.md"),
        {"path": str(db)}, {"url": url}, file_ref(str(planted), url=url),
        {"nested": [{"deeper": file_ref(str(outside / "secret.md"))}]},
    ]


def join_body(fn_index: int, inputs: int, value: Any, session: str) -> dict[str, Any]:
    return {"data": [value] * max(inputs, 1), "event_data": value, "fn_index": fn_index, "trigger_id": None,
            "session_hash": session}


def drain(client: httpx.Client, prefix: str, session: str, pending: set[str], timeout: float = 20) -> list[Any]:
    """Read a session's queue until the given events completed; their completion messages."""
    done: list[Any] = []
    if not pending:
        return done
    with client.stream("GET", f"{prefix}/gradio_api/queue/data", params={"session_hash": session},
                       timeout=timeout) as stream:
        for line in stream.iter_lines():
            if not line.startswith("data:"):
                continue
            message = json.loads(line[5:])
            if message.get("msg") == "process_completed" and message.get("event_id") in pending:
                pending.discard(message["event_id"])
                done.append(message)
                if not pending:
                    break
    return done


def cached_files(cache: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes()[:64] for p in cache.rglob("*") if p.is_file() and not p.is_symlink()}


def db_locks(world: World) -> set[str]:
    """This process's POSIX locks on the database files (closing any copy's descriptor would drop them)."""
    data = world.services.settings.data_dir
    inodes = {os.stat(p).st_ino for p in data.glob("enclave.db*")}
    mine = []
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        if "POSIX" in fields and fields[4] == str(os.getpid()) and int(fields[5].rsplit(":", 1)[1]) in inodes:
            mine.append(" ".join(fields[5:]))
    return set(mine)


def test_file_references_in_any_event_are_refused_for_every_role(
    world: World, outside: Path, cache: Path, watched: ThreadingHTTPServer
) -> None:
    references = hostile_references(world, outside, cache, watched)
    found = events(world.app)
    assert {prefix for prefix, *_ in found} == {"/chat", "/admin"} and len(found) > 10
    locks, before = db_locks(world), cached_files(cache)
    answers: dict[int, int] = {}
    for user in ROLES:
        with client_as(world, user) as client:
            session = secrets.token_hex(8)
            accepted: dict[str, set[str]] = {}
            for prefix, fn_index, inputs, api in found:
                for value in references:
                    body = join_body(fn_index, inputs, value, session)
                    join = client.post(f"{prefix}/gradio_api/queue/join", json=body)
                    answers[join.status_code] = answers.get(join.status_code, 0) + 1
                    if join.status_code == 200:
                        accepted.setdefault(prefix, set()).add(join.json()["event_id"])
                if api:
                    for route in (f"run/{api}", f"call/{api}"):
                        value = references[0]
                        answer = client.post(f"{prefix}/gradio_api/{route}", json={"data": [value] * max(inputs, 1)})
                        answers[answer.status_code] = answers.get(answer.status_code, 0) + 1
            for prefix, blocks in pages(world.app).items():  # components' own server functions
                for component in list(blocks.blocks)[:3]:
                    body = {"session_hash": session, "component_id": component, "fn_name": "upload",
                            "data": references[0]}
                    answer = client.post(f"{prefix}/gradio_api/component_server", json=body)
                    answers[answer.status_code] = answers.get(answer.status_code, 0) + 1
            for prefix, pending in accepted.items():
                drain(client, prefix, session, pending)
    copies = {p: head for p, head in cached_files(cache).items() if p not in before}
    assert not copies, f"Gradio copied files named in requests: {sorted(copies)}"
    assert locks and db_locks(world) >= locks, "the database's lock was dropped"
    assert watched.seen == [], "the server fetched a URL named in a request"  # type: ignore[attr-defined]
    assert set(answers) <= {400, 401, 403}, answers


def test_refusals_do_not_tell_which_files_exist(world: World, outside: Path) -> None:
    prefix, fn_index, inputs, _ = next(e for e in events(world.app) if e[0] == "/admin")
    with client_as(world, "admin") as admin:
        answers = {(r.status_code, r.text.replace(name, "")) for name in ("secret.md", "missing.md", "folder")
                   for r in [admin.post(f"{prefix}/gradio_api/queue/join", json=join_body(
                       fn_index, inputs, file_ref(str(outside / name)), secrets.token_hex(8)))]}
    assert len(answers) == 1 and next(iter(answers))[0] == 400, answers


def test_a_pipe_in_a_request_leaves_the_app_answering(world: World, outside: Path) -> None:
    pipe = str(outside / "pipe")
    try:
        with client_as(world, "admin") as admin, client_as(world, "alice") as alice:
            for prefix, fn_index, inputs, _ in events(world.app)[:3] + events(world.app)[-3:]:
                body = join_body(fn_index, inputs, file_ref(pipe), secrets.token_hex(8))
                admin.post(f"{prefix}/gradio_api/queue/join", json=body)
            time.sleep(0.5)  # long enough for Gradio to have started a copy, were one allowed
            started = time.monotonic()
            assert alice.get("/chat/gradio_api/info", timeout=5).status_code == 200
            assert time.monotonic() - started < 2
    finally:
        release(pipe)


def release(pipe: str) -> None:
    """Open the pipe's other end now and then for a moment, so a reader blocked on it returns."""
    for _ in range(20):
        with contextlib.suppress(OSError):  # nobody is reading it
            os.close(os.open(pipe, os.O_WRONLY | os.O_NONBLOCK))
        time.sleep(0.05)


def upload(client: httpx.Client, prefix: str, name: str, content: bytes) -> httpx.Response:
    return client.post(f"{prefix}/gradio_api/upload", files={"files": (name, content)})


def test_uploads_only_reach_a_page_with_an_upload_and_only_as_bytes(world: World, cache: Path) -> None:
    recording = {"video": ("clip.mp4", b"\x00\x00\x00\x18ftypmp42")}
    with client_as(world, "admin") as admin, client_as(world, "alice") as alice:
        for client in (admin, alice):
            assert upload(client, "/chat", "plan.md", b"# Plan\n").status_code == 403
            for prefix in ("/chat", "/admin"):
                assert client.post(f"{prefix}/gradio_api/process_recording", files=recording).status_code == 403
        assert upload(alice, "/admin", "plan.md", b"# Plan\n").status_code == 403
        for prefix in ("/chat", "/admin"):  # a body Gradio might read files from, other than an upload: refused
            form = admin.post(f"{prefix}/gradio_api/component_server", files={"file": ("x.md", b"x")},
                              data={"session_hash": "x", "component_id": "1", "fn_name": "upload"})
            assert form.status_code == 415, form.text
        stored = upload(admin, "/admin", "plan.md", b"# Plan\n\nThe merger closes in May.\n")
        assert stored.status_code == 200
        path = stored.json()[0]
        assert Path(path).resolve().is_relative_to(cache.resolve())
        fn_index = next(fn for prefix, fn, _, api in events(world.app) if (prefix, api) == ("/admin", "_start_upload"))
        url = f"{world.url}/admin/gradio_api/file={path}"  # what Gradio's web client sends with an upload
        for forged_url in ("http://127.0.0.1:1/x.md", f"{world.url}/admin/gradio_api/file=/etc/passwd"):
            body = join_body(fn_index, 2, [file_ref(path, url=forged_url, orig_name="plan.md")], secrets.token_hex(8))
            assert admin.post("/admin/gradio_api/queue/join", json=body).status_code == 400
        session = secrets.token_hex(8)
        body = {**join_body(fn_index, 2, None, session),
                "data": [[file_ref(path, url=url, orig_name="plan.md", size=31)], "uploads"], "event_data": None}
        joined = admin.post("/admin/gradio_api/queue/join", json=body)
        assert joined.status_code == 200, joined.text
        [done] = drain(admin, "/admin", session, {joined.json()["event_id"]})
        assert done["success"], done
    from assistant.audit import SYSTEM

    uploaded = world.services.web.audit.events(SYSTEM, action="files_uploaded")
    assert uploaded and uploaded[-1].target == "uploads"  # the honest upload was ingested


def serve_app(app: Any) -> tuple[str, Any]:
    """Run an ASGI app with uvicorn on a free port; returns its URL and the server to stop."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the app did not start"
        time.sleep(0.05)
    return f"http://127.0.0.1:{port}", server


def test_gradios_own_upload_check_is_on_behind_the_guard(world: World, outside: Path, cache: Path) -> None:
    from ui.chat_page import ChatPage
    from ui.payloads import check_gradio_paths
    from ui.session import SessionReader

    web = world.services.web
    page = ChatPage(web.chats, web.runtime, SessionReader(web.accounts)).build()
    bare = FastAPI()  # no gate and no guard: only Gradio's own check stands
    gr.mount_gradio_app(bare, page.queue(), path="/page")
    check_gradio_paths(bare.routes)
    url, server = serve_app(bare)
    before = cached_files(cache)
    try:
        with httpx.Client(base_url=url, timeout=10) as client:
            dep = page.config["dependencies"][-1]
            session = secrets.token_hex(8)
            body = join_body(dep["id"], len(dep["inputs"]), file_ref(str(outside / "secret.md")), session)
            joined = client.post("/page/gradio_api/queue/join", json=body)
            assert joined.status_code == 200
            [done] = drain(client, "/page", session, {joined.json()["event_id"]})
        assert not done["success"] and "not uploaded by a user" in json.dumps(done)
        assert not [p for p in cached_files(cache) if p not in before]
    finally:
        server.should_exit = True


def test_the_ingest_handler_takes_only_files_from_the_upload_folder(world: World, outside: Path) -> None:
    from starlette.requests import Request

    from ui.admin_ingest import IngestTab
    from ui.session import SessionReader

    web = world.services.web
    token = web.accounts.sign_in("admin", PASSWORDS["admin"])[1]
    cookie = (b"cookie", f"enclave_session={token}".encode())
    request = gr.Request(request=Request({"type": "http", "headers": [cookie]}))
    tab = IngestTab(web, SessionReader(web.accounts))
    with gr.Blocks():
        tab.build()
    target = outside / "forged.md"
    target.write_text(f"# Forged\n\n{SECRET}\n")
    with pytest.raises(gr.Error, match="uploaded"):
        tab._start_upload([str(target)], "forged", request)
    assert target.read_text().endswith(f"{SECRET}\n"), "a forged path was deleted"
    from assistant.audit import SYSTEM

    assert "forged" not in {e.target for e in web.audit.events(SYSTEM, action="files_uploaded")}
