"""Who is asking, for Gradio handlers: the principal of the request's session cookie, checked every time."""

from __future__ import annotations

import gradio as gr

from assistant.accounts import AccountService
from assistant.audit import Principal
from assistant.errors import AccessError
from ui.gate import COOKIE


class SessionReader:
    """Resolves a Gradio request to the signed-in principal (a session ended elsewhere ends here too)."""

    def __init__(self, accounts: AccountService) -> None:
        self.accounts = accounts

    def principal(self, request: gr.Request | None) -> Principal:
        """The signed-in principal; raises AccessError when the session is gone."""
        cookies = dict(getattr(request, "cookies", {}) or {}) if request is not None else {}
        principal = self.accounts.session(cookies.get(COOKIE))
        if principal is None:
            raise AccessError("your session has ended: reload the page and sign in again")
        return principal
