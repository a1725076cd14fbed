"""The admin page: one tab per task, each its own class and file."""

from __future__ import annotations

from html import escape

import gradio as gr

from assistant.services import Services
from ui.admin_access import AccessTab
from ui.admin_activity import ActivityTab
from ui.admin_documents import DocumentsTab
from ui.admin_ingest import IngestTab
from ui.admin_models import ModelsTab
from ui.admin_quality import QualityTab
from ui.admin_settings import SettingsTab
from ui.admin_sources import SourcesTab
from ui.admin_tab import AdminTab
from ui.errors import shows_errors
from ui.session import SessionReader


class AdminPage:
    """Builds the admin Blocks (served under /admin, which the gate opens to admins only)."""

    def __init__(self, services: Services, session: SessionReader) -> None:
        web = services.web
        self.session = session
        self.tabs: list[AdminTab] = [IngestTab(web, session), DocumentsTab(web, session), AccessTab(web, session),
                     ActivityTab(web, session), SettingsTab(web, session), ModelsTab(web, session)]
        self.tabs.append(QualityTab(web, session))
        self.tabs.append(SourcesTab(web, session))

    def build(self) -> gr.Blocks:
        """The page, laid out and wired."""
        with gr.Blocks(title="Enclave · Admin", fill_width=True) as blocks:
            header = gr.HTML(js_on_load=None, elem_id="header")
            with gr.Tabs():
                for tab in self.tabs:
                    tab.build()
            blocks.load(self._header, outputs=[header])
            for tab in self.tabs:
                tab.wire(blocks)
        return blocks

    @shows_errors
    def _header(self, request: gr.Request) -> str:
        principal = self.session.principal(request)
        return (f'<div class="topbar"><span class="brand">Enclave · Admin</span><span class="model"></span>'
                f'<span class="who">{escape(principal.username)}</span><a href="/chat/">Chat</a>'
                '<form method="post" action="/logout"><button type="submit" class="signout">Sign out</button>'
                "</form></div>")
