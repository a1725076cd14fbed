"""The OpenAI-compatible backend against a real server: llama-cpp-python's, serving the packaged Gemma 3 270M.

Two small protocol-level stand-ins cover what the real server cannot be made to do on demand:
a server that answers 503 and a server that accepts connections but never replies.
"""

from __future__ import annotations

import logging
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from assistant.audit import SYSTEM
from assistant.errors import BackendUnavailable, GenerationError, InvalidInput
from assistant.events import Done, Sources, Token
from assistant.llm.base import ChatMessage
from assistant.llm.embedded import packaged_gguf
from assistant.llm.factory import choose_chat_model
from assistant.llm.openai_compat import OpenAICompatChatModel
from assistant.settings import GenerationSettings, OllamaSettings, OpenAICompatSettings, load_settings
from tests.fake_ollama import closed_port_url
from tests.json_http import JsonHandler, serving

MODEL = "gemma-3-270m"
API_KEY = f"sk-test-{secrets.token_hex(12)}"
QUESTION: list[ChatMessage] = [{"role": "user", "content": "Which class may employees fly? Answer briefly."}]
DOCS = {
    "travel.md": "# Travel\n\nEconomy class is booked for flights under six hours. Business class "
    "needs approval from a vice president.\n",
    "benefits/dental.md": "# Dental\n\nThe dental plan covers two cleanings per year and orthodontics for "
    "children under 18.\n",
}
pytestmark = pytest.mark.slow


class LlamaServer:
    """``python -m llama_cpp.server`` on a free loopback port; ``url`` ends in /v1."""

    def __init__(self, gguf: Path, log: Path) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/v1"
        self.log = log
        command = [
            sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--model_alias", MODEL,
            "--chat_format", "gemma", "--n_ctx", "2048", "--n_threads", "1", "--api_key", API_KEY,
            "--host", "127.0.0.1", "--port", str(port),
        ]
        with log.open("wb") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        self._wait_until_ready(deadline=time.monotonic() + 120)

    def _wait_until_ready(self, deadline: float) -> None:
        headers = {"Authorization": f"Bearer {API_KEY}"}
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"llama_cpp.server exited with {self.process.returncode}:\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/models", headers=headers, timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass  # not listening yet
            time.sleep(0.2)
        self.stop()
        pytest.fail(f"llama_cpp.server was not ready in 120 s:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        """Stop the server process and wait for it."""
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=15)


@pytest.fixture(scope="session")
def gguf() -> Path:
    """The packaged GGUF, assembled once into a cache that outlives test runs (as in test_llm.py)."""
    return packaged_gguf(Path.home() / ".cache" / "enclave-test-models")


@pytest.fixture(scope="session")
def server(gguf: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    running = LlamaServer(gguf, tmp_path_factory.mktemp("llama-server") / "server.log")
    yield running
    running.stop()


def openai_values(*urls: str, **overrides: Any) -> dict[str, Any]:
    """Settings values for ``urls`` with the test server's model and key, and short connect timeouts."""
    values = {"base_urls": list(urls), "model": MODEL, "api_key": API_KEY, "connect_timeout_s": 1.0,
              "read_timeout_s": 60.0}
    return {**values, **overrides}


def openai_settings(*urls: str, **overrides: Any) -> OpenAICompatSettings:
    return OpenAICompatSettings(**openai_values(*urls, **overrides))


@pytest.fixture
def make_chat() -> Iterator[Any]:
    built: list[OpenAICompatChatModel] = []

    def make(*urls: str, **overrides: Any) -> OpenAICompatChatModel:
        built.append(OpenAICompatChatModel(openai_settings(*urls, **overrides)))
        return built[-1]

    yield make
    for model in built:
        model.close()


def ask(model: OpenAICompatChatModel, messages: list[ChatMessage] = QUESTION) -> str:
    return "".join(model.stream(messages, max_tokens=12, temperature=0.1))


def services_on(make_services: Any, share: Path, url: str, generation: dict[str, Any] | None = None) -> Any:
    """Services answering with the OpenAI-compatible server at ``url`` (or by ``generation``), with DOCS ingested."""
    for rel, text in DOCS.items():
        (share / rel).parent.mkdir(parents=True, exist_ok=True)
        (share / rel).write_text(text, encoding="utf-8")
    built = make_services(generation=generation or {"backend": "openai", "openai": openai_values(url, max_tokens=24)})
    built.ingest.ingest(share, collection="hr")
    return built


# Answers


def test_streamed_answer_through_the_answer_service_has_sources_first_and_valid_citations(
    make_services: Any, server: LlamaServer, tmp_path: Path
) -> None:
    services = services_on(make_services, tmp_path / "share", server.url)

    events = list(services.answers.ask("Which class are flights under six hours booked in?"))

    kinds = [type(event).__name__ for event in events if isinstance(event, (Sources, Token))]
    assert kinds[0] == "Sources" and kinds.count("Token") >= 2  # sources shown, then the answer streams in
    answer = events[-1].answer
    assert isinstance(events[-1], Done) and answer.error is None
    assert answer.backend == f"{MODEL} at {server.url} (OpenAI-compatible)"
    assert answer.retrieved[0].chunk.file == "travel.md"
    assert answer.text.strip()
    assert all(c.passage is answer.retrieved[c.n - 1] for c in answer.citations)
    if not answer.refused:
        assert answer.sentences  # every sentence was checked against the passages


def test_non_streamed_answer(make_chat: Any, server: LlamaServer) -> None:
    model = make_chat(server.url)

    text = model.complete(QUESTION, max_tokens=12, temperature=0.1)

    assert text.strip()


def test_the_key_is_sent_but_never_logged_or_shown(
    make_chat: Any, server: LlamaServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    model = make_chat(server.url)

    assert ask(model).strip()  # the server requires the key, so it was sent

    assert caplog.records  # the client logged its requests at DEBUG...
    assert API_KEY not in caplog.text  # ...without the key
    assert API_KEY not in model.name


def test_key_from_the_environment_is_read_and_kept_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENCLAVE_GENERATION__OPENAI__API_KEY", API_KEY)

    settings = load_settings()

    assert settings.generation.openai.api_key is not None
    assert settings.generation.openai.api_key.get_secret_value() == API_KEY
    assert API_KEY not in repr(settings) and API_KEY not in settings.model_dump_json()


# Clear errors


def test_wrong_model_name_names_what_the_server_serves_and_the_setting(make_chat: Any, server: LlamaServer) -> None:
    model = make_chat(server.url, model="llama-3-70b")

    with pytest.raises(BackendUnavailable) as raised:
        ask(model)

    message = str(raised.value)
    assert "'llama-3-70b'" in message and f"it serves: {MODEL}" in message
    assert "generation.openai.model" in message and server.url in message


def test_wrong_key_names_the_setting_and_never_shows_a_key(make_chat: Any, server: LlamaServer) -> None:
    wrong = f"sk-wrong-{secrets.token_hex(8)}"
    model = make_chat(server.url, api_key=wrong)

    with pytest.raises(GenerationError) as raised:
        ask(model)

    message = str(raised.value)
    assert "401" in message and "generation.openai.api_key" in message
    assert wrong not in message and API_KEY not in message


def test_prompt_beyond_the_servers_context_is_an_error_not_an_empty_answer(make_chat: Any, server: LlamaServer) -> None:
    model = make_chat(server.url)
    too_long: list[ChatMessage] = [{"role": "user", "content": "policy " * 3000}]

    with pytest.raises(GenerationError, match="ended the answer before finishing"):
        ask(model, too_long)
    with pytest.raises(GenerationError, match="status 400") as raised:
        model.complete(too_long, max_tokens=12, temperature=0.1)
    assert "context" in str(raised.value)


def test_server_stopped_gives_a_clear_message_and_the_sources_are_still_shown(
    make_services: Any, gguf: Path, tmp_path: Path
) -> None:
    own = LlamaServer(gguf, tmp_path / "server.log")
    try:
        services = services_on(make_services, tmp_path / "share", own.url)
        first = list(services.answers.ask("Which class are flights under six hours booked in?"))[-1].answer
        assert first.error is None
    finally:
        own.stop()

    events = list(services.answers.ask("Which class are flights under six hours booked in?"))

    answer = events[-1].answer
    assert any(isinstance(event, Sources) and event.passages for event in events)
    assert answer.retrieved[0].chunk.file == "travel.md"
    assert answer.error is not None
    assert own.url in answer.error and "not reachable" in answer.error
    assert "generation.openai.base_urls" in answer.error


def test_silent_server_fails_within_the_read_timeout(make_chat: Any) -> None:
    with socket.socket() as silent:  # accepts connections (the kernel's backlog) and never replies
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/v1"
        model = make_chat(url, read_timeout_s=0.5)

        started = time.monotonic()
        with pytest.raises(GenerationError, match=r"generation\.openai\.read_timeout_s") as raised:
            ask(model)

    assert time.monotonic() - started < 5.0
    assert url in str(raised.value)


# Several servers in turn


class _Overloaded(JsonHandler):
    """Answers every request with 503 and an OpenAI-style error body, as an overloaded vLLM does."""

    def do_GET(self) -> None:
        self._fail()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._fail()

    def _fail(self) -> None:
        self.send_json(503, {"error": {"message": "model overloaded, retry later", "type": "server_error"}})


@pytest.fixture
def overloaded() -> Iterator[str]:
    with serving(_Overloaded) as url:
        yield f"{url}/v1"


def test_a_dead_server_is_skipped_and_answers_come_from_the_live_one(make_chat: Any, server: LlamaServer) -> None:
    model = make_chat(closed_port_url() + "/v1", server.url)

    answers = [ask(model) for _ in range(3)]

    assert all(answer.strip() for answer in answers)


def test_an_overloaded_server_sends_the_request_to_the_next(
    make_chat: Any, server: LlamaServer, overloaded: str
) -> None:
    assert ask(make_chat(overloaded, server.url)).strip()

    with pytest.raises(GenerationError) as raised:
        ask(make_chat(overloaded))
    assert "503" in str(raised.value) and "model overloaded" in str(raised.value)


def test_all_servers_down_lists_each_and_how_to_fix_it(make_chat: Any) -> None:
    urls = [closed_port_url() + "/v1", closed_port_url() + "/v1"]

    with pytest.raises(BackendUnavailable) as raised:
        ask(make_chat(*urls))

    message = str(raised.value)
    assert message.startswith("no OpenAI-compatible server could answer")
    assert all(url in message for url in urls) and "generation.openai.base_urls" in message


# Choosing the backend


def test_backend_openai_is_built_when_a_server_answers(server: LlamaServer, tmp_path: Path) -> None:
    settings = GenerationSettings(backend="openai", openai=openai_settings(server.url))  # type: ignore[call-arg]

    model = choose_chat_model(settings, tmp_path).model

    assert isinstance(model, OpenAICompatChatModel)
    model.close()


def test_backend_openai_refuses_to_start_when_no_server_answers(tmp_path: Path) -> None:
    settings = GenerationSettings(backend="openai", openai=openai_settings(closed_port_url() + "/v1"))  # type: ignore[call-arg]

    with pytest.raises(BackendUnavailable, match="not reachable"):
        choose_chat_model(settings, tmp_path)


def test_auto_uses_the_openai_servers_when_ollama_is_down(server: LlamaServer, tmp_path: Path) -> None:
    ollama = OllamaSettings(hosts=[closed_port_url()], connect_timeout_s=1.0)  # type: ignore[call-arg]
    settings = GenerationSettings(backend="auto", ollama=ollama, openai=openai_settings(server.url))  # type: ignore[call-arg]

    model = choose_chat_model(settings, tmp_path).model

    assert isinstance(model, OpenAICompatChatModel)
    assert list(tmp_path.iterdir()) == []  # the embedded model was not touched
    model.close()


# The admin settings


def test_an_admin_switches_to_the_openai_server_and_the_next_question_uses_it(
    make_services: Any, server: LlamaServer, tmp_path: Path
) -> None:
    installed = {"backend": "auto", "openai": {"api_key": API_KEY, "max_tokens": 24}}  # the key in the settings file
    services = services_on(make_services, tmp_path / "share", server.url, installed)
    runtime = services.web.runtime

    with pytest.raises(InvalidInput, match="needs OpenAI-compatible model"):
        runtime.change(SYSTEM, "openai", 3, {"openai": {"base_urls": server.url, "model": ""}})
    runtime.change(SYSTEM, "openai", 3, {"openai": {"base_urls": server.url, "model": MODEL}})
    answer = list(services.answers.ask("Which class are flights under six hours booked in?"))[-1].answer

    assert answer.error is None and answer.backend.endswith("(OpenAI-compatible)")
    assert runtime.current().values["openai"] == {"base_urls": server.url, "model": MODEL}
    assert runtime.model_label() == answer.backend
