"""Ollama stopped, slow, missing the model or overloaded, as a user asking in the web app meets it.

tests/assistant/test_llm.py covers the Ollama client on its own (timeouts, 404, 5xx, failover).
Here the whole chat path runs (retrieval, answer, saved message) against the Ollama stand-in
behind a TCP proxy that can refuse connections or hold replies back. Each fault must end
within the timeouts from settings with a message that names the fix, keep the sources on
screen, and leave the service free: the next question, once Ollama is back, is answered.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest

from assistant.audit import SYSTEM, Principal
from assistant.chats import Saved
from assistant.services import Services, build_services
from assistant.settings import load_settings
from assistant.stored_answer import ShownMessage
from tests.fake_ollama import FakeOllama, FakeOllamaScript
from tests.faults.tcp_proxy import DelayingProxy

PASSWORD = "correct horse battery"
CONNECT_TIMEOUT_S = 1.0
READ_TIMEOUT_S = 2.0
QUESTION = "How many days of paid leave do employees accrue per month?"
REPLY = "Employees accrue 1.5 days of paid leave per month [1]."


@dataclass
class World:
    """Services whose only Ollama host is the proxy in front of the stand-in."""

    services: Services
    fake: FakeOllama
    proxy: DelayingProxy
    alice: Principal


@pytest.fixture(scope="module")
def world(embedder: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("ollama-faults")
    (root / "hr").mkdir()
    (root / "hr" / "leave.md").write_text("# Leave\n\nEmployees accrue 1.5 days of paid leave per month.\n")
    (root / "hr" / "parking.md").write_text("# Parking\n\nPermits are issued by the facilities desk.\n")
    with FakeOllama(FakeOllamaScript(reply=REPLY)) as fake:
        host, port = fake.url.removeprefix("http://").split(":")
        with DelayingProxy((host, int(port))) as proxy:
            settings = load_settings(data_dir=root / "data", generation={"backend": "ollama", "ollama": {
                "hosts": [proxy.url], "connect_timeout_s": CONNECT_TIMEOUT_S, "read_timeout_s": READ_TIMEOUT_S}})
            services = build_services(settings, embedder=embedder)
            services.ingest.ingest(root / "hr", "hr")
            web = services.web
            web.accounts.create_user(SYSTEM, "alice", PASSWORD)
            web.access.create_group(SYSTEM, "staff")
            web.access.set_member(SYSTEM, "alice", "staff")
            web.access.set_grant(SYSTEM, "staff", "hr")
            yield World(services, fake, proxy, web.accounts.sign_in("alice", PASSWORD)[0])
            services.close()


def ask(world: World) -> tuple[ShownMessage, float]:
    """One question through the chat service; the saved message as the page shows it, and the seconds taken."""
    started = time.monotonic()
    events = list(world.services.web.chats.ask(world.alice, None, QUESTION))
    assert isinstance(events[-1], Saved)
    return events[-1].message, time.monotonic() - started


def assert_failed_clearly(message: ShownMessage, *needles: str) -> None:
    assert message.error, message
    for needle in needles:
        assert needle in message.error, message.error
    assert "leave.md" in [s.file for s in message.sources]  # the user still sees where to look


def assert_answered(world: World) -> None:
    message, _ = ask(world)
    assert message.error is None and message.answer, message
    assert message.citations and message.citations[0].file == "leave.md"


def test_ollama_stopped_fails_within_the_connect_timeout_and_recovers(
    world: World, record_figure: Callable[[str, object], None]
) -> None:
    assert_answered(world)
    world.proxy.stop()
    try:
        message, waited = ask(world)
    finally:
        world.proxy.start()
    assert_failed_clearly(message, world.proxy.url, "ollama serve")
    assert waited < CONNECT_TIMEOUT_S + 4
    assert_answered(world)
    record_figure("Ollama stopped: seconds until the user saw the error", round(waited, 2))


def test_slow_link_is_cut_at_the_read_timeout_and_recovers(
    world: World, record_figure: Callable[[str, object], None]
) -> None:
    world.proxy.delay_s = 30.0
    try:
        message, waited = ask(world)
    finally:
        world.proxy.delay_s = 0.0
    assert_failed_clearly(message, "read_timeout_s")
    assert waited < READ_TIMEOUT_S + 4
    assert_answered(world)
    record_figure("Ollama slow (30 s proxy delay): seconds until the error", round(waited, 2))


def test_model_missing_404_says_to_pull_it_and_recovers(
    world: World, record_figure: Callable[[str, object], None]
) -> None:
    world.fake.script.models = ["llama3.2:1b"]
    try:
        message, waited = ask(world)
    finally:
        world.fake.script.models = ["gemma3:270m"]
    assert_failed_clearly(message, "ollama pull gemma3:270m")
    assert_answered(world)
    record_figure("Ollama 404 (model missing): seconds until the error", round(waited, 2))


def test_overloaded_503_names_the_status_and_recovers(
    world: World, record_figure: Callable[[str, object], None]
) -> None:
    world.fake.script.chat_status = 503
    try:
        message, waited = ask(world)
    finally:
        world.fake.script.chat_status = None
    assert_failed_clearly(message, "503", "server busy")
    assert_answered(world)
    record_figure("Ollama 503: seconds until the error", round(waited, 2))


def test_concurrent_questions_on_a_hung_link_each_wait_one_timeout_not_in_turn(
    world: World, record_figure: Callable[[str, object], None]
) -> None:
    world.proxy.delay_s = 30.0
    try:
        started = time.monotonic()
        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(lambda _: ask(world), range(4)))
        total = time.monotonic() - started
    finally:
        world.proxy.delay_s = 0.0
    for message, _ in results:
        assert_failed_clearly(message, "read_timeout_s")
    assert total < 2 * READ_TIMEOUT_S + 6  # four waits in turn would take 4 x the read timeout
    assert_answered(world)
    record_figure("4 concurrent questions on a hung link: seconds until all saw the error", round(total, 2))

