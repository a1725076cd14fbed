"""``run.py users ...``: manage users, groups and grants from the server's shell (acting as admin)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from assistant.audit import SYSTEM
from assistant.services import Services

OpenServices = Callable[[], AbstractContextManager[Services]]
Password = Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True,
                                       help="Prompted for when not given.")]


def users_app(open_services: OpenServices, out: Console) -> typer.Typer:
    """The ``users`` command group, acting through the same services as the web app."""
    app = typer.Typer(no_args_is_help=True, help="Users, groups and which groups may read which collections.")

    @app.command("list")
    def list_users() -> None:
        """Users with their role, state and groups."""
        with open_services() as services:
            table = Table("user", "role", "active", "locked", "groups")
            for u in services.web.accounts.users(SYSTEM):
                table.add_row(str(u["username"]), str(u["role"]), str(u["active"]), str(u["locked"]),
                              ", ".join(u["groups"]))  # type: ignore[arg-type]
            out.print(table)

    @app.command()
    def add(username: str, password: Password, role: Annotated[str, typer.Option(help="admin or user")] = "user",
            group: Annotated[list[str] | None, typer.Option(help="Add to this group (repeatable).")] = None) -> None:
        """Add a user."""
        with open_services() as services:
            services.web.accounts.create_user(SYSTEM, username, password, role)
            for name in group or []:
                services.web.access.set_member(SYSTEM, username, name, True)
            out.print(f"added {username} ({role})")

    @app.command("set-password")
    def set_password(username: str, password: Password) -> None:
        """Set a user's password (their sessions end)."""
        with open_services() as services:
            services.web.accounts.set_password(SYSTEM, username, password)
            out.print(f"password of {username} changed")

    @app.command("set-role")
    def set_role(username: str, role: str) -> None:
        """Make a user admin or user."""
        with open_services() as services:
            services.web.accounts.set_role(SYSTEM, username, role)
            out.print(f"{username} is now {role}")

    @app.command("set-active")
    def set_active(username: str, active: Annotated[bool, typer.Option("--active/--disabled")] = True) -> None:
        """Enable (and unlock) or disable a user."""
        with open_services() as services:
            services.web.accounts.set_active(SYSTEM, username, active)
            out.print(f"{username} is now {'enabled' if active else 'disabled'}")

    _group_commands(app, open_services, out)
    return app


def _group_commands(app: typer.Typer, open_services: OpenServices, out: Console) -> None:
    @app.command("add-to-group")
    def add_to_group(username: str, group: str,
                     create: Annotated[bool, typer.Option(help="Create the group if needed.")] = True) -> None:
        """Add a user to a group."""
        with open_services() as services:
            if create and group not in [g["name"] for g in services.web.access.groups(SYSTEM)]:
                services.web.access.create_group(SYSTEM, group)
            services.web.access.set_member(SYSTEM, username, group, True)
            out.print(f"{username} is in {group}")

    @app.command("remove-from-group")
    def remove_from_group(username: str, group: str) -> None:
        """Take a user out of a group."""
        with open_services() as services:
            services.web.access.set_member(SYSTEM, username, group, False)
            out.print(f"{username} left {group}")

    @app.command()
    def grant(group: str, collection: str) -> None:
        """Let a group read a collection."""
        with open_services() as services:
            services.web.access.set_grant(SYSTEM, group, collection, True)
            out.print(f"{group} may read {collection}")

    @app.command()
    def revoke(group: str, collection: str) -> None:
        """Stop a group reading a collection."""
        with open_services() as services:
            services.web.access.set_grant(SYSTEM, group, collection, False)
            out.print(f"{group} may no longer read {collection}")

    @app.command()
    def groups() -> None:
        """Groups with their members and readable collections."""
        with open_services() as services:
            table = Table("group", "members", "may read")
            for g in services.web.access.groups(SYSTEM):
                table.add_row(str(g["name"]), ", ".join(g["members"]), ", ".join(g["collections"]))  # type: ignore[arg-type]
            out.print(table)
