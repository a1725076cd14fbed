"""The web app: FastAPI owns sign-in, sessions and the document viewer, and mounts the Gradio pages.

``build_app(services)`` makes everything; nothing is created at import. Every route sits behind
``ui.gate.AuthGate``; ``/admin`` is for admins only, and the services check roles again inside.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr
from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, RedirectResponse, Response

from assistant.errors import AccessError, EnclaveError, InvalidInput, NotFoundError, SignInFailed
from assistant.offline import assert_offline, enforce_offline
from assistant.services import Services
from ui.admin_page import AdminPage
from ui.api import install_api
from ui.api_errors import error_response
from ui.body_limit import BodyLimit
from ui.chat_page import ChatPage
from ui.gate import AuthGate, is_api_path
from ui.origin import SameOrigin
from ui.password_page import password_router
from ui.payloads import guard_gradio_payloads
from ui.session import SessionReader
from ui.signin import signin_router
from ui.streaming import worker_threads
from ui.tokens_page import tokens_router
from ui.viewer import viewer_router

STATIC = Path(__file__).resolve().parent / "static"
SYSTEM_FONTS = ["ui-sans-serif", "system-ui", "Segoe UI", "Roboto", "Helvetica", "Arial", "sans-serif"]
MONO_FONTS = ["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"]


def theme() -> gr.themes.Base:
    """Gradio's default look with the platform's own fonts, so no font is fetched from anywhere."""
    return gr.themes.Default(font=SYSTEM_FONTS, font_mono=MONO_FONTS)


def _mount_options(services: Services) -> dict[str, Any]:
    return {
        "theme": theme(), "css_paths": [STATIC / "enclave.css"], "footer_links": [], "run_history": False,
        "pwa": False, "ssr_mode": False, "mcp_server": False, "enable_monitoring": False, "show_error": True,
        "max_file_size": int(services.settings.web.max_upload_mb * 2**20),
    }


def _status(exc: EnclaveError) -> int:
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, SignInFailed):
        return 401
    if isinstance(exc, AccessError):
        return 403
    if isinstance(exc, InvalidInput):
        return 400
    return 500


def build_app(services: Services) -> FastAPI:
    """The whole web app for one set of services."""
    enforce_offline()
    web = services.web
    web.runtime.load_saved()
    app = FastAPI(title="Enclave", docs_url=None, redoc_url=None, openapi_url=None,
                  lifespan=worker_threads(services.settings.web.threads))

    @app.exception_handler(EnclaveError)
    async def enclave_error(request: Request, exc: EnclaveError) -> Response:
        if is_api_path(request.url.path):
            return error_response(_status(exc), str(exc))
        return PlainTextResponse(str(exc), status_code=_status(exc), headers={"cache-control": "no-store"})

    @app.get("/")
    def home() -> RedirectResponse:
        return RedirectResponse("/chat/", status_code=303)

    app.include_router(signin_router(web.directory, services.settings.web))
    app.include_router(viewer_router(web.library))
    app.include_router(tokens_router(web.tokens))
    app.include_router(password_router(web.accounts))
    install_api(app, web)
    session = SessionReader(web.accounts)
    chat = ChatPage(web.chats, web.runtime, session).build()
    admin = AdminPage(services, session).build()
    assert_offline([chat, admin])  # offline switches, local NLTK/tiktoken data, no analytics, no share link
    options = _mount_options(services)
    gr.mount_gradio_app(app, chat.queue(default_concurrency_limit=8), path="/chat", **options)
    gr.mount_gradio_app(app, admin.queue(default_concurrency_limit=4), path="/admin", **options)
    guard_gradio_payloads(app)  # inside the gate and the body limit: bodies are read once signed in, bounded
    app.add_middleware(BodyLimit, limit=services.settings.web.max_request_kb * 1024)
    app.add_middleware(AuthGate, accounts=web.accounts, tokens=web.tokens)
    app.add_middleware(SameOrigin, settings=services.settings.web)
    return app
