"""Chat backends: Ollama over real HTTP against a fake server, and the real Gemma 3 270M in llama.cpp."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from assistant.default_model import default_name
from assistant.errors import BackendUnavailable, ConfigError, GenerationError
from assistant.llm.base import ChatMessage, ChatModel
from assistant.llm.embedded import EmbeddedChatModel, packaged_gguf
from assistant.llm.factory import choose_chat_model
from assistant.llm.ollama import OllamaChatModel
from assistant.settings import EmbeddedModelSettings, GenerationSettings, OllamaSettings
from tests.fake_ollama import FakeOllama, FakeOllamaScript, closed_port_url

MODEL = "gemma3:270m"
MakeOllama = Callable[..., OllamaChatModel]
QUESTION: list[ChatMessage] = [
    {"role": "system", "content": "Answer only from the passages."},
    {"role": "user", "content": "Which class may employees fly?"},
]


def ollama_settings(*hosts: str, **overrides: object) -> OllamaSettings:
    """Settings for the given hosts with timeouts short enough for tests."""
    values: dict[str, object] = {"hosts": list(hosts), "model": MODEL, "connect_timeout_s": 1.0, "read_timeout_s": 5.0}
    return OllamaSettings(**{**values, **overrides})  # type: ignore[arg-type]


def generation_settings(backend: str, ollama: OllamaSettings | None = None) -> GenerationSettings:
    """Generation settings for ``backend``, with Ollama's settings if given."""
    return GenerationSettings(backend=backend, ollama=ollama or OllamaSettings())  # type: ignore[call-arg,arg-type]


def ask(model: ChatModel, max_tokens: int = 64, temperature: float = 0.1) -> str:
    """The whole answer to ``QUESTION``."""
    return "".join(model.stream(QUESTION, max_tokens=max_tokens, temperature=temperature))


@pytest.fixture
def server() -> Iterator[FakeOllama]:
    with FakeOllama() as running:
        yield running


@pytest.fixture
def make_ollama() -> Iterator[MakeOllama]:
    """Build Ollama chat models for the given hosts; their connections are closed afterwards."""
    built: list[OllamaChatModel] = []

    def make(*hosts: str, **overrides: object) -> OllamaChatModel:
        built.append(OllamaChatModel(ollama_settings(*hosts, **overrides)))
        return built[-1]

    yield make
    for model in built:
        model.close()


@pytest.fixture
def chat(server: FakeOllama, make_ollama: MakeOllama) -> OllamaChatModel:
    return make_ollama(server.url)


# Ollama over HTTP


def test_tokens_arrive_in_order_and_join_to_the_reply(server: FakeOllama, chat: OllamaChatModel) -> None:
    pieces = list(chat.stream(QUESTION, max_tokens=64, temperature=0.1))

    assert pieces == server.script.pieces()
    assert "".join(pieces) == server.script.reply


def test_context_size_temperature_and_answer_length_are_sent(server: FakeOllama, make_ollama: MakeOllama) -> None:
    model = make_ollama(server.url, num_ctx=8192)

    ask(model, max_tokens=17, temperature=0.3)

    (request,) = server.chat_requests()
    assert request.body["options"] == {"num_ctx": 8192, "temperature": 0.3, "num_predict": 17}
    assert request.body["model"] == MODEL
    assert request.body["stream"] is True
    assert request.body["messages"] == QUESTION


def test_server_down_says_how_to_start_it_within_the_connect_timeout(make_ollama: MakeOllama) -> None:
    url = closed_port_url()
    model = make_ollama(url)

    started = time.monotonic()
    with pytest.raises(BackendUnavailable) as raised:
        ask(model)

    assert time.monotonic() - started < 2.0
    assert url in str(raised.value)
    assert "ollama serve" in str(raised.value)
    assert "generation.ollama.hosts" in str(raised.value)


def test_model_not_pulled_says_to_pull_it(make_ollama: MakeOllama) -> None:
    with FakeOllama(FakeOllamaScript(models=["llama3.2:1b"])) as other:
        model = make_ollama(other.url)
        with pytest.raises(BackendUnavailable, match=f"ollama pull {MODEL}"):
            ask(model)
        (check,) = model.check()

    assert not check.ok
    assert f"ollama pull {MODEL}" in check.problem


def test_slow_server_fails_within_the_read_timeout(server: FakeOllama, make_ollama: MakeOllama) -> None:
    server.script.initial_delay_s = 10.0
    model = make_ollama(server.url, read_timeout_s=0.5)

    started = time.monotonic()
    with pytest.raises(GenerationError, match="read_timeout_s") as raised:
        ask(model)

    assert time.monotonic() - started < 3.0
    assert not isinstance(raised.value, BackendUnavailable)


def test_stall_after_some_tokens_still_raises_after_the_partial_answer(
    server: FakeOllama, make_ollama: MakeOllama
) -> None:
    server.script.token_delay_s = 10.0
    model = make_ollama(server.url, read_timeout_s=0.5)
    received: list[str] = []

    with pytest.raises(GenerationError, match="read_timeout_s"):
        for piece in model.stream(QUESTION, max_tokens=64, temperature=0.1):
            received.append(piece)

    assert received == server.script.pieces()[:1]


def test_error_line_mid_stream_raises_after_the_partial_answer(server: FakeOllama, chat: OllamaChatModel) -> None:
    server.script.error_after_tokens = 3
    received: list[str] = []

    with pytest.raises(GenerationError, match="unexpected EOF"):
        for piece in chat.stream(QUESTION, max_tokens=64, temperature=0.1):
            received.append(piece)

    assert received == server.script.pieces()[:3]


@pytest.mark.parametrize("status", [500, 503])
def test_server_error_names_status_and_message(server: FakeOllama, chat: OllamaChatModel, status: int) -> None:
    server.script.chat_status = status

    with pytest.raises(GenerationError) as raised:
        ask(chat)

    assert not isinstance(raised.value, BackendUnavailable)
    assert str(status) in str(raised.value)
    assert "server busy" in str(raised.value)


def test_two_hosts_one_down_every_answer_comes_from_the_live_one(server: FakeOllama, make_ollama: MakeOllama) -> None:
    model = make_ollama(closed_port_url(), server.url)

    answers = [ask(model) for _ in range(4)]

    assert answers == [server.script.reply] * 4
    assert len(server.chat_requests()) == 4


def test_two_live_hosts_take_turns(make_ollama: MakeOllama) -> None:
    with FakeOllama() as first, FakeOllama() as second:
        model = make_ollama(first.url, second.url)
        for _ in range(4):
            ask(model)

        assert (len(first.chat_requests()), len(second.chat_requests())) == (2, 2)


def test_all_hosts_down_lists_each_host(make_ollama: MakeOllama) -> None:
    urls = [closed_port_url(), closed_port_url()]
    model = make_ollama(*urls)

    with pytest.raises(BackendUnavailable) as raised:
        ask(model)

    assert all(url in str(raised.value) for url in urls)


def test_check_accepts_a_model_named_without_its_tag(make_ollama: MakeOllama) -> None:
    with FakeOllama(FakeOllamaScript(models=["gemma3:latest"])) as other:
        (check,) = make_ollama(other.url, model="gemma3").check()

    assert check.ok, check.problem


def test_auto_picks_ollama_when_the_host_has_the_model(server: FakeOllama, tmp_path: Path) -> None:
    settings = generation_settings("auto", ollama_settings(server.url))

    model = choose_chat_model(settings, tmp_path).model

    assert isinstance(model, OllamaChatModel)
    assert model.name == f"Ollama {MODEL} at {server.url}"
    assert ask(model) == server.script.reply


def test_auto_picks_the_embedded_model_when_ollama_is_down(tmp_path: Path) -> None:
    settings = generation_settings("auto", ollama_settings(closed_port_url()))

    model = choose_chat_model(settings, tmp_path).model

    assert model.name == f"Embedded {default_name()} (llama.cpp)"
    assert list(tmp_path.iterdir()) == []  # nothing is assembled or loaded before first use


def test_backend_ollama_refuses_to_start_when_no_host_answers(tmp_path: Path) -> None:
    settings = generation_settings("ollama", ollama_settings(closed_port_url()))

    with pytest.raises(BackendUnavailable, match="ollama serve"):
        choose_chat_model(settings, tmp_path)


def test_backend_openai_without_servers_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"generation\.openai\.base_urls"):
        choose_chat_model(generation_settings("openai"), tmp_path)


def test_backend_openai_without_a_model_names_the_setting(tmp_path: Path) -> None:
    settings = GenerationSettings(backend="openai", openai={"base_urls": [closed_port_url() + "/v1"]})  # type: ignore[arg-type,call-arg]

    with pytest.raises(ConfigError, match=r"generation\.openai\.model"):
        choose_chat_model(settings, tmp_path)


# Several Ollama hosts in turn


def test_a_host_that_stops_is_skipped_and_answers_come_from_the_live_one(make_ollama: MakeOllama) -> None:
    with FakeOllama() as live:
        with FakeOllama() as stopping:
            model = make_ollama(stopping.url, live.url)
            assert [ask(model) for _ in range(2)] == [live.script.reply] * 2
            assert len(stopping.chat_requests()) == 1
        answers = [ask(model) for _ in range(4)]

        assert answers == [live.script.reply] * 4
        assert len(live.chat_requests()) == 5


def test_a_dead_host_is_left_alone_for_a_while_then_tried_again(make_ollama: MakeOllama) -> None:
    with FakeOllama() as live:
        with FakeOllama() as flaky:
            url = flaky.url
        model = make_ollama(url, live.url, down_host_retry_s=2.0)
        ask(model)  # finds the host down
        with FakeOllama(port=int(url.rsplit(":", 1)[1])) as back:
            for _ in range(3):
                ask(model)
            assert back.chat_requests() == []  # still remembered as down, though it is back
            time.sleep(2.1)
            for _ in range(4):
                ask(model)
            assert len(back.chat_requests()) == 2  # back in turn


def test_all_hosts_stopped_says_so_for_each_and_how_to_fix_it(make_ollama: MakeOllama) -> None:
    with FakeOllama() as first, FakeOllama() as second:
        model = make_ollama(first.url, second.url)
        ask(model)
        urls = [first.url, second.url]

    with pytest.raises(BackendUnavailable) as raised:
        ask(model)

    message = str(raised.value)
    assert message.startswith("no Ollama host could answer")
    assert all(url in message for url in urls)
    assert "ollama serve" in message and "generation.ollama.hosts" in message


# The embedded model: the packaged default model, real, in llama.cpp


@pytest.fixture(scope="module")
def models_dir() -> Path:
    """A models folder that outlives test runs, so the 250 MB GGUF is assembled only once."""
    return Path.home() / ".cache" / "enclave-test-models"


@pytest.fixture(scope="module")
def gemma(models_dir: Path) -> Iterator[EmbeddedChatModel]:
    model = EmbeddedChatModel(EmbeddedModelSettings(n_ctx=2048), models_dir)  # type: ignore[call-arg]
    yield model
    model.close()


def test_embedded_answers_a_short_question(gemma: EmbeddedChatModel) -> None:
    answer = ask(gemma, max_tokens=16)

    assert answer.strip()
    assert gemma.name == f"Embedded {default_name()} (llama.cpp)"


def test_embedded_counts_tokens_exactly(gemma: EmbeddedChatModel) -> None:
    assert 0 < gemma.count_tokens("hello") <= gemma.count_tokens("hello hello hello") < 10


def test_embedded_serves_two_callers_one_at_a_time(gemma: EmbeddedChatModel) -> None:
    answers: list[str] = []
    errors: list[BaseException] = []

    def answer() -> None:
        try:
            answers.append(ask(gemma, max_tokens=8))
        except GenerationError as error:
            errors.append(error)

    threads = [threading.Thread(target=answer) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert errors == []
    assert len(answers) == 2 and all(text.strip() for text in answers)


def test_embedded_prompt_beyond_the_context_names_the_setting(gemma: EmbeddedChatModel) -> None:
    too_long: list[ChatMessage] = [{"role": "user", "content": "policy " * 3000}]

    with pytest.raises(GenerationError, match=r"generation\.embedded\.n_ctx"):
        list(gemma.stream(too_long, max_tokens=8, temperature=0.1))


def test_embedded_missing_gguf_path_is_a_clear_config_error(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.gguf"

    with pytest.raises(ConfigError, match=r"generation\.embedded\.gguf_path") as raised:
        EmbeddedChatModel(EmbeddedModelSettings(gguf_path=str(missing)), tmp_path)  # type: ignore[call-arg]

    assert str(missing) in str(raised.value)


def test_embedded_unreadable_gguf_is_a_clear_generation_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\x00" * 64)
    model = EmbeddedChatModel(EmbeddedModelSettings(gguf_path=str(broken)), tmp_path)  # type: ignore[call-arg]

    with pytest.raises(GenerationError, match="could not load") as raised:
        ask(model, max_tokens=4)

    assert str(broken) in str(raised.value)
    assert model.name == "Embedded broken.gguf (llama.cpp)"


def test_packaged_model_is_assembled_once_and_repaired_when_truncated(tmp_path: Path) -> None:
    first = packaged_gguf(tmp_path)
    size, stamp = first.stat().st_size, first.stat().st_mtime_ns

    again = packaged_gguf(tmp_path)
    assert again == first and again.stat().st_mtime_ns == stamp

    with first.open("r+b") as file:
        file.truncate(1000)
    repaired = packaged_gguf(tmp_path)
    assert repaired.stat().st_size == size
    assert [path.name for path in tmp_path.iterdir()] == [first.name]  # no partial files left
