"""The gate in front of every route: a signed-in session, admin-only areas, and safe response headers.

It is plain ASGI middleware around the whole app, Gradio's mounted apps included, so a route
added later (by us or by a Gradio upgrade) is closed until it is deliberately opened here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import quote, unquote

import anyio

from assistant.accounts import AccountService
from assistant.api_tokens import ApiTokenService
from assistant.audit import Principal
from ui.plain_page import error_page_html

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

COOKIE = "enclave_session"
# /desktop/open checks its own one-time token (ui/desktop.py); it exists only under `run.py desktop`.
PUBLIC_PATHS = frozenset({"/login", "/favicon.ico", "/login/oidc", "/login/oidc/callback", "/desktop/open"})
ADMIN_PREFIX = "/admin"
API_PREFIXES = ("/v1", "/api")
REFUSALS = {401: "Sign in first.", 403: "This page is for administrators only. Ask one if you need it."}
GRADIO_FILE_RE = re.compile(r"/gradio_api/file[=/]")
CSP = "; ".join([
    "default-src 'self'",
    # Gradio's page boots from an inline script and compiles gr.HTML templates at run time.
    "script-src 'self' 'unsafe-inline' 'unsafe-eval'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data: blob:",
    "font-src 'self' data:",
    "connect-src 'self'",
    "media-src 'self' blob:",
    "worker-src 'self' blob:",
    "frame-src 'self'",
    "frame-ancestors 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "object-src 'none'",
])
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),  # browsers send Origin: null on our own POSTs under no-referrer
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
]


def session_token(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The session cookie's value from raw ASGI headers."""
    for name, value in headers:
        if name == b"cookie":
            cookie: SimpleCookie = SimpleCookie()
            cookie.load(value.decode("latin-1"))
            if COOKIE in cookie:
                return cookie[COOKIE].value
    return None


def is_api_path(path: str) -> bool:
    """Whether a path belongs to the HTTP API, where bearer tokens work and errors are JSON."""
    return any(path == prefix or path.startswith(prefix + "/") for prefix in API_PREFIXES)


def wants_page(method: str, headers: list[tuple[bytes, bytes]]) -> bool:
    """Whether a request is a browser opening a page (not a script's or a page's own fetch)."""
    return method == "GET" and any(name == b"accept" and b"text/html" in value for name, value in headers)


def bearer_token(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The token of an ``Authorization: Bearer ...`` header, "" for another scheme, None when absent."""
    for name, value in headers:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token.strip() if scheme.lower() == "bearer" else ""
    return None


def refusal(path: str, principal: Principal | None) -> int | None:
    """The status that refuses this request, or None to let it through."""
    if principal is None:
        return 401
    decoded = unquote(path)
    served = GRADIO_FILE_RE.search(decoded)  # file=PATH and its older spelling file/PATH: the same handler
    if served:
        target = decoded[served.end() :]
        # Gradio would fetch URLs itself: never on an air-gapped server. Its cached files are admins' uploads.
        if "://" in target or target.startswith("//") or not principal.is_admin:
            return 403
    if "/gradio_api/upload" in decoded and not principal.is_admin:
        return 403
    if (decoded == ADMIN_PREFIX or decoded.startswith(ADMIN_PREFIX + "/")) and not principal.is_admin:
        return 403
    return None


class AuthGate:
    """ASGI middleware: every request but the sign-in page needs a live session (or, on the API, a token)."""

    def __init__(self, app: ASGIApp, accounts: AccountService, tokens: ApiTokenService | None = None) -> None:
        self.app = app
        self.accounts = accounts
        self.tokens = tokens

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        send = _with_headers(send)
        if scope["path"] in PUBLIC_PATHS:
            await self.app(scope, receive, send)
            return
        principal = await self._principal(scope)
        status = refusal(scope["path"], principal)
        if status is not None:
            await _refuse(scope, send, status)
            return
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)

    async def _principal(self, scope: Scope) -> Principal | None:
        """The session cookie's user; on API paths a bearer token, when sent, decides alone."""
        headers = scope.get("headers", [])
        tokens = self.tokens if is_api_path(scope["path"]) else None
        bearer = bearer_token(headers) if tokens is not None else None
        if tokens is not None and bearer is not None:
            return await anyio.to_thread.run_sync(tokens.principal, bearer) if bearer else None
        token = session_token(headers)
        return await anyio.to_thread.run_sync(self.accounts.session, token) if token else None


def _with_headers(send: Send) -> Send:
    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            names = {name.lower() for name, _ in message.get("headers", [])}
            message["headers"] = list(message.get("headers", [])) + [
                (k, v) for k, v in SECURITY_HEADERS if k not in names
            ]
        await send(message)

    return sending


async def _refuse(scope: Scope, send: Send, status: int) -> None:
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008})
        return
    if is_api_path(scope["path"]):
        await _refuse_api(scope, send, status)
        return
    if status == 401 and wants_page(scope.get("method", ""), scope.get("headers", [])):
        target = quote(scope["path"], safe="/")
        headers = [(b"location", f"/login?next={target}".encode()), (b"content-length", b"0")]
        await send({"type": "http.response.start", "status": 303, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
        return
    body = error_page_html(status, REFUSALS[status]).encode()
    headers = [(b"content-type", b"text/html; charset=utf-8"), (b"content-length", str(len(body)).encode()),
               (b"cache-control", b"no-store")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _refuse_api(scope: Scope, send: Send, status: int) -> None:
    """API refusals as JSON in OpenAI's error shape, with the Bearer challenge on 401."""
    if status == 401:
        sent = bearer_token(scope.get("headers", [])) is not None
        message = ("the API token is invalid or revoked" if sent else
                   "send an API token (Authorization: Bearer enc_...) or sign in first")
        kind = "authentication_error"
    else:
        message, kind = "not allowed", "permission_error"
    body = json.dumps({"error": {"message": message, "type": kind}}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               (b"cache-control", b"no-store")]
    if status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="enclave"'))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
