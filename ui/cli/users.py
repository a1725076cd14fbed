"""``run.py users ...``: manage users, groups and grants from the server's shell (acting as admin)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.table import Table

from assistant.audit import SYSTEM
from assistant.web_services import WebServices
from ui.cli.options import CliOptions, command_group, emit, open_services, out, shared_options
from ui.cli.tokens import tokens_app

Password = Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True,
                                       help="Prompted for when not given.")]


def _change(options: CliOptions, change: Callable[[WebServices], object], payload: dict[str, Any],
            message: str) -> None:
    """Make one change as the system admin, then report it: ``payload`` with ``--json``, else ``message``."""
    with open_services(options) as services:
        change(services.web)
    emit(options, payload, lambda: out.print(message, highlight=False))


def _set_grant(options: CliOptions, group: str, collection: str, may_read: bool) -> None:
    _change(options, lambda web: web.access.set_grant(SYSTEM, group, collection, may_read),
            {"group": group, "collection": collection, "may_read": may_read},
            f"{group} may {'' if may_read else 'no longer '}read {collection}")


def users_app() -> typer.Typer:
    """The ``users`` command group, acting through the same services as the web app."""
    app = command_group("Users, groups and which groups may read which collections.")

    @app.command("list")
    @shared_options
    def list_users(options: CliOptions) -> None:
        """Users with their role, state and groups."""
        with open_services(options) as services:
            users = services.web.accounts.users(SYSTEM)
        table = Table("user", "role", "active", "locked", "groups")
        for u in users:
            table.add_row(str(u["username"]), str(u["role"]), str(u["active"]), str(u["locked"]),
                          ", ".join(u["groups"]))  # type: ignore[arg-type]
        emit(options, {"users": users}, lambda: out.print(table))

    @app.command()
    @shared_options
    def add(options: CliOptions, username: str, password: Password,
            role: Annotated[str, typer.Option(help="admin or user")] = "user",
            group: Annotated[list[str] | None, typer.Option(help="Add to this group (repeatable).")] = None) -> None:
        """Add a user."""
        def create_user(web: WebServices) -> None:
            web.accounts.create_user(SYSTEM, username, password, role)
            for name in group or []:
                web.access.set_member(SYSTEM, username, name, True)

        _change(options, create_user, {"username": username, "role": role, "groups": group or []},
                f"added {username} ({role})")

    @app.command("set-password")
    @shared_options
    def set_password(options: CliOptions, username: str, password: Password) -> None:
        """Set a user's password (their sessions end)."""
        _change(options, lambda web: web.accounts.set_password(SYSTEM, username, password),
                {"username": username, "password_changed": True}, f"password of {username} changed")

    @app.command("set-role")
    @shared_options
    def set_role(options: CliOptions, username: str, role: str) -> None:
        """Make a user admin or user."""
        _change(options, lambda web: web.accounts.set_role(SYSTEM, username, role),
                {"username": username, "role": role}, f"{username} is now {role}")

    @app.command("set-active")
    @shared_options
    def set_active(options: CliOptions, username: str,
                   active: Annotated[bool, typer.Option("--active/--disabled")] = True) -> None:
        """Enable (and unlock) or disable a user."""
        _change(options, lambda web: web.accounts.set_active(SYSTEM, username, active),
                {"username": username, "active": active}, f"{username} is now {'enabled' if active else 'disabled'}")

    _group_commands(app)
    _directory_commands(app)
    app.add_typer(tokens_app(), name="token")
    return app


def _group_commands(app: typer.Typer) -> None:
    @app.command("add-to-group")
    @shared_options
    def add_to_group(options: CliOptions, username: str, group: str,
                     create: Annotated[bool, typer.Option(help="Create the group if needed.")] = True) -> None:
        """Add a user to a group."""
        def join(web: WebServices) -> None:
            if create and group not in [g["name"] for g in web.access.groups(SYSTEM)]:
                web.access.create_group(SYSTEM, group)
            web.access.set_member(SYSTEM, username, group, True)

        _change(options, join, {"username": username, "group": group, "member": True}, f"{username} is in {group}")

    @app.command("remove-from-group")
    @shared_options
    def remove_from_group(options: CliOptions, username: str, group: str) -> None:
        """Take a user out of a group."""
        _change(options, lambda web: web.access.set_member(SYSTEM, username, group, False),
                {"username": username, "group": group, "member": False}, f"{username} left {group}")

    @app.command()
    @shared_options
    def grant(options: CliOptions, group: str, collection: str) -> None:
        """Let a group read a collection."""
        _set_grant(options, group, collection, True)

    @app.command()
    @shared_options
    def revoke(options: CliOptions, group: str, collection: str) -> None:
        """Stop a group reading a collection."""
        _set_grant(options, group, collection, False)

    @app.command()
    @shared_options
    def groups(options: CliOptions) -> None:
        """Groups with their members and readable collections."""
        with open_services(options) as services:
            found = services.web.access.groups(SYSTEM)
        table = Table("group", "members", "may read")
        for g in found:
            table.add_row(str(g["name"]), ", ".join(g["members"]), ", ".join(g["collections"]))  # type: ignore[arg-type]
        emit(options, {"groups": found}, lambda: out.print(table))


def _directory_commands(app: typer.Typer) -> None:
    @app.command()
    @shared_options
    def explain(options: CliOptions, username: str) -> None:
        """Which collections a user reads, and why: through which group, made by an admin or the directory."""
        with open_services(options) as services:
            found = services.web.access.explain(SYSTEM, username)

        def show() -> None:
            out.print(f"{found.username} ({found.role}, {found.source} account): {found.note}", highlight=False)
            table = Table("collection", "because of group", "membership made by", "directory group")
            for access in found.collections:
                for reason in access.reasons:
                    table.add_row(access.collection, reason.group, reason.source, reason.directory_group)
            out.print(table)

        emit(options, found.to_json(), show)

    @app.command("sync-directory")
    @shared_options
    def sync_directory(options: CliOptions) -> None:
        """Bring company accounts in step with the directory now (the app does it every directory.sync_minutes)."""
        with open_services(options) as services:
            report = services.web.directory.sync(SYSTEM)
        payload = {"accounts": report.accounts, "disabled": report.disabled, "changes": report.changes}
        emit(options, payload, lambda: out.print(
            f"{report.accounts} company accounts checked; {report.changed} changes"
            + "".join(f"\n  {line}" for line in [*report.changes, *(f"{u}: disabled" for u in report.disabled)]),
            highlight=False))
