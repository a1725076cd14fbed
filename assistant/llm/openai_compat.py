"""Answers from OpenAI-compatible model servers (vLLM, llama.cpp's server, TGI), via the official ``openai`` client.

The client is kept on the configured servers only: every client gets an explicit
``base_url`` and ``api_key`` (so ``OPENAI_API_KEY``/``OPENAI_BASE_URL`` in the environment are
never used), a bounded ``max_retries``, and no organisation or project headers. The client
has no telemetry.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, cast

from assistant.errors import BackendUnavailable, ConfigError, GenerationError
from assistant.llm.base import BackendSpec, ChatMessage, FormField
from assistant.llm.rotation import HostCheck, HostRotation, stream_in_turn, unanswered
from assistant.settings import OpenAICompatSettings

if TYPE_CHECKING:
    import openai

CHARS_PER_TOKEN = 3.5
"""Rough characters per token for the budget; the OpenAI API offers no tokenizer."""

NO_KEY = "EMPTY"
"""Sent when no key is configured (vLLM's documented placeholder); servers without a key ignore it."""

START_HINT = "start it (e.g. `vllm serve MODEL` or `python -m llama_cpp.server --model FILE`)"


class ServerBusy(GenerationError):
    """A server answered 429 or 5xx: another server may take the request."""


def _import_openai() -> Any:
    """Import the ``openai`` client, or say how to install it."""
    try:
        import openai
    except ImportError as error:
        raise ConfigError(
            "the OpenAI-compatible backend needs the `openai` package: pip install 'openai>=3.54,<4'"
        ) from error
    return openai


def _unreachable(url: str) -> BackendUnavailable:
    return BackendUnavailable(
        f"the OpenAI-compatible server at {url} is not reachable: {START_HINT}, or fix generation.openai.base_urls"
    )


def _model_unknown(url: str, model: str, served: list[str] | None = None) -> BackendUnavailable:
    listed = f" (it serves: {', '.join(served)})" if served else ""
    return BackendUnavailable(
        f"the OpenAI-compatible server at {url} does not serve model '{model}'{listed}: set "
        "generation.openai.model to a model it serves, or check that the base URL ends in its API path (/v1)"
    )


def _status_detail(error: Any) -> str:
    """The server's own message from an error body, without the request or any header."""
    body = error.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        message = inner.get("message") or inner.get("detail") if isinstance(inner, dict) else inner
        if message:
            return str(message)
    return str(error.message)


def _translate(error: Exception, url: str, settings: OpenAICompatSettings) -> GenerationError:
    """Turn a client or transport error into Enclave's error that names the fix."""
    openai = _import_openai()
    import httpx2

    if isinstance(error, (openai.APITimeoutError, httpx2.TimeoutException)):
        cause = error if isinstance(error, httpx2.TimeoutException) else error.__cause__
        if isinstance(cause, (httpx2.ConnectTimeout, httpx2.PoolTimeout)):
            return _unreachable(url)
        return GenerationError(
            f"the OpenAI-compatible server at {url} sent nothing for {settings.read_timeout_s:g} s: it is overloaded "
            "or the model too slow; raise generation.openai.read_timeout_s or add servers"
        )
    if isinstance(error, (openai.APIConnectionError, httpx2.ConnectError)):
        return _unreachable(url)
    if isinstance(error, openai.APIStatusError):
        return _translate_status(error, url, settings.model)
    if isinstance(error, openai.APIError):  # an error event in the middle of a stream
        return GenerationError(f"the OpenAI-compatible server at {url} stopped the answer with an error: {error}")
    if isinstance(error, httpx2.HTTPError):
        return GenerationError(f"the connection to {url} failed mid-answer: {error or type(error).__name__}")
    return GenerationError(
        f"the server at {url} sent a reply Enclave cannot read ({error}): is it an OpenAI-compatible API?"
    )


def _translate_status(error: Any, url: str, model: str) -> GenerationError:
    """Translate an HTTP error status into a message naming the fix."""
    status: int = error.status_code
    detail = _status_detail(error)
    if status == 404:
        return _model_unknown(url, model)
    if status in (401, 403):
        return GenerationError(
            f"the OpenAI-compatible server at {url} refused the API key (status {status}): set "
            "generation.openai.api_key (or ENCLAVE_GENERATION__OPENAI__API_KEY) to a key it accepts"
        )
    if status == 429 or status >= 500:
        return ServerBusy(f"the OpenAI-compatible server at {url} failed with status {status}: {detail}")
    return GenerationError(f"the OpenAI-compatible server at {url} refused the request with status {status}: {detail}")


def _cut_short(url: str) -> GenerationError:
    # llama.cpp's server, for one, ends the stream silently when the prompt exceeds its context.
    return GenerationError(
        f"the OpenAI-compatible server at {url} ended the answer before finishing it: see the server's log; "
        "if the prompt exceeds the model's context, serve it with a longer one or lower retrieval.top_k"
    )


def _worth_another_server(error: GenerationError) -> bool:
    """Whether a failure before any text was shown should send the request to the next server."""
    return isinstance(error, (BackendUnavailable, ServerBusy))


class OpenAICompatChatModel:
    """A chat model served by OpenAI-compatible servers, used in turn, skipping ones that are down."""

    def __init__(self, settings: OpenAICompatSettings) -> None:
        if not settings.base_urls:
            raise ConfigError("generation.openai.base_urls is empty: list at least one server, e.g. http://gpu1:8000/v1")
        if not settings.model.strip():
            raise ConfigError("generation.openai.model is empty: set it to the model name the servers list")
        bad = [url for url in settings.base_urls if not url.startswith(("http://", "https://"))]
        if bad:
            raise ConfigError(f"generation.openai.base_urls needs http(s) URLs such as http://gpu1:8000/v1, not {bad}")
        self._settings = settings
        self._rotation = HostRotation(settings.base_urls, settings.down_host_retry_s)
        self._lock = threading.Lock()
        self._clients: dict[str, openai.OpenAI] = {}
        self._model_confirmed: set[str] = set()

    @property
    def name(self) -> str:
        """The model and the servers it is served from (never the key)."""
        return f"{self._settings.model} at {', '.join(self._settings.base_urls)} (OpenAI-compatible)"

    def count_tokens(self, text: str) -> int:
        """Estimate tokens from characters; the API offers no tokenizer."""
        return math.ceil(len(text) / CHARS_PER_TOKEN)

    def stream(self, messages: list[ChatMessage], *, max_tokens: int, temperature: float) -> Iterator[str]:
        """Yield the answer from the next live server; fail over only while nothing has been yielded."""
        yield from stream_in_turn(
            self._rotation,
            lambda url: self._stream_from(url, messages, max_tokens, temperature),
            _worth_another_server,
            "OpenAI-compatible server",
        )

    def complete(self, messages: list[ChatMessage], *, max_tokens: int, temperature: float) -> str:
        """The whole answer in one non-streamed request, from the next live server."""
        return "".join(
            stream_in_turn(
                self._rotation,
                lambda url: iter([self._complete_from(url, messages, max_tokens, temperature)]),
                _worth_another_server,
                "OpenAI-compatible server",
            )
        )

    def check(self) -> list[HostCheck]:
        """Ask every server, within the timeouts, whether it answers and serves the model."""
        results: list[HostCheck] = []
        for url in self._settings.base_urls:
            try:
                self._confirm_model(url)
            except GenerationError as error:
                self._rotation.cool_down(url)
                results.append(HostCheck(url, False, str(error)))
            else:
                self._rotation.mark_up(url)
                results.append(HostCheck(url, True))
        return results

    def load(self) -> None:
        """Nothing to load: the servers hold the model."""

    def close(self) -> None:
        """Close the HTTP connections to every server."""
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()

    def _stream_from(self, url: str, messages: list[ChatMessage], max_tokens: int, temperature: float) -> Iterator[str]:
        """Stream one server's answer, translating its errors; closing the stream tells the server to stop."""
        self._confirm_model(url)
        try:
            with self._client(url).chat.completions.create(
                model=self._settings.model, messages=cast(Any, messages),  # plain role/content dicts
                max_tokens=max_tokens, temperature=temperature, stream=True,
            ) as chunks:
                finished = False
                for chunk in chunks:
                    choice = chunk.choices[0] if chunk.choices else None
                    finished = finished or bool(choice and choice.finish_reason)
                    if choice and choice.delta.content:
                        yield choice.delta.content
        except _expected_errors() as error:
            self._start_afresh(url)
            raise _translate(error, url, self._settings) from error
        if not finished:
            self._start_afresh(url)
            raise _cut_short(url)

    def _complete_from(self, url: str, messages: list[ChatMessage], max_tokens: int, temperature: float) -> str:
        """One server's whole answer, translating its errors."""
        self._confirm_model(url)
        try:
            reply = self._client(url).chat.completions.create(
                model=self._settings.model, messages=cast(Any, messages),  # plain role/content dicts
                max_tokens=max_tokens, temperature=temperature, stream=False,
            )
        except _expected_errors() as error:
            self._start_afresh(url)
            raise _translate(error, url, self._settings) from error
        return (reply.choices[0].message.content or "") if reply.choices else ""

    def _confirm_model(self, url: str) -> None:
        """Check once per server (again after a failure) that it lists the model.

        Single-model servers such as llama.cpp's answer any model name with their own model,
        so without this check a wrong ``generation.openai.model`` would go unnoticed.
        """
        if url in self._model_confirmed:
            return
        openai = _import_openai()
        try:
            served = [model.id for model in self._client(url).models.list()]
        except openai.NotFoundError:
            served = None  # the server has no model list (some gateways); the chat request will say
        except _expected_errors() as error:
            raise _translate(error, url, self._settings) from error
        if served is not None and self._settings.model not in served:
            raise _model_unknown(url, self._settings.model, served)
        with self._lock:
            self._model_confirmed.add(url)

    def _start_afresh(self, url: str) -> None:
        """After a failure, check the model again and open new connections next time.

        The server may have restarted with another model, and a server that broke off an answer
        may reset the kept-alive connection when it is next used. The old client is not closed:
        other answers may still be streaming through it; it closes when they let it go.
        """
        with self._lock:
            self._model_confirmed.discard(url)
            self._clients.pop(url, None)

    def _client(self, url: str) -> openai.OpenAI:
        """The reusable client for ``url``, built on first use."""
        openai = _import_openai()
        with self._lock:
            if url not in self._clients:
                settings = self._settings
                key = settings.api_key.get_secret_value() if settings.api_key else NO_KEY
                self._clients[url] = openai.OpenAI(
                    base_url=url,
                    api_key=key,
                    timeout=openai.Timeout(
                        connect=settings.connect_timeout_s, read=settings.read_timeout_s,
                        write=settings.read_timeout_s, pool=settings.connect_timeout_s,
                    ),
                    max_retries=settings.max_retries,
                    default_headers={"OpenAI-Organization": openai.Omit(), "OpenAI-Project": openai.Omit()},
                )
            return self._clients[url]


def _expected_errors() -> tuple[type[Exception], ...]:
    """What the client and its transport raise for a server that is down, slow, refusing or garbled."""
    openai = _import_openai()
    import httpx2

    return (openai.APIError, httpx2.HTTPError, ValueError)  # ValueError: a line that is not the API's JSON


SPEC = BackendSpec(
    name="openai",
    label="OpenAI-compatible server",
    settings=OpenAICompatSettings,
    build=lambda settings, _models_dir: OpenAICompatChatModel(settings),
    describe=lambda settings: f"{settings.model} at {', '.join(settings.base_urls)} (OpenAI-compatible)",
    fields=(FormField("base_urls", "OpenAI-compatible server (vLLM, llama.cpp, TGI)", "http://10.0.0.7:8000/v1",
                      url=True, required=True),
            FormField("model", "OpenAI-compatible model", required=True)),
    probe=lambda model: unanswered(model.check()),
    auto=lambda settings: bool(settings.base_urls),  # tried only where servers are configured
)
