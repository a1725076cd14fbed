"""A real HTTP server on 127.0.0.1 that speaks the parts of Ollama's API the ``ollama`` client uses.

It answers ``POST /api/chat`` (streamed NDJSON in chunked encoding, or one JSON object),
``GET /api/tags``, ``POST /api/show`` and ``GET /api/version`` the way Ollama does, can be
scripted to be slow or to fail, and records every request it received.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

FAKE_VERSION = "0.12.6"


@dataclass
class RecordedRequest:
    """One request the fake server received."""

    method: str
    path: str
    body: Any


@dataclass
class FakeOllamaScript:
    """How the fake server behaves; tests may change it while the server runs."""

    models: list[str] = field(default_factory=lambda: ["gemma3:270m"])
    reply: str = "The travel policy allows economy class for flights under six hours."
    initial_delay_s: float = 0.0
    token_delay_s: float = 0.0
    chat_status: int | None = None
    chat_error: str = "server busy, please try again.  maximum pending requests exceeded"
    error_after_tokens: int | None = None
    stream_error: str = "an error was encountered while running the model: unexpected EOF"

    def pieces(self) -> list[str]:
        """The reply cut into token-sized pieces, each word with its trailing space."""
        return re.findall(r"\S+\s*|\s+", self.reply)


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive and chunked streaming, as Ollama serves
    timeout = 15  # idle keep-alive connections are dropped, so handler threads end
    server: _Server

    def handle(self) -> None:
        """Serve the connection; a client that hung up (it timed out, or left a stream) just ends it."""
        with self.server.lock:
            self.server.connections.add(self.connection)
        try:
            super().handle()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        finally:
            with self.server.lock:
                self.server.connections.discard(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet; tests read ``FakeOllama.requests`` instead."""

    def do_GET(self) -> None:
        self._record(None)
        if self.path == "/api/version":
            self._send_json(200, {"version": FAKE_VERSION})
        elif self.path == "/api/tags":
            self._send_json(200, {"models": [_tag_entry(name) for name in self.server.script.models]})
        elif self.path == "/":
            self._send_text(200, "Ollama is running")
        else:
            self._send_text(404, "404 page not found")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        self._record(body)
        if self.path == "/api/chat":
            self._chat(body)
        elif self.path == "/api/show":
            self._show(body)
        else:
            self._send_text(404, "404 page not found")

    def _record(self, body: Any) -> None:
        with self.server.lock:
            self.server.requests.append(RecordedRequest(self.command, self.path, body))

    def _chat(self, body: dict[str, Any]) -> None:
        script = self.server.script
        if self._sleep(script.initial_delay_s):
            return
        model = body.get("model", "")
        if model not in script.models:
            self._send_json(404, {"error": f"model '{model}' not found, try pulling it first"})
        elif script.chat_status is not None:
            self._send_json(script.chat_status, {"error": script.chat_error})
        elif body.get("stream", True):
            self._stream_chat(model, script, _predicted(body, script))
        else:
            pieces = _predicted(body, script)
            self._send_json(200, {**_chat_part(model, "".join(pieces)), **_done_fields(script, pieces)})

    def _stream_chat(self, model: str, script: FakeOllamaScript, pieces: list[str]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for index, piece in enumerate(pieces):
            if script.error_after_tokens is not None and index == script.error_after_tokens:
                self._send_chunk({"error": script.stream_error})
                break
            if index and self._sleep(script.token_delay_s):
                return
            self._send_chunk(_chat_part(model, piece))
        else:
            self._send_chunk({**_chat_part(model, ""), **_done_fields(script, pieces)})
        self._write(b"0\r\n\r\n")

    def _show(self, body: dict[str, Any]) -> None:
        model = body.get("model") or body.get("name") or ""
        if model not in self.server.script.models:
            self._send_json(404, {"error": f"model '{model}' not found"})
            return
        self._send_json(
            200,
            {
                "modelfile": f"FROM {model}\n",
                "parameters": 'stop "<end_of_turn>"',
                "template": "{{ .Prompt }}",
                "details": _details(),
                "model_info": {"general.architecture": "gemma3", "gemma3.context_length": 32768},
                "capabilities": ["completion"],
                "modified_at": _now(),
            },
        )

    def _sleep(self, seconds: float) -> bool:
        """Wait, returning True when the server is stopping and the handler should give up."""
        if seconds > 0 and self.server.stopping.wait(seconds):
            self.close_connection = True
            return True
        return False

    def _send_chunk(self, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode() + b"\n"
        self._write(f"{len(data):x}\r\n".encode() + data + b"\r\n")

    def _send_json(self, status: int, payload: dict[str, Any]) -> None:
        self._send_bytes(status, "application/json; charset=utf-8", json.dumps(payload).encode())

    def _send_text(self, status: int, text: str) -> None:
        self._send_bytes(status, "text/plain; charset=utf-8", text.encode())

    def _send_bytes(self, status: int, content_type: str, data: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self._write(data)

    def _write(self, data: bytes) -> None:
        self.wfile.write(data)
        self.wfile.flush()


def _chat_part(model: str, content: str) -> dict[str, Any]:
    return {"model": model, "created_at": _now(), "message": {"role": "assistant", "content": content}, "done": False}


def _predicted(body: dict[str, Any], script: FakeOllamaScript) -> list[str]:
    """The reply's pieces up to ``options.num_predict``, where Ollama stops a model that writes on."""
    limit = (body.get("options") or {}).get("num_predict")
    pieces = script.pieces()
    return pieces[:limit] if isinstance(limit, int) and limit >= 0 else pieces


def _done_fields(script: FakeOllamaScript, pieces: list[str]) -> dict[str, Any]:
    return {
        "done": True,
        "done_reason": "length" if len(pieces) < len(script.pieces()) else "stop",
        "total_duration": 1_000_000,
        "load_duration": 10_000,
        "prompt_eval_count": 42,
        "prompt_eval_duration": 100_000,
        "eval_count": len(pieces),
        "eval_duration": 500_000,
    }


def _details() -> dict[str, Any]:
    return {
        "parent_model": "",
        "format": "gguf",
        "family": "gemma3",
        "families": ["gemma3"],
        "parameter_size": "268.10M",
        "quantization_level": "Q8_0",
    }


def _tag_entry(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "model": name,
        "modified_at": _now(),
        "size": 291_554_930,
        "digest": "e7d36fb2c3b3293cfe56d55889867a064b428b4d2bf1a5b4b6f8e8b3c0b6a9f1",
        "details": _details(),
    }


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, script: FakeOllamaScript, port: int) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.script = script
        self.requests: list[RecordedRequest] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.connections: set[socket.socket] = set()

    def drop_connections(self) -> None:
        """Cut every open connection, as a server process that exits does (keep-alive ones included)."""
        with self.lock:
            connections = list(self.connections)
        for connection in connections:
            with contextlib.suppress(OSError):  # the client closed it first
                connection.shutdown(socket.SHUT_RDWR)


class FakeOllama:
    """A running fake Ollama server; use as a context manager, then read ``url`` and ``requests``.

    ``port`` 0 takes a free port; give the port of a stopped server to bring "the same host" back.
    """

    def __init__(self, script: FakeOllamaScript | None = None, port: int = 0) -> None:
        self.script = script or FakeOllamaScript()
        self.port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> FakeOllama:
        self._server = _Server(self.script, self.port)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="fake-ollama", daemon=True
        )
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._server is not None and self._thread is not None
        self._server.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._server.drop_connections()
        self._thread.join(timeout=5)

    @property
    def url(self) -> str:
        """The base URL to give the client, e.g. ``http://127.0.0.1:54321``."""
        assert self._server is not None, "the server is not running"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def requests(self) -> list[RecordedRequest]:
        """A copy of the requests received so far."""
        assert self._server is not None, "the server is not running"
        with self._server.lock:
            return list(self._server.requests)

    def chat_requests(self) -> list[RecordedRequest]:
        """The ``/api/chat`` requests received so far."""
        return [request for request in self.requests if request.path == "/api/chat"]


def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens, so connecting is refused at once."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"
