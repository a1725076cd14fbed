"""A bound on every request body but uploads: a larger one is answered 413 before any handler reads it.

Plain ASGI middleware, so the API, the forms and Gradio's mounted apps share one limit
(``web.max_request_kb``). Gradio's upload route is bounded by ``max_file_size`` instead.
"""

from __future__ import annotations

import json

from ui.gate import ASGIApp, Message, Receive, Scope, Send, is_api_path

UPLOAD_SUFFIX = "/gradio_api/upload"


class BodyLimit:
    """ASGI middleware: reads a request body up to ``limit`` bytes, then hands it on; beyond it, 413."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].rstrip("/").endswith(UPLOAD_SUFFIX):
            await self.app(scope, receive, send)
            return
        declared = next((v for k, v in scope.get("headers", []) if k == b"content-length"), b"0")
        if not declared.isdigit() or int(declared) > self.limit:
            await self._too_large(scope, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away before its body arrived
            size += len(message.get("body", b""))
            if size > self.limit:  # a chunked body that never declared its length
                await self._too_large(scope, send)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        await self.app(scope, _replay(b"".join(chunks), receive), send)

    async def _too_large(self, scope: Scope, send: Send) -> None:
        text = f"the request body is larger than this server accepts ({self.limit // 1024} KiB, web.max_request_kb)"
        if is_api_path(scope["path"]):
            body = json.dumps({"error": {"message": text, "type": "invalid_request_error"}}).encode()
            kind = b"application/json"
        else:
            body, kind = text.encode(), b"text/plain; charset=utf-8"
        await send({"type": "http.response.start", "status": 413, "headers": [
            (b"content-type", kind), (b"content-length", str(len(body)).encode()), (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body in one message, then the real channel (a streaming answer listens there for a disconnect)."""
    sent = False

    async def replaying() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replaying
