"""The sign-in page and sign-out: a small self-contained HTML form, no scripts, nothing from elsewhere."""

from __future__ import annotations

import functools
from html import escape
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from assistant.directory import DirectoryService
from assistant.errors import DirectoryUnavailable, SignInFailed
from assistant.settings import WebSettings
from ui.gate import COOKIE
from ui.signin_oidc import oidc_router

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in · Enclave</title><link rel="icon" href="data:,">
<style>
body {{ font-family: system-ui, sans-serif; background: #f4f5f7; margin: 0; display: grid; place-items: center;
       min-height: 100vh; color: #1f2937; }}
form {{ background: #fff; padding: 2rem 2.25rem; border-radius: 10px; box-shadow: 0 2px 12px rgba(0,0,0,.08);
        width: min(22rem, 90vw); box-sizing: border-box; }}
h1 {{ font-size: 1.35rem; margin: 0 0 .25rem; }}
p.sub {{ margin: 0 0 1.25rem; color: #6b7280; font-size: .9rem; }}
label {{ display: block; font-size: .85rem; margin: .75rem 0 .25rem; }}
input[type=text], input[type=password] {{ width: 100%; box-sizing: border-box; padding: .55rem .6rem;
        border: 1px solid #d1d5db; border-radius: 6px; font-size: 1rem; }}
button {{ margin-top: 1.25rem; width: 100%; padding: .6rem; border: 0; border-radius: 6px; background: #2563eb;
         color: #fff; font-size: 1rem; cursor: pointer; }}
a.sso {{ display: block; text-align: center; padding: .6rem; border-radius: 6px; background: #1f2937; color: #fff;
         text-decoration: none; margin: 0 0 1rem; }}
.method {{ margin: 0 0 1rem; font-size: .9rem; color: #374151; }}
.error {{ background: #fef2f2; color: #991b1b; padding: .5rem .6rem; border-radius: 6px; font-size: .9rem; }}
</style></head>
<body><form method="post" action="/login">
<h1>Enclave</h1><p class="sub">Private document assistant</p>
{sso}{method}{error}
<label for="username">{label}</label>
<input id="username" name="username" type="text" autocomplete="username" required autofocus value="{username}">
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<input type="hidden" name="next" value="{next}">
<button type="submit">{button}</button>
</form></body></html>
"""

COMPANY_METHOD = ('<p class="method" id="company-sign-in">Sign in with your company account: the same user name '
                  'and password as for your computer. Administrators with a local account sign in here too.</p>')


def safe_next(target: str | None) -> str:
    """Only paths of this app: never another host (``//host``, ``/\\host``, ``https://...``)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")) or "\\" in target:
        return "/"
    return target


def set_session_cookie(response: Response, token: str, secure: bool, hours: float) -> None:
    """Hand the browser its session: script-proof, sent to this site only, for ``hours``."""
    response.set_cookie(COOKIE, token, max_age=int(hours * 3600), httponly=True, secure=secure,
                        samesite="strict", path="/")


def _page(error: str = "", username: str = "", target: str = "/", status: int = 200,
          company: bool = False, sso_label: str | None = None) -> HTMLResponse:
    shown = f'<p class="error" role="alert">{escape(error)}</p>' if error else ""
    method = COMPANY_METHOD if company else ""
    sso = ""
    if sso_label:  # the company's single sign-on first: most people have nothing else
        sso = (f'<a class="sso" id="sso-sign-in" href="/login/oidc?next={quote(safe_next(target), safe="")}">'
               f"{escape(sso_label)}</a>")
    body = PAGE.format(error=shown, username=escape(username), next=escape(safe_next(target)), method=method, sso=sso,
                       label="Company user name" if company else "User name",
                       button="Sign in with your company account" if company else "Sign in")
    return HTMLResponse(body, status_code=status, headers={"cache-control": "no-store"})


def signin_router(signin: DirectoryService, settings: WebSettings) -> APIRouter:
    """Routes ``GET``/``POST /login`` and ``POST /logout``; the form signs in with every method that is on."""
    accounts = signin.accounts
    company = signin.enabled
    sso_label = signin.oidc.settings.label if signin.oidc else None
    page = functools.partial(_page, company=company, sso_label=sso_label)
    router = APIRouter()

    @router.get("/login")
    def login_page(next: str = "/") -> HTMLResponse:
        return page(target=next)

    @router.post("/login")
    def login(
        request: Request,
        username: Annotated[str, Form(max_length=100)],
        password: Annotated[str, Form(max_length=1000)],
        next: Annotated[str, Form(max_length=2000)] = "/",
    ) -> Response:
        client = request.client.host if request.client else ""
        try:
            _, token = signin.sign_in(username, password, client)
        except DirectoryUnavailable as exc:
            return page(str(exc), username, next, status=503)
        except SignInFailed as exc:
            return page(str(exc), username, next, status=401)
        response = RedirectResponse(safe_next(next), status_code=303)
        set_session_cookie(response, token, settings.cookie_secure, settings.session_hours)
        return response

    @router.post("/logout")
    def logout(request: Request) -> Response:
        token = request.cookies.get(COOKIE)
        if token:
            accounts.sign_out(token)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE, path="/", httponly=True, secure=settings.cookie_secure, samesite="strict")
        return response

    router.include_router(oidc_router(signin, settings, page))
    return router
