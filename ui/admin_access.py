"""Admin tab: users, groups, collections and which groups may read which collections."""

from __future__ import annotations

from collections.abc import Callable
from html import escape
from typing import Any

import gradio as gr

from ui.admin_tab import AdminTab
from ui.errors import shows_errors
from ui.render import table_html


class AccessTab(AdminTab):
    """Manage who may read what; every change is checked by the services and written to the audit log."""

    def build(self) -> None:
        """Lay out the tab."""
        with gr.Tab("Users and access", id="access"):
            gr.Markdown("### Users")
            self.users = gr.HTML(js_on_load=None, elem_id="users-table")
            with gr.Row():
                self.username = gr.Textbox(label="User name", elem_id="user-name")
                self.password = gr.Textbox(label="Password (new users, resets)", type="password", elem_id="user-pw")
                self.role = gr.Radio(["user", "admin"], value="user", label="Role", elem_id="user-role")
            with gr.Row():
                self.add_user = gr.Button("Add user", variant="primary", elem_id="add-user")
                self.set_password = gr.Button("Set password", elem_id="set-password")
                self.set_role = gr.Button("Set role", elem_id="set-role")
                self.disable = gr.Button("Disable", elem_id="disable-user")
                self.enable = gr.Button("Enable / unlock", elem_id="enable-user")
            gr.Markdown("### Groups and what they may read")
            self.groups = gr.HTML(js_on_load=None, elem_id="groups-table")
            with gr.Row():
                self.group = gr.Textbox(label="Group", elem_id="group-name")
                self.collection = gr.Textbox(label="Collection", elem_id="grant-collection")
            with gr.Row():
                self.add_group = gr.Button("Add group", elem_id="add-group")
                self.add_member = gr.Button("Add user to group", elem_id="add-member")
                self.remove_member = gr.Button("Remove user from group", elem_id="remove-member")
                self.add_collection = gr.Button("Add collection", elem_id="add-collection")
                self.grant = gr.Button("Grant read", variant="primary", elem_id="grant")
                self.revoke = gr.Button("Revoke read", variant="stop", elem_id="revoke")
            with gr.Row():
                self.explain = gr.Button("Explain the user's access", elem_id="explain-access")
                self.sync = gr.Button("Sync with the company directory now", elem_id="directory-sync",
                                      visible=self.web.directory.enabled)
            self.explained = gr.HTML(js_on_load=None, elem_id="access-explained")

    def wire(self, blocks: gr.Blocks) -> None:
        """Connect the tab's events: each button is one service call, said back in words, then both tables refresh."""
        tables = [self.users, self.groups]
        blocks.load(self._tables, outputs=tables)
        user_inputs = [self.username, self.password, self.role]
        group_inputs = [self.username, self.group, self.collection]
        # Each button: its inputs, the service call, and what the admin is told once it is done.
        actions: dict[gr.Button, tuple[list[Any], Callable[..., object], Callable[[str, str, str], str]]] = {
            self.add_user: (user_inputs, lambda w, p, u, pw, r: w.accounts.create_user(p, u, pw, r),
                            lambda u, pw, r: f"Added {r} {u}"),
            self.set_password: (user_inputs, lambda w, p, u, pw, r: w.accounts.set_password(p, u, pw),
                                lambda u, pw, r: f"Set a new password for {u}"),
            self.set_role: (user_inputs, lambda w, p, u, pw, r: w.accounts.set_role(p, u, r),
                            lambda u, pw, r: f"{u} is now {'an admin' if r == 'admin' else 'a user'}"),
            self.disable: (user_inputs, lambda w, p, u, pw, r: w.accounts.set_active(p, u, False),
                           lambda u, pw, r: f"Disabled {u}: they can no longer sign in"),
            self.enable: (user_inputs, lambda w, p, u, pw, r: w.accounts.set_active(p, u, True),
                          lambda u, pw, r: f"Enabled and unlocked {u}"),
            self.add_group: (group_inputs, lambda w, p, u, g, c: w.access.create_group(p, g),
                             lambda u, g, c: f"Added group {g}"),
            self.add_member: (group_inputs, lambda w, p, u, g, c: w.access.set_member(p, u, g, True),
                              lambda u, g, c: f"Added {u} to group {g}"),
            self.remove_member: (group_inputs, lambda w, p, u, g, c: w.access.set_member(p, u, g, False),
                                 lambda u, g, c: f"Removed {u} from group {g}"),
            self.add_collection: (group_inputs, lambda w, p, u, g, c: w.access.create_collection(p, c),
                                  lambda u, g, c: f"Added collection {c}"),
            self.grant: (group_inputs, lambda w, p, u, g, c: w.access.set_grant(p, g, c, True),
                         lambda u, g, c: f"Granted {c} to group {g}: its members may read it now"),
            self.revoke: (group_inputs, lambda w, p, u, g, c: w.access.set_grant(p, g, c, False),
                          lambda u, g, c: f"Revoked {c} from group {g}"),
        }
        for button, (inputs, action, said) in actions.items():
            button.click(self._acting(action, said), inputs=inputs, outputs=tables)
        self.explain.click(self._explain, inputs=[self.username], outputs=[self.explained])
        self.sync.click(self._sync, outputs=[self.explained, *tables])

    @shows_errors
    def _explain(self, username: str, request: gr.Request) -> str:
        found = self.web.access.explain(self.session.principal(request), (username or "").strip())
        rows = [{"collection": access.collection, "because of group": reason.group,
                 "membership made by": _made_by(reason.source, reason.directory_group)}
                for access in found.collections for reason in access.reasons]
        summary = f"{found.username} ({found.role}, {found.source} account): {found.note}"
        return f"<p>{escape(summary)}</p>" + table_html(rows, ["collection", "because of group", "membership made by"])

    @shows_errors
    def _sync(self, request: gr.Request) -> tuple[str, str, str]:
        report = self.web.directory.sync(self.session.principal(request))
        lines = [*report.changes, *(f"{name}: disabled" for name in report.disabled)] or ["no changes"]
        shown = f"<p>{report.accounts} company accounts checked.</p><ul>" + "".join(
            f"<li>{escape(line)}</li>" for line in lines) + "</ul>"
        return (shown, *self._tables(request))

    def _acting(self, action: Callable[..., object], said: Callable[[str, str, str], str]) -> Any:
        @shows_errors
        def act(first: str, second: str, third: str, request: gr.Request) -> tuple[str, str]:
            first, second, third = (first or "").strip(), second or "", third or ""
            action(self.web, self.session.principal(request), first, second, third)
            gr.Info(said(first, second.strip(), third.strip()))
            return self._tables(request)

        return act

    @shows_errors
    def _tables(self, request: gr.Request) -> tuple[str, str]:
        principal = self.session.principal(request)
        users = table_html(self.web.accounts.users(principal),
                           ["username", "role", "source", "active", "locked", "groups"])
        groups = self.web.access.groups(principal)
        readers: dict[str, list[str]] = {}
        for group in groups:
            for name in group["collections"]:  # type: ignore[attr-defined]
                readers.setdefault(name, []).append(str(group["name"]))
        collections = [{"collection": c["name"], "documents": c["documents"],
                        "readable by": ", ".join(readers.get(c["name"], [])) or "admins only"}
                       for c in self.web.library.status(principal)["collections"]]
        return users, table_html(groups, ["name", "members", "collections"]) + table_html(
            collections, ["collection", "documents", "readable by"])


def _made_by(source: str, directory_group: str) -> str:
    """Who put the user in the group, in words: an admin, or the directory through which of its groups."""
    if source == "directory":
        return f"directory group {directory_group}" if directory_group else "the directory"
    return "an admin" if source == "manual" else source
