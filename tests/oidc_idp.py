"""A small OpenID Connect provider on loopback for the sign-in tests: discovery, authorize, token, keys.

It speaks the real protocol (authorization code with PKCE S256, client_secret_basic, RS256 ID
tokens signed with joserfc) and approves every request as ``person``; ``token_mode`` makes it
misbehave the way a forged or stale token would: ``forged`` (signed by another key under the
same key id), ``expired``, ``other_audience``.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import FastAPI, Form, Request
from fastapi.responses import JSONResponse, RedirectResponse

CLIENT_ID = "enclave"
CLIENT_SECRET = "enclave-client-secret-1"


@dataclass
class LoopbackIdP:
    """The provider's state; ``url`` is its issuer."""

    url: str = ""
    person: dict[str, Any] = field(default_factory=lambda: {
        "sub": "u-1001", "preferred_username": "grace", "name": "Grace Hopper", "email": "grace@example.org",
        "groups": ["/Engineering"]})
    token_mode: str = "ok"
    token_endpoint: str = ""
    """Where discovery says tokens are fetched; empty: this provider's own /token."""
    codes: dict[str, dict[str, str]] = field(default_factory=dict)
    token_requests: list[dict[str, str]] = field(default_factory=list)
    server: Any = None
    thread: threading.Thread | None = None

    def __post_init__(self) -> None:
        from joserfc.jwk import RSAKey

        self.key = RSAKey.generate_key(2048, parameters={"kid": "k1", "use": "sig", "alg": "RS256"})
        self.impostor = RSAKey.generate_key(2048, parameters={"kid": "k1", "use": "sig", "alg": "RS256"})

    def id_token(self, nonce: str) -> str:
        """An ID token for ``person``, spoilt as ``token_mode`` says."""
        from joserfc import jwt

        now = int(time.time())
        claims = {"iss": self.url, "aud": CLIENT_ID, "iat": now, "exp": now + 300, "nonce": nonce, **self.person}
        if self.token_mode == "expired":
            claims.update(iat=now - 7200, exp=now - 3600)
        if self.token_mode == "other_audience":
            claims["aud"] = "another-app"
        key = self.impostor if self.token_mode == "forged" else self.key
        return jwt.encode({"alg": "RS256", "kid": "k1"}, claims, key)

    def app(self) -> Any:
        """The provider's HTTP endpoints."""
        app = FastAPI()

        @app.get("/.well-known/openid-configuration")
        def discovery() -> dict[str, Any]:
            return {"issuer": self.url, "authorization_endpoint": f"{self.url}/authorize",
                    "token_endpoint": self.token_endpoint or f"{self.url}/token", "jwks_uri": f"{self.url}/jwks",
                    "response_types_supported": ["code"], "subject_types_supported": ["public"],
                    "id_token_signing_alg_values_supported": ["RS256"], "code_challenge_methods_supported": ["S256"]}

        @app.get("/jwks")
        def jwks() -> dict[str, Any]:
            return {"keys": [self.key.as_dict(private=False)]}

        @app.get("/authorize")
        def authorize(client_id: str, redirect_uri: str, state: str, nonce: str, code_challenge: str,
                      code_challenge_method: str, response_type: str, scope: str) -> Any:
            assert client_id == CLIENT_ID and response_type == "code" and "openid" in scope.split()
            assert code_challenge_method == "S256"
            code = secrets.token_urlsafe(16)
            self.codes[code] = {"nonce": nonce, "challenge": code_challenge, "redirect_uri": redirect_uri}
            return RedirectResponse(f"{redirect_uri}?{urlencode({'code': code, 'state': state})}", status_code=302)

        @app.post("/token")
        def token(request: Request, grant_type: Annotated[str, Form()], code: Annotated[str, Form()],
                  redirect_uri: Annotated[str, Form()], code_verifier: Annotated[str, Form()]) -> Any:
            sent = request.headers.get("authorization", "")
            expected = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
            self.token_requests.append({"code": code, "verifier": code_verifier})
            issued = self.codes.pop(code, None)
            challenge = base64.urlsafe_b64encode(hashlib.sha256(code_verifier.encode()).digest()).rstrip(b"=")
            if sent != expected:
                return JSONResponse({"error": "invalid_client"}, status_code=401)
            if (grant_type != "authorization_code" or issued is None or issued["redirect_uri"] != redirect_uri
                    or challenge.decode() != issued["challenge"]):
                return JSONResponse({"error": "invalid_grant"}, status_code=400)
            return {"access_token": secrets.token_urlsafe(16), "token_type": "Bearer", "expires_in": 300,
                    "id_token": self.id_token(issued["nonce"])}

        return app

    def start(self) -> LoopbackIdP:
        """Serve on a free loopback port, named ``localhost`` (another site than the app's 127.0.0.1)."""
        import uvicorn

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.url = f"http://localhost:{port}"
        self.server = uvicorn.Server(uvicorn.Config(self.app(), host="127.0.0.1", port=port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, name="test-idp", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        """Stop serving (the provider is down)."""
        if self.server is not None:
            self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(timeout=10)
