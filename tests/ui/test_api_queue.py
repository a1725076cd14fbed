"""The generation queue through the HTTP API and the web chat: the place in line shown, freed by clients who leave."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from openai import OpenAI

from assistant.audit import SYSTEM
from tests.fake_ollama import FakeOllama, FakeOllamaScript
from tests.ui.conftest import PASSWORDS, World, build_world

QUESTION = "Which class do employees fly on flights under six hours?"
REPLY = "Employees fly economy class [1]. " + "It is the policy for every short flight " * 3
TOKEN_DELAY_S = 0.25  # a whole answer takes about five seconds


@pytest.fixture(scope="module")
def world(embedder: Any, tmp_path_factory: pytest.TempPathFactory, serve: Any) -> Iterator[World]:
    root = tmp_path_factory.mktemp("queue")
    (root / "hr").mkdir()
    (root / "hr" / "travel.md").write_text(
        "# Travel\n\nEmployees fly economy class on flights under six hours. Business class needs approval.\n"
    )
    with FakeOllama(FakeOllamaScript(reply=REPLY, token_delay_s=TOKEN_DELAY_S)) as fake:
        built = build_world(root, embedder, fake, {"hr": root / "hr"}, ["hr"], generation={"server_concurrency": 1})
        serve(built)
        built.ids["token"] = built.services.web.tokens.create(SYSTEM, "alice", "queue test")[1]
        yield built
        built.services.close()


def _body(**extra: Any) -> dict[str, Any]:
    return {"model": "enclave", "messages": [{"role": "user", "content": QUESTION}], **extra}


class StreamingAsker(threading.Thread):
    """A client streaming an answer over raw HTTP; it hangs up after ``hang_up_after`` content chunks."""

    def __init__(self, world: World, hang_up_after: int | None = None) -> None:
        super().__init__(daemon=True)
        self.world, self.hang_up_after = world, hang_up_after
        self.writing = threading.Event()
        self.in_line = threading.Event()
        self.hang_up = threading.Event()
        self.hung_up_at = 0.0
        self.chunks: list[dict[str, Any]] = []
        self.content_at: list[float] = []

    def run(self) -> None:
        headers = {"authorization": f"Bearer {self.world.ids['token']}"}
        with httpx.Client(base_url=self.world.url, headers=headers, timeout=60) as client, \
                client.stream("POST", "/v1/chat/completions", json=_body(stream=True)) as response:
            for line in response.iter_lines():
                if not line.startswith("data: {"):
                    continue
                self.chunks.append(json.loads(line[6:]))
                if self.chunks[-1].get("choices", [{}])[0].get("delta", {}).get("content"):
                    self.content_at.append(time.monotonic())
                    self.writing.set()
                if "queue" in self.chunks[-1]:
                    self.in_line.set()
                enough = self.hang_up_after is not None and len(self.content_at) >= self.hang_up_after
                if enough or self.hang_up.is_set():
                    self.hung_up_at = time.monotonic()
                    return  # leaving the block closes the connection mid-answer


def test_a_streamed_answer_waiting_in_line_shows_its_place_to_openai_clients(world: World) -> None:
    first = StreamingAsker(world)
    first.start()
    assert first.writing.wait(20), "the first answer is being written"
    client = OpenAI(base_url=f"{world.url}/v1", api_key=world.ids["token"], max_retries=0)
    places, text, last = [], "", None
    for chunk in client.chat.completions.create(**_body(), stream=True):  # type: ignore[call-overload]
        extra = chunk.model_extra or {}
        if "queue" in extra:
            places.append(extra["queue"]["ahead"])
            assert "ahead of you" in extra["queue"]["message"] or extra["queue"]["ahead"] == 0
        text += chunk.choices[0].delta.content or ""
        last = chunk
    first.join(30)
    assert places[0] == 1 and places[-1] == 0 and places == sorted(places, reverse=True), places
    assert "economy" in text
    assert last is not None and (last.model_extra or {}).get("citations"), "the answer still carries its citations"


def test_a_client_that_hangs_up_frees_the_model_for_the_next_in_line(world: World) -> None:
    leaving = StreamingAsker(world, hang_up_after=2)
    leaving.start()
    assert leaving.writing.wait(20), "the first answer is being written"
    waiting = StreamingAsker(world)
    waiting.start()
    deadline = time.monotonic() + 20
    while not any("queue" in c for c in waiting.chunks) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert any("queue" in c for c in waiting.chunks), "the second caller is told its place"
    leaving.join(30)
    assert waiting.writing.wait(20), "the second answer is written"
    started_after = time.monotonic() - leaving.hung_up_at
    waiting.join(30)
    assert started_after < len(REPLY.split()) * TOKEN_DELAY_S, \
        f"the second answer began {started_after:.1f} s after the hang-up, not after the whole first answer"
    assert world.services.answers.queue.load() == (0, 0), "nothing holds the model or waits any more"


def test_retrieve_only_returns_the_passages_without_the_model(world: World) -> None:
    asked_before = len(world.fake.chat_requests())
    headers = {"authorization": f"Bearer {world.ids['token']}"}
    response = httpx.post(f"{world.url}/v1/chat/completions", json=_body(retrieve_only=True), headers=headers,
                          timeout=30)
    assert response.status_code == 200, response.text
    body = response.json()
    assert [s["file"] for s in body["sources"]] == ["travel.md"] and body["citations"] == []
    assert len(world.fake.chat_requests()) == asked_before, "the model was not asked"


def test_more_callers_in_line_than_worker_threads_by_default_do_not_slow_the_answer_being_written(
    world: World,
) -> None:
    world.fake.script.token_delay_s = 0.4
    crowd: list[StreamingAsker] = []
    try:
        first, second = StreamingAsker(world), StreamingAsker(world)
        first.start()
        assert first.writing.wait(20)
        second.start()
        assert second.in_line.wait(20)
        crowd += [StreamingAsker(world) for _ in range(60)]  # AnyIO lends 40 worker threads unless told otherwise
        for asker in crowd:
            asker.start()
        for asker in crowd:
            assert asker.in_line.wait(30), "every caller is told its place"
        assert second.writing.wait(30)
        second.join(30)
        span = second.content_at[-1] - second.content_at[0]
        model_time = (len(second.content_at) - 1) * 0.4
        assert span < model_time * 1.3, f"streamed in {span:.1f} s; the model wrote it in {model_time:.1f} s"
    finally:
        for asker in crowd:
            asker.hang_up.set()
        for asker in crowd:
            asker.join(30)
        world.fake.script.token_delay_s = TOKEN_DELAY_S
    deadline = time.monotonic() + 20
    while world.services.answers.queue.load() != (0, 0) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert world.services.answers.queue.load() == (0, 0), "every caller who hung up left the line"


def _alice_asks_and_waits_in_line(playwright: Any, chromium: str, world: World) -> tuple[Any, Any]:
    """Chromium signs alice in and asks; returns once the page shows her place in line."""
    browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
    page = browser.new_page()
    page.goto(world.url + "/")
    page.fill("#username", "alice")
    page.fill("#password", PASSWORDS["alice"])
    page.click("button[type=submit]")
    page.wait_for_selector("#question textarea", timeout=30_000)
    page.fill("#question textarea", QUESTION)
    page.click("#ask")
    page.wait_for_selector("#transcript .meta:has-text('waiting: 1 ahead of you')", timeout=30_000)
    return browser, page


@pytest.mark.slow
def test_the_web_chat_shows_the_place_in_line_then_the_answer(world: World) -> None:
    chromium = "/usr/bin/chromium"
    if not Path(chromium).is_file():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    holder = StreamingAsker(world)  # another user's answer holds the model
    holder.start()
    assert holder.writing.wait(20)
    with sync_playwright() as playwright:
        browser, page = _alice_asks_and_waits_in_line(playwright, chromium, world)
        page.wait_for_selector("#transcript .meta:has-text('Answered by')", timeout=60_000)
        assert "economy" in page.inner_text("#transcript .answer")
        browser.close()
    holder.join(30)


@pytest.mark.slow
def test_closing_the_chat_page_while_in_line_gives_the_place_up(world: World) -> None:
    chromium = "/usr/bin/chromium"
    if not Path(chromium).is_file():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    world.fake.script.token_delay_s = 0.5  # the answer holding the model takes about ten seconds
    holder = StreamingAsker(world)
    holder.start()
    try:
        assert holder.writing.wait(20)
        with sync_playwright() as playwright:
            browser, page = _alice_asks_and_waits_in_line(playwright, chromium, world)
            assert world.services.answers.queue.load() == (1, 1)
            page.close()
            browser.close()
        deadline = time.monotonic() + 6
        while world.services.answers.queue.load() != (1, 0) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert world.services.answers.queue.load() == (1, 0), "the closed page no longer waits for the model"
        assert holder.is_alive(), "the place was given up while the other answer was still being written"
    finally:
        holder.join(30)
        world.fake.script.token_delay_s = TOKEN_DELAY_S
