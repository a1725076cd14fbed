"""``/account/password``: a signed-in user changes their own password (a plain page, no scripts).

The current password is asked for, so a session left open on a shared machine cannot be
used to take the account over. Wrong current passwords count towards the sign-in lockout.
On success every session of the user ends, this one too, and the browser goes to the
sign-in page. The form posts with the session cookie, which is ``SameSite=Strict``.
"""

from __future__ import annotations

from html import escape
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from assistant.accounts import MIN_PASSWORD, AccountService
from assistant.audit import Principal
from assistant.errors import AccountLocked, InvalidInput, SignInFailed
from ui.plain_page import head
from ui.tokens_page import NO_STORE

PATH = "/account/password"
FIELD = Annotated[str, Form(max_length=1000)]


def password_html(principal: Principal, error: str = "") -> str:
    """The form: current password, the new one twice, and what went wrong last time."""
    shown = f'<p class="error" role="alert">{escape(error)}</p>' if error else ""
    fields = "".join(
        f'<p><label for="{name}">{label}</label><br><input id="{name}" name="{name}" type="password" '
        f'autocomplete="{auto}" required{extra}></p>'
        for name, label, auto, extra in (
            ("current", "Current password", "current-password", ""),
            ("new", f"New password (at least {MIN_PASSWORD} characters)", "new-password",
             f' minlength="{MIN_PASSWORD}"'),
            ("repeated", "New password again", "new-password", f' minlength="{MIN_PASSWORD}"'),
        )
    )
    return (
        f'<!doctype html><html lang="en">{head("Password")}<body><main>'
        f'<p><a href="/chat/">← Back to chat</a></p><h1>Password of {escape(principal.username)}</h1>'
        "<p>After the change you sign in again, here and on every other device.</p>"
        f'{shown}<form method="post" action="{PATH}">{fields}<button type="submit">Change password</button>'
        "</form></main></body></html>"
    )


def password_router(accounts: AccountService) -> APIRouter:
    """Routes ``GET`` and ``POST /account/password``."""
    router = APIRouter()

    @router.get(PATH)
    def show(request: Request) -> HTMLResponse:
        return HTMLResponse(password_html(request.state.principal), headers=NO_STORE)

    @router.post(PATH)
    def change(request: Request, current: FIELD = "", new: FIELD = "", repeated: FIELD = "") -> Response:
        principal: Principal = request.state.principal
        try:
            accounts.change_own_password(principal, current, new, repeated)
        except (SignInFailed, AccountLocked, InvalidInput) as exc:
            return HTMLResponse(password_html(principal, str(exc)), status_code=400, headers=NO_STORE)
        return RedirectResponse("/login", status_code=303)

    return router
