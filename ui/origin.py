"""Same-origin rules in front of the whole app: which hosts it answers as, which requests may change state.

Plain ASGI middleware outside ``ui.gate.AuthGate``, so Gradio's mounted apps and any route
added later are covered without being listed:

- The ``Host`` a request names must be the configured public URL's, or one of the allowed hosts
  (loopback names, IP literals, this machine's name, ``web.allowed_hosts``); forwarded-host headers
  are dropped. Gradio builds its page's ``root`` from these, and a name that is no host of ours
  is how DNS rebinding reaches a server on the loopback address.
- A request that can change state (any method but GET, HEAD and OPTIONS, and WebSockets) from a
  browser must come from the app's own origin (scheme, host and port: another port of the same
  host is another site). ``Sec-Fetch-Site`` decides when the browser sends it, else ``Origin``,
  else ``Referer``. A request with none of them does not come from a page (browsers send
  ``Origin`` on every cross-origin POST), and API calls with a bearer token carry no ambient
  credential; both pass, as Go's ``http.CrossOriginProtection`` lets them.
- No CORS: every ``access-control-*`` response header (Gradio reflects any ``Origin`` with
  credentials) is removed, and a preflight from another origin is refused.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

from assistant.settings import WebSettings
from ui.gate import ASGIApp, Message, Receive, Scope, Send, bearer_token, is_api_path

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
DROPPED_REQUEST_HEADERS = frozenset({b"x-forwarded-host", b"x-forwarded-proto", b"x-forwarded-port",
                                     b"x-forwarded-prefix", b"forwarded"})
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain"})
DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def split_host(host: str, scheme: str) -> tuple[str, int] | None:
    """A Host header (or URL netloc) as a lower-case name and a port; None when it is malformed."""
    try:
        parts = urlsplit(f"//{host.strip()}")
        name, port = parts.hostname, parts.port
    except ValueError:
        return None
    if not name or parts.username is not None or parts.path or parts.query:
        return None
    return name.rstrip("."), port or DEFAULT_PORTS.get(scheme, 80)


def origin_of(url: str) -> tuple[str, str, int] | None:
    """The (scheme, host, port) origin of an absolute URL; None for ``null`` and anything malformed."""
    try:
        parts = urlsplit(url.strip())
        scheme, name, port = parts.scheme.lower(), parts.hostname, parts.port or DEFAULT_PORTS.get(parts.scheme)
    except ValueError:
        return None
    if scheme not in ("http", "https") or not name or port is None:
        return None
    return scheme, name.rstrip("."), port


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return False
    return True


class HostPolicy:
    """Which ``Host`` names the app answers as, and the origin of a request that names one."""

    def __init__(self, settings: WebSettings) -> None:
        self.public = origin_of(settings.public_url) if settings.public_url else None
        listed = [h.strip().lower().rstrip(".") for h in settings.allowed_hosts if h.strip()]
        self.names = {h for h in listed if not h.startswith(".")}
        self.suffixes = tuple(h for h in listed if h.startswith("."))  # ".example.org": any name under it
        self.names |= LOOPBACK_NAMES
        if self.public:
            self.names.add(self.public[1])
        else:
            self.names.add(socket.gethostname().lower())  # the name alone: no lookup
            if settings.host not in ("0.0.0.0", "::", ""):
                self.names.add(settings.host.lower())

    def allows(self, name: str) -> bool:
        """Whether a request naming this host is for us."""
        if _is_ip(name):  # an address cannot be rebound to another server; names can
            return self.public is None or ipaddress.ip_address(name.strip("[]")).is_loopback
        return name in self.names or name.endswith(self.suffixes)

    def origin(self, scheme: str, name: str, port: int) -> tuple[str, str, int]:
        """The app's own origin for a request to ``name:port``: the public URL's scheme when it is that host."""
        if self.public and self.public[1] == name:
            return self.public
        return scheme, name, port


def _header(headers: Iterable[tuple[bytes, bytes]], wanted: bytes) -> str | None:
    for name, value in headers:
        if name == wanted:
            return value.decode("latin-1")
    return None


def cross_origin(headers: list[tuple[bytes, bytes]], own: tuple[str, str, int]) -> bool:
    """Whether a browser sent this request from a page of another origin (see the module's docstring)."""
    site = _header(headers, b"sec-fetch-site")
    if site is not None:
        return site.strip().lower() not in ("same-origin", "none")
    origin = _header(headers, b"origin")
    if origin is not None:
        return origin_of(origin) != own
    referer = _header(headers, b"referer")
    if referer is not None:
        return origin_of(referer) != own
    return False


class SameOrigin:
    """ASGI middleware: known hosts only, state changes from our own origin only, no CORS headers."""

    def __init__(self, app: ASGIApp, settings: WebSettings) -> None:
        self.app = app
        self.hosts = HostPolicy(settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = [(k, v) for k, v in scope.get("headers", []) if k not in DROPPED_REQUEST_HEADERS]
        scheme = "https" if scope.get("scheme") in ("https", "wss") else "http"
        host = split_host(_header(headers, b"host") or "", scheme)
        if host is None or not self.hosts.allows(host[0]):
            await _refuse(scope, send, 421, "this server does not answer as that host name: an admin can add it "
                                            "to web.allowed_hosts or set web.public_url")
            return
        own = self.hosts.origin(scheme, *host)
        method = scope.get("method", "GET") if scope["type"] == "http" else "WEBSOCKET"
        if method not in SAFE_METHODS or _is_preflight(method, headers):
            exempt = is_api_path(scope["path"]) and bool(bearer_token(headers)) and method != "OPTIONS"
            if not exempt and cross_origin(headers, own):
                await _refuse(scope, send, 403, "a request from another site was refused: use the app's own pages")
                return
        if own[0] != scheme:  # behind a TLS proxy named by web.public_url
            scope = {**scope, "scheme": "https" if scope["type"] == "http" else "wss"}
        await self.app({**scope, "headers": headers}, receive, _without_cors(send))


def _is_preflight(method: str, headers: list[tuple[bytes, bytes]]) -> bool:
    return method == "OPTIONS" and _header(headers, b"access-control-request-method") is not None


def _without_cors(send: Send) -> Send:
    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [(k, v) for k, v in message.get("headers", [])
                                  if not k.lower().startswith(b"access-control-")]
        await send(message)

    return sending


async def _refuse(scope: Scope, send: Send, status: int, text: str) -> None:
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008})
        return
    body = text.encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store")]})
    await send({"type": "http.response.body", "body": body})
