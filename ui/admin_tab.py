"""What every tab of the admin page is: a small class given the services and the session, built, then wired."""

from __future__ import annotations

from abc import ABC, abstractmethod

import gradio as gr

from assistant.web_services import WebServices
from ui.session import SessionReader


class AdminTab(ABC):
    """One tab of the admin page: laid out inside the page's Tabs, then wired; its handlers call ``web``."""

    def __init__(self, web: WebServices, session: SessionReader) -> None:
        self.web = web
        self.session = session

    @abstractmethod
    def build(self) -> None:
        """Lay out the tab."""

    @abstractmethod
    def wire(self, blocks: gr.Blocks) -> None:
        """Connect the tab's components to its handlers."""
