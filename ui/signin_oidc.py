"""Company single sign-on: ``/login/oidc`` sends the browser to the OpenID provider, the callback signs it in.

The attempt's state, nonce and PKCE verifier wait in a short-lived cookie scoped to these two
paths; ``SameSite=Lax`` because the provider's redirect back is a cross-site navigation.
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape
from typing import Annotated
from urllib.parse import quote, unquote

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from assistant.directory import DirectoryService, Flow
from assistant.errors import DirectoryUnavailable, SignInFailed
from assistant.settings import WebSettings
from ui.gate import COOKIE

FLOW_COOKIE = "enclave_oidc"
FLOW_SECONDS = 600

# The session cookie is SameSite=Strict: a redirect straight from the provider's cross-site navigation
# would arrive without it, so the last step is a page of ours that moves on by itself.
ONWARD = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="0;url={target}"><title>Signed in · Enclave</title></head>
<body><p>Signed in. <a id="onward" href="{target}">Continue</a></p></body></html>"""


def _redirect_url(signin: DirectoryService, settings: WebSettings, request: Request) -> str:
    assert signin.oidc is not None
    configured = signin.oidc.settings.redirect_url
    if configured:
        return configured
    base = settings.public_url or str(request.base_url).rstrip("/")
    return base + "/login/oidc/callback"


def oidc_router(signin: DirectoryService, settings: WebSettings, page: Callable[..., HTMLResponse]) -> APIRouter:
    """Routes ``GET /login/oidc`` and ``GET /login/oidc/callback`` (404 while single sign-on is off)."""
    from ui.signin import safe_next

    router = APIRouter()

    @router.get("/login/oidc")
    def start(request: Request, next: Annotated[str, Query(max_length=2000)] = "/") -> Response:
        if signin.oidc is None:
            return page("company single sign-on is not turned on", status=404)
        try:
            url, flow = signin.oidc_start(_redirect_url(signin, settings, request))
        except DirectoryUnavailable as exc:
            return page(str(exc), target=next, status=503)
        response = RedirectResponse(url, status_code=303)
        response.set_cookie(FLOW_COOKIE, f"{quote(safe_next(next), safe='')} {flow.to_cookie()}", max_age=FLOW_SECONDS,
                            httponly=True, secure=settings.cookie_secure, samesite="lax", path="/login/oidc")
        return response

    @router.get("/login/oidc/callback")
    def callback(request: Request, code: Annotated[str, Query(max_length=4000)] = "",
                 state: Annotated[str, Query(max_length=200)] = "",
                 error: Annotated[str, Query(max_length=200)] = "") -> Response:
        if signin.oidc is None:
            return page("company single sign-on is not turned on", status=404)
        target, _, kept = (request.cookies.get(FLOW_COOKIE) or "").partition(" ")
        client = request.client.host if request.client else ""
        try:
            if error or not code:
                raise SignInFailed(f"the company sign-in was not completed ({error or 'no code'}): try again")
            _, token = signin.oidc_finish(code, state, Flow.from_cookie(kept), _redirect_url(signin, settings, request),
                                          client)
        except DirectoryUnavailable as exc:
            return page(str(exc), status=503)
        except SignInFailed as exc:
            return page(str(exc), status=401)
        onward = safe_next(unquote(target))
        response = HTMLResponse(ONWARD.format(target=escape(onward)), headers={"cache-control": "no-store"})
        response.set_cookie(COOKIE, token, max_age=int(settings.session_hours * 3600), httponly=True,
                            secure=settings.cookie_secure, samesite="strict", path="/")
        response.delete_cookie(FLOW_COOKIE, path="/login/oidc", httponly=True, secure=settings.cookie_secure,
                               samesite="lax")
        return response

    return router
