"""Talking to an OpenID Connect provider: the authorization code flow with PKCE, and ID tokens checked with joserfc.

Only the issuer's host is ever contacted (discovery, token endpoint, signing keys); a discovery
document naming endpoints elsewhere is refused. The signing keys are cached for
``oidc.keys_cache_s`` and fetched again at once for a key id not seen yet (the provider rotated).
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from assistant.directory.ldap import DirectoryEntry
from assistant.errors import DirectoryUnavailable, SignInFailed
from assistant.settings import OidcSettings

UNREACHABLE = "the company sign-in service cannot be reached right now: try again in a few minutes (admins can " \
              "still sign in with a local account)"
REFUSED = "the company sign-in did not complete: start again from the sign-in page"
ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"]  # never "none" nor HMAC
LEEWAY_S = 60  # clock difference tolerated between the provider and this machine


@dataclass(frozen=True)
class Flow:
    """What the browser keeps between leaving for the provider and coming back: one sign-in attempt."""

    state: str
    nonce: str
    verifier: str

    def to_cookie(self) -> str:
        """The flow as a cookie value."""
        return json.dumps([self.state, self.nonce, self.verifier])

    @classmethod
    def from_cookie(cls, value: str | None) -> Flow | None:
        """The flow back from its cookie; None when absent or not ours."""
        try:
            state, nonce, verifier = json.loads(value or "")
        except (ValueError, TypeError):
            return None
        return cls(str(state), str(nonce), str(verifier))


class OidcProvider:
    """The company's OpenID Connect provider at ``oidc.issuer``."""

    def __init__(self, settings: OidcSettings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._discovery: dict[str, Any] | None = None
        self._keys: tuple[float, Any] | None = None

    @property
    def server_label(self) -> str:
        """The provider, as the audit log names it."""
        return self.settings.issuer

    def start(self, redirect_url: str) -> tuple[str, Flow]:
        """The provider's authorization URL to send the browser to, and the flow to keep in its cookie."""
        from authlib.common.security import generate_token
        from authlib.integrations.httpx_client import OAuth2Client

        flow = Flow(secrets.token_urlsafe(24), secrets.token_urlsafe(24), generate_token(64))
        with OAuth2Client(self.settings.client_id, scope=" ".join(self._scopes()), redirect_uri=redirect_url,
                          code_challenge_method="S256") as client:
            url, _ = client.create_authorization_url(self._endpoint("authorization_endpoint"), state=flow.state,
                                                     nonce=flow.nonce, code_verifier=flow.verifier)
        return str(url), flow

    def finish(self, code: str, flow: Flow, redirect_url: str) -> DirectoryEntry:
        """The person the provider vouches for, from the code it sent back (the state was checked by the caller).

        Raises:
            SignInFailed: the provider refused the code, or the ID token is not valid for us.
            DirectoryUnavailable: the provider cannot be reached.
        """
        id_token = self._exchange(code, flow, redirect_url)
        claims = self._verify(id_token, flow.nonce)
        s = self.settings
        username = str(claims.get(s.username_claim) or "")
        if not username:
            raise SignInFailed(f"the company sign-in sent no {s.username_claim}: tell an admin")
        groups = claims.get(s.groups_claim) or []
        names = [str(g).rstrip("/").rsplit("/", 1)[-1] for g in (groups if isinstance(groups, list) else [groups])]
        return DirectoryEntry(dn=f"{claims['iss']}#{claims['sub']}", username=username,
                              name=str(claims.get(s.name_claim) or ""), email=str(claims.get(s.email_claim) or ""),
                              groups=tuple(sorted(set(names))), disabled=False)

    # the provider's documents

    def _scopes(self) -> list[str]:
        return ["openid", *[scope for scope in self.settings.scopes if scope != "openid"]]

    def _client(self) -> Any:
        import httpx

        verify: Any = self.settings.ca_file or True
        return httpx.Client(timeout=self.settings.timeout_s, verify=verify, follow_redirects=False)

    def _get_json(self, url: str) -> dict[str, Any]:
        import httpx

        self._check_host(url)
        try:
            with self._client() as client:
                response = client.get(url, headers={"accept": "application/json"})
                response.raise_for_status()
                found = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise DirectoryUnavailable(UNREACHABLE) from exc
        if not isinstance(found, dict):
            raise DirectoryUnavailable(UNREACHABLE)
        return found

    def _check_host(self, url: str) -> None:
        issuer, target = urlsplit(self.settings.issuer), urlsplit(url)
        if (target.scheme, target.netloc) != (issuer.scheme, issuer.netloc):
            raise DirectoryUnavailable("the company sign-in service names an endpoint on another host "
                                       f"({target.netloc}): tell an admin")

    def _endpoint(self, name: str) -> str:
        with self._lock:
            if self._discovery is None:
                found = self._get_json(self.settings.issuer.rstrip("/") + "/.well-known/openid-configuration")
                if found.get("issuer") != self.settings.issuer:
                    raise DirectoryUnavailable("the company sign-in service names another issuer: tell an admin")
                self._discovery = found
            url = str(self._discovery.get(name) or "")
        self._check_host(url)
        return url

    def _key_set(self, kid: str | None) -> Any:
        from joserfc.jwk import KeySet

        with self._lock:
            cached = self._keys
        if cached is not None and time.monotonic() - cached[0] < self.settings.keys_cache_s:
            keys = cached[1]
            if kid is None or any(k.kid == kid for k in keys.keys):
                return keys
        keys = KeySet.import_key_set(self._get_json(self._endpoint("jwks_uri")))  # type: ignore[arg-type]
        with self._lock:
            self._keys = (time.monotonic(), keys)
        return keys

    # the flow

    def _exchange(self, code: str, flow: Flow, redirect_url: str) -> str:
        import httpx
        from authlib.integrations.base_client.errors import OAuthError
        from authlib.integrations.httpx_client import OAuth2Client

        secret = self.settings.client_secret.get_secret_value() if self.settings.client_secret else None
        endpoint = self._endpoint("token_endpoint")
        verify: Any = self.settings.ca_file or True
        try:
            with OAuth2Client(self.settings.client_id, secret, redirect_uri=redirect_url,
                              timeout=self.settings.timeout_s, verify=verify,
                              token_endpoint_auth_method="client_secret_basic" if secret else "none") as client:
                token = client.fetch_token(endpoint, code=code, code_verifier=flow.verifier,
                                           grant_type="authorization_code")
        except httpx.TransportError as exc:
            raise DirectoryUnavailable(UNREACHABLE) from exc
        except (OAuthError, httpx.HTTPError, ValueError) as exc:
            raise SignInFailed(REFUSED) from exc
        id_token = token.get("id_token")
        if not isinstance(id_token, str):
            raise SignInFailed(REFUSED)
        return id_token

    def _verify(self, id_token: str, nonce: str) -> dict[str, Any]:
        """The ID token's claims once its signature, issuer, audience, lifetime and nonce are right."""
        from joserfc import jwt
        from joserfc.errors import JoseError
        from joserfc.jws import extract_compact

        try:
            header = extract_compact(id_token.encode()).headers()
            token = jwt.decode(id_token, self._key_set(header.get("kid")), algorithms=ALGORITHMS)
            jwt.JWTClaimsRegistry(
                leeway=LEEWAY_S, iss={"essential": True, "value": self.settings.issuer},
                aud={"essential": True, "value": self.settings.client_id}, sub={"essential": True},
                exp={"essential": True}, iat={"essential": True}, nonce={"essential": True, "value": nonce},
            ).validate(token.claims)
        except (JoseError, ValueError) as exc:
            raise SignInFailed(REFUSED) from exc
        claims = dict(token.claims)
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if len(audiences) > 1 and claims.get("azp") != self.settings.client_id:
            raise SignInFailed(REFUSED)  # a token issued to another client that merely lists us
        return claims
