"""The HTTP API on a real server: tokens made in the web page, OpenAI's own client asking, the grants holding."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from openai import OpenAI, PermissionDeniedError

from tests.fake_ollama import FakeOllama, FakeOllamaScript
from tests.ui.conftest import PASSWORDS, World, build_world
from tests.ui.test_access import hr_and_payroll_shares, make_pdf

QUESTION = "Which class do employees fly on flights under six hours?"
TOKEN_RE = re.compile(r'id="new-token">(enc_[A-Za-z0-9_-]+)<')


@pytest.fixture(scope="module")
def world(embedder: Any, tmp_path_factory: pytest.TempPathFactory, serve: Any) -> Iterator[World]:
    root = tmp_path_factory.mktemp("api")
    with FakeOllama(FakeOllamaScript(reply="Employees fly economy class [1].")) as fake:
        built = build_world(root, embedder, fake, hr_and_payroll_shares(root), ["hr"])
        serve(built)
        from assistant.audit import SYSTEM

        for doc in built.services.web.library.documents(SYSTEM):
            built.ids[doc.collection] = doc.id
        yield built
        built.services.close()


@contextmanager
def signed_in(world: World, user: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=world.url, follow_redirects=False, timeout=30) as client:
        response = client.post("/login", data={"username": user, "password": PASSWORDS[user], "next": "/"})
        assert response.status_code == 303, response.text
        yield client


def create_token(client: httpx.Client, name: str) -> str:
    """Create a token on the web page, as a user would, and read it off the page."""
    page = client.post("/account/tokens", data={"name": name})
    assert page.status_code == 200, page.text
    found = TOKEN_RE.search(page.text)
    assert found, "the new token is shown on the page"
    return found.group(1)


def api(world: World, token: str) -> httpx.Client:
    return httpx.Client(base_url=world.url, headers={"authorization": f"Bearer {token}"}, timeout=60)


def test_a_token_from_the_web_page_asks_through_openais_client_with_citations(world: World) -> None:
    with signed_in(world, "alice") as alice:
        token = create_token(alice, "report script")
        assert token not in alice.get("/account/tokens").text, "a token is shown once only"
        client = OpenAI(base_url=f"{world.url}/v1", api_key=token, max_retries=0)
        assert [m.id for m in client.models.list().data] == ["enclave"]

        answer = client.chat.completions.create(model="enclave", messages=[{"role": "user", "content": QUESTION}])
        extra = answer.model_extra or {}
        assert answer.choices[0].message.content and extra["refused"] is False
        sources = {s["n"]: s for s in extra["sources"]}
        assert extra["citations"], "the model's [1] becomes a citation"
        for citation in extra["citations"]:
            retrieved = sources[citation["n"]]
            assert citation["text"] == retrieved["text"] and citation["collection"] == "hr"
            assert citation["file"] == "travel.pdf" and "economy class" in citation["text"]
            assert citation["support"] == ["Employees fly economy class under six hours."], "the backing sentence"
            cited_page = alice.get(citation["url"])  # the link opens the cited page in the viewer
            assert cited_page.status_code == 200 and '<mark id="cited">' in cited_page.text
            assert "travel.pdf" in cited_page.text
        listed = alice.get("/account/tokens").text
        row = re.search(r"report script</td><td><code>[^<]*</code></td><td>[^<]*</td><td>([^<]*)</td>", listed)
        assert row is not None and row.group(1).endswith("UTC"), "the last use is recorded"
        chat_ids = [c.id for c in world.services.web.chats.chats(_principal(world, "alice"))]
        assert extra["chat_id"] in chat_ids, "the question is in alice's conversations, as in the web chat"


def _principal(world: World, name: str) -> Any:
    from assistant.audit import Principal

    user = world.services.web.accounts.store.user(name)
    assert user is not None
    return Principal(user.id, user.username, user.role)


def test_streaming_yields_chunks_then_citations_then_done(world: World) -> None:
    with signed_in(world, "alice") as alice:
        token = create_token(alice, "streaming")
    client = OpenAI(base_url=f"{world.url}/v1", api_key=token, max_retries=0)
    chunks = list(client.chat.completions.create(
        model="enclave", messages=[{"role": "user", "content": QUESTION}], stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert len(chunks) >= 4 and "economy" in text.lower()
    last = chunks[-1]
    assert last.choices[0].finish_reason == "stop"
    assert [c["collection"] for c in (last.model_extra or {})["citations"]] == ["hr"]
    assert [c["support"] for c in (last.model_extra or {})["citations"]] == [
        ["Employees fly economy class under six hours."]]
    # The documents' best sentence comes before the model's first token, and again with the citations.
    first_evidence = next(i for i, c in enumerate(chunks) if (c.model_extra or {}).get("evidence"))
    first_text = next(i for i, c in enumerate(chunks) if c.choices[0].delta.content)
    assert first_evidence < first_text
    [quote] = [q for q in (chunks[first_evidence].model_extra or {})["evidence"] if "economy" in q["text"]]
    sources = {s["n"]: s for s in (last.model_extra or {})["sources"]}
    assert sources[quote["n"]]["file"] == "travel.pdf" and quote in (last.model_extra or {})["evidence"]
    with api(world, token) as http:
        raw = http.post("/v1/chat/completions", json={"model": "enclave", "stream": True,
                                                     "messages": [{"role": "user", "content": QUESTION}]})
    assert raw.headers["content-type"].startswith("text/event-stream")
    events = [line for line in raw.text.split("\n\n") if line]
    assert all(e.startswith("data: ") for e in events) and events[-1] == "data: [DONE]"


def test_a_user_reads_through_the_api_only_what_the_web_app_lets_them_read(world: World) -> None:
    hr, payroll = world.ids["hr"], world.ids["payroll"]
    with signed_in(world, "alice") as alice, signed_in(world, "bob") as bob:
        alice_token, bob_token = create_token(alice, "a"), create_token(bob, "b")
    with api(world, alice_token) as a, api(world, bob_token) as b:
        salary = {"model": "enclave", "messages": [{"role": "user", "content": "What are the engineer salary bands?"}]}
        for client, readable in ((a, {"hr"}), (b, set())):
            body = client.post("/v1/chat/completions", json=salary).json()
            assert {s["collection"] for s in body["sources"]} <= readable
            assert "seven" not in str(body).lower()
        refused = a.post("/v1/chat/completions", json={**salary, "collections": ["payroll"]})
        assert refused.status_code == 403 and refused.json()["error"]["type"] == "permission_error"
        assert "payroll" in refused.json()["error"]["message"]
        assert [d["collection"] for d in a.get("/api/documents").json()["data"]] == ["hr"]
        assert b.get("/api/documents").json()["data"] == []
        assert a.get("/api/documents", params={"collection": "payroll"}).status_code == 403
        download = a.get(f"/api/documents/{hr}/file")
        assert download.status_code == 200 and download.content.startswith(b"%PDF")
        assert download.headers["content-disposition"].startswith("attachment")
        for client, doc in ((a, payroll), (b, hr), (a, 999_999)):
            for url in (f"/api/documents/{doc}", f"/api/documents/{doc}/file"):
                missing = client.get(url)
                assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found_error"
        assert a.get("/api/status").json()["collections"] == ["hr"] and a.get("/api/status").json()["corpus"] is None


def test_a_revoked_token_stops_working_at_once(world: World) -> None:
    with signed_in(world, "alice") as alice:
        token = create_token(alice, "to revoke")
        with api(world, token) as client:
            assert client.get("/api/status").json()["user"] == "alice"
            token_id = next(t.id for t in world.services.web.tokens.tokens(_principal(world, "alice"), "alice")
                            if t.name == "to revoke")
            with signed_in(world, "bob") as bob:  # nobody else can revoke it
                assert bob.post(f"/account/tokens/{token_id}/revoke").status_code == 404
            assert client.get("/api/status").status_code == 200
            assert alice.post(f"/account/tokens/{token_id}/revoke").status_code == 303
            refused = client.get("/api/status")
            assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Bearer")
            assert refused.json()["error"] == {"message": "the API token is invalid or revoked",
                                               "type": "authentication_error"}
            assert client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "x"}]}
                               ).status_code == 401
        assert "revoked" in alice.get("/account/tokens").text


def test_only_admins_ingest_and_follow_jobs(world: World) -> None:
    folder = world.root / "handbook"
    folder.mkdir()
    (folder / "leave.md").write_text("# Leave\n\nStaff get thirty days of paid leave each year.\n")
    with signed_in(world, "alice") as alice, signed_in(world, "admin") as admin:
        alice_token, admin_token = create_token(alice, "a"), create_token(admin, "ingest")
    request = {"folder": str(folder), "collection": "handbook"}
    with api(world, alice_token) as a, api(world, admin_token) as root:
        refused = a.post("/api/ingest", json=request)
        assert refused.status_code == 403 and "administrators" in refused.json()["error"]["message"]
        assert a.get("/api/jobs").status_code == 403
        outside = root.post("/api/ingest", json={**request, "folder": "/etc"})
        assert outside.status_code == 403 and "not under a folder" in outside.json()["error"]["message"]
        started = root.post("/api/ingest", json=request)
        assert started.status_code == 202, started.text
        job = started.json()
        deadline = time.monotonic() + 120
        while (progress := root.get(job["url"]).json())["state"] not in ("done", "failed"):
            assert time.monotonic() < deadline, progress
            time.sleep(0.2)
        assert progress["state"] == "done" and progress["done"] == progress["total"] == 1
        assert [d["path"] for d in root.get("/api/documents", params={"collection": "handbook"}).json()["data"]] \
            == ["leave.md"]
        assert root.get("/api/status").json()["corpus"]["documents"] >= 3
        assert root.get("/api/jobs/999").status_code == 404


def test_errors_are_clear_json_with_the_right_status(world: World) -> None:
    with signed_in(world, "alice") as alice:
        token = create_token(alice, "errors")
        assert alice.get("/api/status").json()["user"] == "alice", "the browser session works on the API too"
        assert alice.get("/api/openapi.json").json()["info"]["title"] == "Enclave API"
        assert alice.get("/chat/", headers={"authorization": f"Bearer {token}"}).status_code == 200
    anonymous = httpx.get(f"{world.url}/api/status")
    assert anonymous.status_code == 401 and anonymous.json()["error"]["type"] == "authentication_error"
    assert "API token" in anonymous.json()["error"]["message"]
    assert httpx.get(f"{world.url}/chat/", headers={"authorization": f"Bearer {token}"}).status_code == 401, \
        "tokens open the API, not the web app"
    with api(world, token) as client:
        missing = client.post("/v1/chat/completions", json={"model": "enclave"})
        assert missing.status_code == 400 and missing.json()["error"]["param"] == "messages"
        assert client.post("/v1/chat/completions", content=b"{not json").status_code == 400
        no_user = client.post("/v1/chat/completions", json={"messages": [{"role": "system", "content": "hi"}]})
        assert no_user.status_code == 400 and "user message" in no_user.json()["error"]["message"]
        empty = client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "  "}]})
        assert empty.status_code == 400 and "question" in empty.json()["error"]["message"]
        nul = client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "leave\x00?"}]})
        assert nul.status_code == 400 and "NUL" in nul.json()["error"]["message"]
        huge = client.get(f"/api/documents/{2**40}")
        assert huge.status_code == 400 and huge.json()["error"]["param"] == "path.document_id"
        other = client.post("/v1/chat/completions", json={"model": "gpt-4o", "messages": [{"role": "user",
                                                                                          "content": "hi"}]})
        assert other.status_code == 404 and "enclave" in other.json()["error"]["message"]
        assert client.get("/api/nothing-here").json()["error"]["type"] == "not_found_error"
        alien = client.post("/v1/chat/completions", json={"chat_id": 999_999, "messages": [
            {"role": "user", "content": QUESTION}]})
        assert alien.status_code == 404


def test_an_unanswerable_question_is_a_normal_answer_marked_refused(world: World) -> None:
    with signed_in(world, "alice") as alice:
        token = create_token(alice, "refusal")
    client = OpenAI(base_url=f"{world.url}/v1", api_key=token, max_retries=0)
    answer = client.chat.completions.create(
        model="enclave", messages=[{"role": "user", "content": "What is the submarine warranty period in Oslo?"}])
    extra = answer.model_extra or {}
    assert extra["refused"] is True and extra["citations"] == []
    assert answer.choices[0].message.content
    with pytest.raises(PermissionDeniedError):
        client.chat.completions.create(model="enclave", messages=[{"role": "user", "content": QUESTION}],
                                       extra_body={"collections": ["payroll"]})


def test_a_token_stops_working_when_it_expires(world: World) -> None:
    from sqlalchemy import update

    from storage.api_tokens import ApiToken

    with signed_in(world, "alice") as alice:
        assert "in 90 days" in alice.get("/account/tokens").text, "tokens expire by default on the page"
        assert alice.post("/account/tokens", data={"name": "x", "expires": "0"}).status_code == 400
        token = create_token(alice, "short-lived")  # the page's default: 90 days
        record = next(t for t in world.services.web.tokens.tokens(_principal(world, "alice"), "alice")
                      if t.name == "short-lived")
        assert record.expires_at is not None and 89 <= (record.expires_at - record.created_at).days <= 90
        with api(world, token) as client:
            assert client.get("/api/status").status_code == 200
            with world.services.web.tokens.store.db.session() as s:  # ninety days pass
                s.execute(update(ApiToken).where(ApiToken.id == record.id).values(expires_at=record.created_at))
            refused = client.get("/api/status")
            assert refused.status_code == 401 and refused.json()["error"]["type"] == "authentication_error"
        assert "expired" in alice.get("/account/tokens").text


def test_the_command_line_manages_tokens(world: World, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from ui.cli import build_cli

    data_dir = str(world.services.settings.data_dir)
    runner, cli = CliRunner(), build_cli()
    created = runner.invoke(cli, ["users", "--data-dir", data_dir, "token", "create", "bob", "--name", "cron",
                                  "--expires-days", "30"])
    assert created.exit_code == 0, created.output
    secret = re.search(r"enc_[A-Za-z0-9_-]+", created.output)
    assert secret is not None
    with api(world, secret.group(0)) as client:
        assert client.get("/api/status").json()["user"] == "bob"
        listed = runner.invoke(cli, ["users", "--data-dir", data_dir, "token", "list", "bob"])
        assert "cron" in listed.output and secret.group(0) not in listed.output
        cron = next(t for t in world.services.web.tokens.tokens(_principal(world, "admin"), "bob") if t.name == "cron")
        assert cron.expires_at is not None and 29 <= (cron.expires_at - cron.created_at).days <= 30
        token_id = re.search(r"(\d+)\W+cron", listed.output)
        assert token_id is not None, listed.output
        revoked = runner.invoke(cli, ["users", "--data-dir", data_dir, "token", "revoke", "bob",
                                      token_id.group(1)])
        assert revoked.exit_code == 0, revoked.output
        assert client.get("/api/status").status_code == 401


def test_every_api_route_refuses_a_missing_forged_or_foreign_scheme_token(world: World) -> None:
    from tests.ui.test_access import concrete_routes

    routes = [(m, p) for m, p in concrete_routes(world.app) if p.startswith(("/api/", "/v1/"))]
    assert len(routes) >= 10 and ("POST", "/v1/chat/completions") in routes
    with signed_in(world, "alice") as alice:
        session_cookie = alice.cookies["enclave_session"]
    forged = ["", "Bearer", "Bearer enc_" + "A" * 43, "Bearer not-a-token", f"Basic {session_cookie}"]
    for method, path in routes:
        for header in forged:
            headers = {"authorization": header} if header else {}
            response = httpx.request(method, world.url + path, headers=headers, timeout=30)
            assert response.status_code == 401, (method, path, header)
            assert response.json()["error"]["type"] == "authentication_error"
            assert "travel" not in response.text.lower()
        # a bearer header decides alone: a valid session cookie beside a forged token does not let it in
        mixed = httpx.request(method, world.url + path, headers={"authorization": "Bearer enc_forged"},
                              cookies={"enclave_session": session_cookie}, timeout=30)
        assert mixed.status_code == 401, (method, path)


@pytest.mark.postgres
def test_tokens_and_answers_work_the_same_on_postgresql(embedder: Any, tmp_path: Path, serve: Any) -> None:
    from assistant.audit import SYSTEM
    from tests.conftest import postgres_url
    from tests.storage.conftest import _fresh_postgres_database

    (tmp_path / "hr").mkdir()
    make_pdf(tmp_path / "hr" / "travel.pdf", ["Employees fly economy class under six hours."])
    databases = _fresh_postgres_database(postgres_url())
    url = next(databases)
    try:
        with FakeOllama(FakeOllamaScript(reply="Economy class [1].")) as fake:
            pg = build_world(tmp_path, embedder, fake, {"hr": tmp_path / "hr"}, ["hr"], database_url=url)
            assert pg.services.db.dialect == "postgresql"
            serve(pg)
            record, token = pg.services.web.tokens.create(SYSTEM, "alice", "pg")
            with api(pg, token) as client:
                body = client.post("/v1/chat/completions", json={"model": "enclave", "messages": [
                    {"role": "user", "content": QUESTION}]}).json()
                assert [c["collection"] for c in body["citations"]] == ["hr"]
                assert client.get(f"/api/documents/{2**31 - 1}").status_code == 404
                pg.services.web.tokens.revoke(SYSTEM, "alice", record.id)
                assert client.get("/api/status").status_code == 401
            pg.services.close()
    finally:
        next(databases, None)


def test_a_follow_up_carries_the_earlier_turns_that_openai_clients_send(world: World) -> None:
    with signed_in(world, "alice") as alice:
        token = create_token(alice, "follow-up")
    follow_up = "And what about longer flights?"
    turns = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": QUESTION},
             {"role": "assistant", "content": "Economy class [1]."}, {"role": "user", "content": follow_up}]
    with api(world, token) as client:
        for messages, carries in ((turns, True), (turns[-1:], False)):
            before = len(world.fake.chat_requests())
            body = client.post("/v1/chat/completions", json={"model": "enclave", "messages": messages})
            assert body.status_code == 200, body.text
            prompt = str(world.fake.chat_requests()[before:])
            assert (QUESTION.rstrip("?") in prompt) is carries, "the model sees the question the follow-up leans on"
            assert "Be brief" not in prompt, "a client's system message never reaches the model"
            stored = world.services.web.chats.messages(_principal(world, "alice"), body.json()["chat_id"])
            assert [m.question for m in stored] == [follow_up], "the user's own words are stored"


def test_a_model_that_writes_nothing_usable_answers_with_quotes_from_the_documents(world: World) -> None:
    with signed_in(world, "alice") as alice:
        token = create_token(alice, "quoted")
    client = OpenAI(base_url=f"{world.url}/v1", api_key=token, max_retries=0)
    ask = {"model": "enclave", "messages": [{"role": "user", "content": QUESTION}]}
    script = world.fake.script
    try:
        script.reply = "[1] [2]"  # markers and no words: the model gave no answer
        answer = client.chat.completions.create(**ask)  # type: ignore[call-overload]
        extra = answer.model_extra or {}
        content = answer.choices[0].message.content or ""
        assert extra["quoted"] == "the model gave no answer" and extra["refused"] is False
        assert content.startswith("Quoted from the documents:") and "economy class under six hours" in content
        assert [(c["file"], c["kind"]) for c in extra["citations"]] == [("travel.pdf", "quoted")]

        script.reply, script.error_after_tokens = "Employees fly", 1  # the model fails mid-answer
        failed = client.chat.completions.create(**ask)  # type: ignore[call-overload]
        assert (failed.model_extra or {})["quoted"] == "the model failed", "the evidence, not a 503"
        chunks = list(client.chat.completions.create(**ask, stream=True))  # type: ignore[call-overload]
        streamed = "".join(c.choices[0].delta.content or "" for c in chunks)
        assert "Quoted from the documents:" in streamed and (chunks[-1].model_extra or {})["quoted"]
    finally:
        script.reply, script.error_after_tokens = "Employees fly economy class [1].", None
