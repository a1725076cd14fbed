"""Answers from one or more Ollama servers, reached with the official ``ollama`` client."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Generator, Iterator
from typing import TYPE_CHECKING, Any

from assistant.errors import BackendUnavailable, ConfigError, GenerationError, InvalidInput
from assistant.llm.base import BackendSpec, ChatMessage, FormField
from assistant.llm.rotation import HostCheck, HostRotation, stream_in_turn, unanswered
from assistant.settings import OllamaSettings

if TYPE_CHECKING:
    import ollama

CHARS_PER_TOKEN = 3.5
"""Rough characters per token for the budget; Ollama's API offers no tokenizer."""


def _import_ollama() -> Any:
    """Import the ``ollama`` client (which brings httpx), or say how to install it."""
    try:
        import ollama
    except ImportError as error:
        raise ConfigError("the Ollama backend needs the `ollama` package: pip install 'ollama>=0.6'") from error
    return ollama


def _full_name(model: str) -> str:
    """The name Ollama lists for ``model``: a missing tag means ``latest``."""
    return model if ":" in model.rsplit("/", 1)[-1] else f"{model}:latest"


def _unreachable(host: str) -> BackendUnavailable:
    return BackendUnavailable(
        f"Ollama is not reachable at {host}: start it with `ollama serve` or set generation.ollama.hosts"
    )


def _model_missing(host: str, model: str) -> BackendUnavailable:
    return BackendUnavailable(
        f"Ollama at {host} does not have model {model}: run `ollama pull {model}` on that server "
        "or set generation.ollama.model to a model it has"
    )


def _translate(error: Exception, host: str, settings: OllamaSettings) -> GenerationError:
    """Turn a client or transport error into Enclave's error that names the fix."""
    ollama = _import_ollama()
    import httpx

    if isinstance(error, (ConnectionError, httpx.ConnectError, httpx.ConnectTimeout)):
        return _unreachable(host)
    if isinstance(error, httpx.ReadTimeout):
        return GenerationError(
            f"Ollama at {host} sent nothing for {settings.read_timeout_s:g} s: the server is overloaded or the "
            "model too slow; raise generation.ollama.read_timeout_s or use a smaller model"
        )
    if isinstance(error, httpx.TimeoutException):
        return GenerationError(f"Ollama at {host} timed out ({type(error).__name__}): check the network to it")
    if isinstance(error, ollama.ResponseError):
        return _translate_response_error(error, host, settings.model)
    if isinstance(error, httpx.HTTPError):
        return GenerationError(f"the connection to Ollama at {host} failed mid-answer: {error or type(error).__name__}")
    return GenerationError(f"Ollama at {host} sent a reply Enclave cannot read ({error}): is it an Ollama server?")


def _translate_response_error(error: Any, host: str, model: str) -> GenerationError:
    """Translate an ``ollama.ResponseError`` (an HTTP status, or an error line mid-stream)."""
    status: int = error.status_code
    if status == 404:
        return _model_missing(host, model)
    if status == -1:
        return GenerationError(f"Ollama at {host} stopped the answer with an error: {error.error}")
    if status >= 500:
        return OllamaServerError(f"Ollama at {host} failed with status {status}: {error.error}")
    return GenerationError(f"Ollama at {host} refused the request with status {status}: {error.error}")


class OllamaServerError(GenerationError):
    """An Ollama host answered with a 5xx status (busy, out of memory, crashed runner)."""


def _worth_another_host(error: GenerationError) -> bool:
    """Whether a failure before any text was shown should send the request to the next host."""
    return isinstance(error, (BackendUnavailable, OllamaServerError))


class OllamaChatModel:
    """A chat model served by Ollama; several hosts are used in turn, skipping ones that are down."""

    def __init__(self, settings: OllamaSettings, *, clock: Callable[[], float] = time.monotonic) -> None:
        if not settings.hosts:
            raise ConfigError("generation.ollama.hosts is empty: list at least one Ollama server URL")
        self._settings = settings
        self._rotation = HostRotation(settings.hosts, settings.down_host_retry_s, clock)
        self._lock = threading.Lock()
        self._clients: dict[str, ollama.Client] = {}

    @property
    def name(self) -> str:
        """The model and the hosts it is served from."""
        return f"Ollama {self._settings.model} at {', '.join(self._settings.hosts)}"

    def count_tokens(self, text: str) -> int:
        """Estimate tokens from characters; Ollama offers no tokenizer endpoint."""
        return math.ceil(len(text) / CHARS_PER_TOKEN)

    def stream(self, messages: list[ChatMessage], *, max_tokens: int, temperature: float) -> Iterator[str]:
        """Yield the answer from the next live host; fail over only while nothing has been yielded."""
        options = {"num_ctx": self._settings.num_ctx, "temperature": temperature, "num_predict": max_tokens}
        yield from stream_in_turn(
            self._rotation, lambda host: self._stream_from(host, messages, options), _worth_another_host, "Ollama host"
        )

    def check(self) -> list[HostCheck]:
        """Ask every host, within the connect timeout, whether it answers and has the model."""
        results = [self._check_host(host) for host in self._settings.hosts]
        for result in results:
            if not result.ok:
                self._rotation.cool_down(result.host)
        return results

    def load(self) -> None:
        """Nothing to load: the server holds the model."""

    def close(self) -> None:
        """Close the HTTP connections to every host."""
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()

    def _stream_from(self, host: str, messages: list[ChatMessage], options: dict[str, Any]) -> Iterator[str]:
        """Stream one host's answer, translating its errors."""
        ollama = _import_ollama()
        import httpx

        expected = (ollama.ResponseError, httpx.HTTPError, ConnectionError, ValueError)
        # With stream=True the client only builds a generator; the request starts on the first next().
        parts = self._client(host).chat(model=self._settings.model, messages=messages, stream=True, options=options)
        try:
            for part in parts:
                if part.message.content:
                    yield part.message.content
        except expected as error:  # ValueError: a line that is not JSON or not Ollama's reply shape
            raise _translate(error, host, self._settings) from error
        finally:
            # Closing the response tells Ollama to stop generating for a reader that left.
            if isinstance(parts, Generator):
                parts.close()

    def _check_host(self, host: str) -> HostCheck:
        """Check one host with a short timeout on every step, so a dead host costs little."""
        ollama = _import_ollama()
        import httpx

        timeout = httpx.Timeout(self._settings.connect_timeout_s)
        expected = (ollama.ResponseError, httpx.HTTPError, ConnectionError, ValueError)
        try:
            with ollama.Client(host=host, timeout=timeout) as client:
                listed = client.list()
        except expected as error:
            return HostCheck(host, False, str(_translate(error, host, self._settings)))
        wanted = _full_name(self._settings.model)
        if any(item.model and _full_name(item.model) == wanted for item in listed.models):
            self._rotation.mark_up(host)
            return HostCheck(host, True)
        return HostCheck(host, False, str(_model_missing(host, self._settings.model)))

    def _client(self, host: str) -> ollama.Client:
        """The reusable client for ``host``, built on first use."""
        ollama = _import_ollama()
        import httpx

        with self._lock:
            if host not in self._clients:
                settings = self._settings
                timeout = httpx.Timeout(
                    connect=settings.connect_timeout_s,
                    read=settings.read_timeout_s,
                    write=settings.read_timeout_s,
                    pool=settings.connect_timeout_s,
                )
                self._clients[host] = ollama.Client(host=host, timeout=timeout)
            return self._clients[host]


def list_models(settings: OllamaSettings) -> list[str]:
    """Names of the models the first Ollama host has, within the connect timeout."""
    ollama = _import_ollama()
    import httpx

    host = settings.hosts[0] if settings.hosts else ""
    if not host.startswith(("http://", "https://")):
        raise InvalidInput("the Ollama host is a URL such as http://10.0.0.5:11434")
    try:
        with ollama.Client(host=host, timeout=httpx.Timeout(settings.connect_timeout_s)) as client:
            listed = client.list()
    except (ollama.ResponseError, httpx.HTTPError, ConnectionError, ValueError) as exc:
        raise BackendUnavailable(f"Ollama at {host} did not list its models: {exc}") from exc
    return sorted(item.model for item in listed.models if item.model)


SPEC = BackendSpec(
    name="ollama",
    label="Ollama",
    settings=OllamaSettings,
    build=lambda settings, _models_dir: OllamaChatModel(settings),
    describe=lambda settings: f"Ollama {settings.model} at {', '.join(settings.hosts)}",
    fields=(FormField("hosts", "Ollama host", "http://10.0.0.5:11434", url=True, required=True),
            FormField("model", "Ollama model", required=True, listed=True)),
    probe=lambda model: unanswered(model.check()),
    auto=lambda settings: True,
    list_models=list_models,
)
