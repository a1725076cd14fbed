"""``run.py users token ...``: create, list and revoke a user's API tokens from the server's shell."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

import typer
from rich.console import Console
from rich.table import Table

from assistant.audit import SYSTEM
from assistant.services import Services

OpenServices = Callable[[], AbstractContextManager[Services]]


def tokens_app(open_services: OpenServices, out: Console) -> typer.Typer:
    """The ``token`` command group, acting through the same service as the web page."""
    app = typer.Typer(no_args_is_help=True, help="API tokens of a user (shown once when created).")

    @app.command()
    def create(username: str, name: str = typer.Option(..., help="What the token is for."),
               expires_days: int | None = typer.Option(None, help="Refuse the token after this many days "
                                                               "(default: it lasts until revoked).")) -> None:
        """Create a token for a user and print it (this once only)."""
        with open_services() as services:
            token, secret = services.web.tokens.create(SYSTEM, username, name, expires_days)
            out.print(f"token {token.id} for {username} ({name}); copy it now, it is not shown again:")
            out.print(secret, highlight=False, soft_wrap=True)

    @app.command("list")
    def list_tokens(username: str) -> None:
        """A user's tokens, newest first."""
        with open_services() as services:
            table = Table("id", "name", "token", "created", "last used", "expires", "revoked")
            for t in services.web.tokens.tokens(SYSTEM, username):
                table.add_row(str(t.id), t.name, t.prefix + "…", f"{t.created_at:%Y-%m-%d %H:%M}",
                              f"{t.last_used_at:%Y-%m-%d %H:%M}" if t.last_used_at else "never",
                              f"{t.expires_at:%Y-%m-%d %H:%M}" if t.expires_at else "never",
                              f"{t.revoked_at:%Y-%m-%d %H:%M}" if t.revoked_at else "")
            out.print(table)

    @app.command()
    def revoke(username: str, token_id: int) -> None:
        """Revoke a token; requests carrying it are refused from now on."""
        with open_services() as services:
            services.web.tokens.revoke(SYSTEM, username, token_id)
            out.print(f"token {token_id} of {username} revoked")

    return app
