"""The web app: FastAPI owns sign-in, sessions and the document viewer, and mounts the Gradio pages.

``build_app(services)`` makes everything; nothing is created at import. Every route sits behind
``ui.gate.AuthGate``; ``/admin`` is for admins only, and the services check roles again inside.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr
from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import FileResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.routing import Mount

from assistant.errors import AccessError, EnclaveError, InvalidInput, NotFoundError, SignInFailed
from assistant.offline import assert_offline, enforce_offline
from assistant.services import Services
from ui.admin_page import AdminPage
from ui.api import install_api
from ui.api_errors import PAGE_MESSAGES, error_response
from ui.body_limit import BodyLimit
from ui.chat_page import ChatPage
from ui.errors import log_expected
from ui.gate import AuthGate, is_api_path, wants_page
from ui.origin import SameOrigin
from ui.password_page import password_router
from ui.payloads import guard_gradio_payloads
from ui.plain_page import error_page
from ui.session import SessionReader
from ui.signin import signin_router
from ui.streaming import worker_threads
from ui.tokens_page import tokens_router
from ui.viewer import viewer_router

STATIC = Path(__file__).resolve().parent / "static"
FAVICON = STATIC / "favicon.ico"
SYSTEM_FONTS = ["ui-sans-serif", "system-ui", "Segoe UI", "Roboto", "Helvetica", "Arial", "sans-serif"]
MONO_FONTS = ["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"]


def theme() -> gr.themes.Base:
    """Gradio's default look with the platform's own fonts, so no font is fetched from anywhere."""
    return gr.themes.Default(font=SYSTEM_FONTS, font_mono=MONO_FONTS)


def status_words() -> gr.I18n:
    """Words for what Gradio's status region announces, which this Gradio ships untranslated."""
    return gr.I18n(en={"common.complete": "Done", "common.error": "Error", "common.loading": "Loading…"})


def _mount_options(services: Services) -> dict[str, Any]:
    return {
        "theme": theme(), "i18n": status_words(), "css_paths": [STATIC / "enclave.css"], "footer_links": [],
        "run_history": False,
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


def _pages_for_browsers(app: FastAPI, path: str) -> None:
    """A browser opening an unknown address under a Gradio mount gets the app's 404 page, not Gradio's JSON."""
    async def not_found(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 404 and wants_page(request.method, request.scope.get("headers", [])):
            return error_page(404, PAGE_MESSAGES[404])
        return await http_exception_handler(request, exc)  # Gradio's own page asks with fetch: JSON as before

    for route in app.routes:
        if isinstance(route, Mount) and route.path == path and isinstance(route.app, Starlette):
            route.app.add_exception_handler(HTTPException, not_found)


def build_app(services: Services) -> FastAPI:
    """The whole web app for one set of services."""
    enforce_offline()
    web = services.web
    web.runtime.load_saved()
    app = FastAPI(title="Enclave", docs_url=None, redoc_url=None, openapi_url=None,
                  lifespan=worker_threads(services.settings.web.threads))

    @app.exception_handler(EnclaveError)
    async def enclave_error(request: Request, exc: EnclaveError) -> Response:
        log_expected(exc, f"{request.method} {request.url.path}")
        if is_api_path(request.url.path):
            return error_response(_status(exc), str(exc))
        return error_page(_status(exc), str(exc))

    @app.get("/")
    def home() -> RedirectResponse:
        return RedirectResponse("/chat/", status_code=303)

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> FileResponse:  # browsers ask for it on every page, the sign-in page too (ui.gate lets it by)
        return FileResponse(FAVICON, media_type="image/x-icon", headers={"cache-control": "public, max-age=86400"})

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
    app.mount("/static", StaticFiles(directory=STATIC), name="static")  # icons, behind the sign-in gate
    gr.mount_gradio_app(app, chat.queue(default_concurrency_limit=8), path="/chat",
                        js=(STATIC / "chat.js").read_text(encoding="utf-8"), **options)
    gr.mount_gradio_app(app, admin.queue(default_concurrency_limit=4), path="/admin", **options)
    for path in ("/chat", "/admin"):
        _pages_for_browsers(app, path)
    guard_gradio_payloads(app)  # inside the gate and the body limit: bodies are read once signed in, bounded
    app.add_middleware(BodyLimit, limit=services.settings.web.max_request_kb * 1024)
    app.add_middleware(AuthGate, accounts=web.accounts, tokens=web.tokens)
    app.add_middleware(SameOrigin, settings=services.settings.web)
    return app
