"""``run.py users token ...``: create, list and revoke a user's API tokens from the server's shell."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import typer
from rich.table import Table

from assistant.audit import SYSTEM
from ui.cli.options import CliOptions, command_group, emit, open_services, out, shared_options


def _stamp(when: datetime | None) -> str | None:
    return when.isoformat() if when else None


def _minute(when: datetime | None, absent: str) -> str:
    return f"{when:%Y-%m-%d %H:%M}" if when else absent


def tokens_app() -> typer.Typer:
    """The ``token`` command group, acting through the same service as the web page."""
    app = command_group("API tokens of a user (shown once when created).")

    @app.command()
    @shared_options
    def create(options: CliOptions, username: str,
               name: Annotated[str, typer.Option(help="What the token is for.")],
               expires_days: Annotated[int | None, typer.Option(
                   help="Refuse the token after this many days (default: it lasts until revoked).")] = None) -> None:
        """Create a token for a user and print it (this once only)."""
        with open_services(options) as services:
            token, secret = services.web.tokens.create(SYSTEM, username, name, expires_days)

        def show() -> None:
            out.print(f"token {token.id} for {username} ({name}); copy it now, it is not shown again:")
            out.print(secret, highlight=False, soft_wrap=True)

        emit(options, {"id": token.id, "username": username, "name": name, "token": secret,
                       "expires_at": _stamp(token.expires_at)}, show)

    @app.command("list")
    @shared_options
    def list_tokens(options: CliOptions, username: str) -> None:
        """A user's tokens, newest first."""
        with open_services(options) as services:
            tokens = services.web.tokens.tokens(SYSTEM, username)
        table = Table("id", "name", "token", "created", "last used", "expires", "revoked")
        rows: list[dict[str, Any]] = []
        for t in tokens:
            table.add_row(str(t.id), t.name, t.prefix + "…", _minute(t.created_at, ""),
                          _minute(t.last_used_at, "never"), _minute(t.expires_at, "never"), _minute(t.revoked_at, ""))
            rows.append({"id": t.id, "name": t.name, "prefix": t.prefix, "created_at": _stamp(t.created_at),
                         "last_used_at": _stamp(t.last_used_at), "expires_at": _stamp(t.expires_at),
                         "revoked_at": _stamp(t.revoked_at)})
        emit(options, {"username": username, "tokens": rows}, lambda: out.print(table))

    @app.command()
    @shared_options
    def revoke(options: CliOptions, username: str, token_id: int) -> None:
        """Revoke a token; requests carrying it are refused from now on."""
        with open_services(options) as services:
            services.web.tokens.revoke(SYSTEM, username, token_id)
        emit(options, {"username": username, "id": token_id, "revoked": True},
             lambda: out.print(f"token {token_id} of {username} revoked"))

    return app
