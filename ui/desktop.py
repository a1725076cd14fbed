"""``run.py desktop``: the app in its own native window, for one person on their own machine.

The server listens on loopback only, on a port the system picks, in this process; the window
(pywebview: Qt WebEngine on Linux, the system's web view on macOS and Windows) opens a one-time
link (``assistant.desktop``) and is signed in without a password. Closing the window stops the
server and the ingest worker: the process ends.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import threading
import time
import webbrowser
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from assistant.desktop import DesktopSignIn
from assistant.errors import SignInFailed
from assistant.services import Services
from ui.plain_page import error_page
from ui.signin import safe_next, set_session_cookie

log = logging.getLogger(__name__)

LINK_PATH = "/desktop/open"
INSTALL_HINT = "install it with `make install` (or `pip install -e '.[desktop]'`)"
# The Qt libraries pip installs need these X libraries of the system (Debian/Ubuntu names).
X_LIBRARIES = "libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxkbcommon-x11-0 libegl1 libnss3"
# Run in a child process: a Qt that cannot show a window aborts the whole process, message and all.
PROBE = ("import webview; from qtpy.QtWebEngineWidgets import QWebEngineView; "
         "from qtpy.QtWidgets import QApplication; QApplication(['enclave'])")
SERVER_START_S = 60.0
# qtpy would take PyQt (GPL) before PySide6 (LGPL) when both are installed: the window uses the one we ship.
QT_API = "pyside6"


def desktop_router(sign_in: DesktopSignIn, cookie_secure: bool, session_hours: float) -> APIRouter:
    """``GET /desktop/open?token=...``: a window of this process signs in once (ui.gate lets it by)."""
    router = APIRouter()

    @router.get(LINK_PATH)
    def open_link(request: Request, token: str = "", next: str = "/") -> Response:
        client = request.client.host if request.client else ""
        try:
            session = sign_in.redeem(token, client)
        except SignInFailed as exc:
            return error_page(403, str(exc))
        response = RedirectResponse(safe_next(next), status_code=303)
        set_session_cookie(response, session, cookie_secure, session_hours)
        return response

    return router


def window_problem(environ: dict[str, str] | None = None) -> str | None:
    """Why no desktop window can open here, in words a user can act on; None when one can."""
    env = {"QT_API": QT_API, **(os.environ if environ is None else environ)}
    if not sys.platform.startswith("linux"):
        try:
            import webview  # noqa: F401
        except ImportError:
            return f"the desktop window needs pywebview, which is not installed: {INSTALL_HINT}"
        return None
    if not (env.get("DISPLAY") or env.get("WAYLAND_DISPLAY")):
        return ("there is no desktop session here (DISPLAY and WAYLAND_DISPLAY are unset): "
                "use `run.py serve` and a browser instead")
    if os.geteuid() == 0 and not env.get("QTWEBENGINE_DISABLE_SANDBOX"):
        return ("the window's web engine will not run as root (its sandbox needs a normal user): run "
                "`run.py desktop` as yourself (or set QTWEBENGINE_DISABLE_SANDBOX=1 where you accept that)")
    probe = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=60)
    if probe.returncode == 0:
        return None
    if "ModuleNotFoundError" in probe.stderr or "ImportError" in probe.stderr:
        return f"the desktop window needs pywebview and Qt WebEngine, which are not installed: {INSTALL_HINT}"
    said = [line.strip() for line in probe.stderr.splitlines() if line.strip()][:4]
    return ("the desktop window could not open (Qt said: " + " / ".join(said) + "). Qt needs the system's X "
            f"libraries, e.g. on Debian or Ubuntu: apt install {X_LIBRARIES}")


def _loopback_socket() -> socket.socket:
    """A listening socket on 127.0.0.1 on a port nobody else holds: bound before the app is built, not inherited."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock


class _Server:
    """uvicorn on a thread of this process, serving the given socket until stopped."""

    def __init__(self, app: Any, sock: socket.socket, options: dict[str, Any]) -> None:
        import uvicorn

        self.server = uvicorn.Server(uvicorn.Config(app, **options))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, name="enclave-server",
                                       daemon=True)

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + SERVER_START_S
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the web app did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


class _Windows(webbrowser.BaseBrowser):
    """Opens the app's own pages (the document viewer) in another window of this process, signed in.

    pywebview hands a page's new-window links to Python's ``webbrowser``; registered first, this
    keeps them inside the app, and nothing is ever handed to another browser.
    """

    def __init__(self, origin: str, sign_in: DesktopSignIn) -> None:
        super().__init__("enclave-window")
        self.origin = origin
        self.sign_in = sign_in

    def link(self, path: str) -> str:
        """The one-time sign-in URL that lands on ``path``."""
        return f"{self.origin}{LINK_PATH}?token={self.sign_in.new_link()}&next={quote(safe_next(path), safe='')}"

    def open(self, url: str, new: int = 0, autoraise: bool = True) -> bool:
        import webview

        parts = urlsplit(url)
        if f"{parts.scheme}://{parts.netloc}" != self.origin:
            log.warning("not opening %s: the desktop window opens only Enclave's own pages", url)
            return True  # handled: no other browser is tried
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        # pywebview makes a window at once only from a thread other than the GUI's own.
        threading.Thread(target=webview.create_window, args=("Enclave document", self.link(path)),
                         kwargs={"width": 1000, "height": 800}, daemon=True).start()
        return True


def run_desktop(services: Services, username: str, say: Callable[[str], None]) -> None:
    """Serve on loopback, open the window signed in as ``username``, and return when it closes."""
    os.environ.setdefault("QT_API", QT_API)  # before pywebview imports qtpy
    import webview

    from ui.app import build_app
    from ui.server import start_warm_up, uvicorn_options

    sock = _loopback_socket()
    port = sock.getsockname()[1]
    # Loopback and plain HTTP, in a window that keeps its cookie in memory: no public name, no Secure cookie.
    services.settings = services.settings.changed("web", host="127.0.0.1", port=port, public_url=None,
                                                  cookie_secure=False)
    web_settings = services.settings.web
    sign_in = DesktopSignIn(services.web.accounts, username)
    sign_in.prepare()
    app = build_app(services)
    app.include_router(desktop_router(sign_in, web_settings.cookie_secure, web_settings.session_hours))
    start_warm_up(services)
    server = _Server(app, sock, uvicorn_options(web_settings))
    server.start()
    origin = f"http://127.0.0.1:{port}"
    windows = _Windows(origin, sign_in)
    webbrowser.register(windows.name, None, windows, preferred=True)
    say(f"Enclave is open in its window as {sign_in.username} (serving on {origin}, this machine only)")
    if os.environ.get("QTWEBENGINE_REMOTE_DEBUGGING"):  # Qt's own switch: tests drive the window with it
        say("warning: QTWEBENGINE_REMOTE_DEBUGGING is set: any program on this machine can drive the signed-in "
            "window through that port; unset it unless you are testing")
    try:
        main = webview.create_window("Enclave", windows.link("/chat/"), width=1280, height=860, min_size=(480, 400))
        assert main is not None  # None only when a handler of its `initialized` event cancels it: none here
        main.events.closed += lambda: _close_others(main)
        main.events.loaded += lambda: _sign_in_again(main, windows)
        webview.start(gui="qt" if sys.platform.startswith("linux") else None, private_mode=True)
    finally:
        server.stop()
        sock.close()
    say("Enclave's window was closed: the app has stopped")


def _close_others(main: Any) -> None:
    """The main window closed: viewer windows close with it, so the app stops."""
    import webview

    for window in list(webview.windows):
        if window is not main:
            window.destroy()


def _sign_in_again(window: Any, windows: _Windows) -> None:
    """On the sign-in page (signed out, or the session ran out), sign the window in again.

    The account is the person's own and has no password to type: the page would be a dead end.
    """
    shown = urlsplit(window.get_current_url() or "")
    if shown.path == "/login":
        window.load_url(windows.link(parse_qs(shown.query).get("next", ["/chat/"])[0]))
