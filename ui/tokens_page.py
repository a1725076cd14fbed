"""``/account/tokens``: a signed-in user creates and revokes their own API tokens (a plain page, no scripts).

A new token is shown once, on the page that answers its creation, and never again. The forms
post with the session cookie, which is ``SameSite=Strict``, so another site cannot submit them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from assistant.api_tokens import ApiTokenService, TokenRecord
from assistant.audit import Principal
from assistant.errors import InvalidInput, NotFoundError
from ui.plain_page import head

PATH = "/account/tokens"
EXPIRY_CHOICES = [(30, "in 30 days"), (90, "in 90 days"), (365, "in a year"), ("never", "never")]
DEFAULT_DAYS = 90
NO_STORE = {"cache-control": "private, no-store"}


def _when(stamp: datetime | None) -> str:
    return stamp.strftime("%Y-%m-%d %H:%M UTC") if stamp else "never"


def _row(token: TokenRecord, now: datetime) -> str:
    expires = _when(token.expires_at) if token.expires_at else "never"
    if token.revoked_at is not None:
        action = f"revoked {_when(token.revoked_at)}"
    elif token.expires_at is not None and token.expires_at <= now:
        action = "expired"
    else:
        action = (f'<form class="inline" method="post" action="{PATH}/{token.id}/revoke">'
                  f'<button class="revoke" type="submit" aria-label="Revoke {escape(token.name)}">Revoke</button>'
                  "</form>")
    return (f"<tr><td>{escape(token.name)}</td><td><code>{escape(token.prefix)}…</code></td>"
            f"<td>{_when(token.created_at)}</td><td>{_when(token.last_used_at)}</td><td>{expires}</td>"
            f"<td>{action}</td></tr>")


def tokens_html(principal: Principal, tokens: list[TokenRecord], secret: str = "", error: str = "") -> str:
    """The page: the new token (once), errors, the token list and the form to create one."""
    shown = ""
    if secret:
        shown = ('<div class="new" role="status"><p>Your new token. Copy it now: it is not shown again.</p>'
                 f'<code class="secret" id="new-token">{escape(secret)}</code></div>')
    if error:
        shown += f'<p class="error" role="alert">{escape(error)}</p>'
    now = datetime.now(UTC)
    rows = "".join(_row(t, now) for t in tokens) or '<tr><td colspan="6">No tokens yet.</td></tr>'
    choices = "".join(f'<option value="{days}"{" selected" if days == DEFAULT_DAYS else ""}>{label}</option>'
                      for days, label in EXPIRY_CHOICES)
    return (
        f'<!doctype html><html lang="en">{head("API tokens")}<body><main>'
        f'<p><a href="/chat/">← Back to chat</a></p><h1>API tokens of {escape(principal.username)}</h1>'
        "<p>Scripts and other tools use a token as <code>Authorization: Bearer …</code> on <code>/v1</code> and "
        "<code>/api</code> (described at <a href=\"/api/openapi.json\">/api/openapi.json</a>). A token reads "
        "exactly what you may read.</p>"
        f'{shown}<div class="table-scroll"><table><thead><tr><th>Name</th><th>Token</th><th>Created</th>'
        "<th>Last used</th><th>Expires</th>"
        f'<th></th></tr></thead><tbody>{rows}</tbody></table></div><form method="post" action="{PATH}">'
        '<label for="name">Name</label> <input id="name" name="name" type="text" maxlength="100" required '
        'placeholder="e.g. weekly report script"> <label for="expires">Expires</label> '
        f'<select id="expires" name="expires">{choices}</select> <button type="submit">Create token</button></form>'
        "</main></body></html>"
    )


def tokens_router(tokens: ApiTokenService) -> APIRouter:
    """Routes ``GET``/``POST /account/tokens`` and ``POST /account/tokens/{id}/revoke``."""
    router = APIRouter()

    def page(principal: Principal, secret: str = "", error: str = "", status: int = 200) -> HTMLResponse:
        listed = tokens.tokens(principal, principal.username)
        return HTMLResponse(tokens_html(principal, listed, secret, error), status_code=status, headers=NO_STORE)

    @router.get(PATH)
    def show(request: Request) -> HTMLResponse:
        return page(request.state.principal)

    @router.post(PATH)
    def create(request: Request, name: Annotated[str, Form(max_length=1000)] = "",
               expires: Annotated[str, Form(max_length=10)] = str(DEFAULT_DAYS)) -> HTMLResponse:
        principal: Principal = request.state.principal
        try:
            days = None if expires == "never" else int(expires) if expires.isdigit() else -1
            _, secret = tokens.create(principal, principal.username, name, days)
        except InvalidInput as exc:
            return page(principal, error=str(exc), status=400)
        return page(principal, secret=secret)

    @router.post(PATH + "/{token_id}/revoke")
    def revoke(token_id: int, request: Request) -> Response:
        principal: Principal = request.state.principal
        try:
            tokens.revoke(principal, principal.username, token_id)
        except NotFoundError as exc:
            return page(principal, error=str(exc), status=404)
        return RedirectResponse(PATH, status_code=303)

    return router
