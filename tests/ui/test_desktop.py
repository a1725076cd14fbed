"""``run.py desktop``: the one-time sign-in link over HTTP, the messages where no window can open, and
the real window under Xvfb asking about a followed folder and citing it."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fake_ollama import FakeOllama, FakeOllamaScript
from tests.ui.conftest import free_port
from tests.ui.devtools import DevToolsPage, pages

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DOCS = {
    "leave.md": "# Leave\n\nEmployees accrue 1.5 days of paid leave per month, up to 30 days a year.\n",
    "parking.md": "# Parking\n\nParking permits are issued by the facilities desk on Mondays.\n",
}
QUESTION = "How many days of paid leave do employees accrue per month?"
REPLY = "Employees accrue 1.5 days of paid leave per month [1]."


@pytest.fixture
def desktop_app(make_services: Any) -> Iterator[tuple[str, Any]]:
    """The app as `run.py desktop` builds it, served on loopback; yields its URL and the sign-in."""
    import uvicorn

    from assistant.desktop import DesktopSignIn
    from ui.app import build_app
    from ui.desktop import desktop_router
    from ui.server import uvicorn_options

    services = make_services(web={"cookie_secure": False})
    sign_in = DesktopSignIn(services.web.accounts, "pat")
    sign_in.prepare()
    app = build_app(services)
    app.include_router(desktop_router(sign_in, cookie_secure=False, session_hours=1))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, **uvicorn_options(services.settings.web)))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", sign_in
    server.should_exit = True
    thread.join(timeout=10)


def test_the_window_link_signs_in_once_and_a_wrong_one_is_refused(desktop_app: tuple[str, Any]) -> None:
    url, sign_in = desktop_app
    with httpx.Client(base_url=url, headers={"accept": "text/html"}) as client:
        wrong = client.get("/desktop/open", params={"token": "guessed", "next": "/chat/"})
        assert wrong.status_code == 403 and "not valid" in wrong.text and "enclave_session" not in wrong.cookies
        token = sign_in.new_link()
        opened = client.get("/desktop/open", params={"token": token, "next": "/chat/"})
        assert opened.status_code == 303 and opened.headers["location"] == "/chat/"
        assert client.get("/chat/").status_code == 200  # signed in: no sign-in page
    with httpx.Client(base_url=url, headers={"accept": "text/html"}) as another:  # another process, same link
        again = another.get("/desktop/open", params={"token": token})
        assert again.status_code == 403 and "works once" in again.text
        assert another.get("/chat/").headers["location"].startswith("/login")


def _desktop(args: list[str], env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(PROJECT_ROOT / "run.py"), "desktop", *args], cwd=PROJECT_ROOT,
                          env=env, capture_output=True, text=True, timeout=timeout)


def _free_display() -> str:
    """A display number no X server holds."""
    taken = {p.name for p in Path("/tmp/.X11-unix").glob("X*")} if Path("/tmp/.X11-unix").is_dir() else set()
    return next(f":{n}" for n in range(180, 400) if f"X{n}" not in taken)


def test_without_a_desktop_session_it_says_to_use_a_browser(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    result = _desktop(["--data-dir", str(tmp_path / "data")], env)
    assert result.returncode == 1
    assert "no desktop session" in result.stderr and "run.py serve" in result.stderr
    assert not (tmp_path / "data").exists()  # refused before anything was made


def test_where_the_window_toolkit_cannot_open_it_says_what_to_install(tmp_path: Path) -> None:
    pytest.importorskip("webview")
    # A display with no X server behind it: Qt's xcb platform cannot start, as on a system without its libraries.
    env = {**os.environ, "DISPLAY": _free_display(), "QTWEBENGINE_DISABLE_SANDBOX": "1"}
    env.pop("WAYLAND_DISPLAY", None)
    result = _desktop(["--data-dir", str(tmp_path / "data")], env)
    assert result.returncode == 1
    assert "the desktop window could not open" in result.stderr and "apt install libxcb-cursor0" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="the message for root: run as root to see it")
def test_as_root_it_says_the_web_engine_will_not_run(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "QTWEBENGINE_DISABLE_SANDBOX"}
    env["DISPLAY"] = _free_display()
    result = _desktop(["--data-dir", str(tmp_path / "data")], env)
    assert result.returncode == 1 and "will not run as root" in result.stderr and "as yourself" in result.stderr


@pytest.fixture
def xvfb() -> Iterator[str]:
    """A virtual X display for the window; the test skips where Xvfb is not installed."""
    if shutil.which("Xvfb") is None:
        pytest.skip("Xvfb is not installed (apt-get install xvfb)")
    read, write = os.pipe()
    server = subprocess.Popen(["Xvfb", "-displayfd", str(write), "-screen", "0", "1280x860x24", "-nolisten", "tcp"],
                              pass_fds=(write,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write)
    with os.fdopen(read) as numbers:
        display = f":{numbers.readline().strip()}"
    yield display
    server.terminate()
    server.wait(timeout=10)


def _window_env(display: str, devtools_port: int, ollama_url: str) -> dict[str, str]:
    env = {**os.environ, "DISPLAY": display, "QTWEBENGINE_REMOTE_DEBUGGING": f"127.0.0.1:{devtools_port}",
           "ENCLAVE_GENERATION__BACKEND": "ollama", "ENCLAVE_GENERATION__OLLAMA__HOSTS": json.dumps([ollama_url])}
    env.pop("WAYLAND_DISPLAY", None)
    if os.geteuid() == 0:  # CI runs as root, where Chromium's sandbox cannot start
        env["QTWEBENGINE_DISABLE_SANDBOX"] = "1"
    return env


def _page_at(devtools_port: int, path: str, app: subprocess.Popen[str], timeout_s: float,
             title: str = "") -> DevToolsPage:
    """A window's page once it shows ``path`` of the app, titled with ``title`` (signed in by itself)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert app.poll() is None, "run.py desktop exited"
        try:
            shown = [p for p in pages(devtools_port)
                     if p["url"].split("#")[0].endswith(path) and title in p.get("title", "")]
        except OSError:  # the web engine has not opened its port yet
            shown = []
        if shown:
            return DevToolsPage(shown[0]["webSocketDebuggerUrl"])
        time.sleep(0.5)
    raise TimeoutError(f"the window did not show {path} within {timeout_s} s")


def _wait_for_ingest(data_dir: Path, env: dict[str, str], timeout_s: float) -> None:
    """Wait until the folder's first run is done, as `run.py sources list` reports it."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        listed = subprocess.run([sys.executable, str(PROJECT_ROOT / "run.py"), "sources", "list", "--json",
                                 "--data-dir", str(data_dir)], cwd=PROJECT_ROOT, env=env, capture_output=True,
                                text=True, timeout=60, check=True)
        runs = [s["last_run"] for s in json.loads(listed.stdout)["sources"]]
        if runs and all(run and run["state"] == "done" for run in runs):
            return
        time.sleep(1)
    raise TimeoutError("the folder was not ingested in time")


def _close_window(display: str, title: str) -> None:
    """Ask the window to close as a window manager does when its close button is clicked (WM_DELETE_WINDOW)."""
    from Xlib import X, protocol
    from Xlib import display as xdisplay

    screen = xdisplay.Display(display)
    try:
        windows = [screen.screen().root]
        while windows:
            window = windows.pop()
            if window.get_wm_name() == title:
                delete = screen.intern_atom("WM_DELETE_WINDOW")
                message = protocol.event.ClientMessage(window=window, client_type=screen.intern_atom("WM_PROTOCOLS"),
                                                       data=(32, [delete, X.CurrentTime, 0, 0, 0]))
                window.send_event(message)
                screen.flush()
                return
            windows.extend(window.query_tree().children)
        raise AssertionError(f"no window titled {title}")
    finally:
        screen.close()


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_the_window_answers_about_a_followed_folder_with_citations(xvfb: str, tmp_path: Path,
                                                                   screenshots: Path) -> None:
    pytest.importorskip("webview")
    pytest.importorskip("Xlib")
    from ui.desktop import window_problem

    folder = tmp_path / "Handbook"
    folder.mkdir()
    for name, text in DOCS.items():
        (folder / name).write_text(text, encoding="utf-8")
    devtools_port, data_dir = free_port(), tmp_path / "data"
    with FakeOllama(FakeOllamaScript(reply=REPLY)) as ollama:
        env = _window_env(xvfb, devtools_port, ollama.url)
        problem = window_problem(env)
        assert problem is None, problem  # Xvfb is here: the toolkit must be too (make install brings it)
        app = subprocess.Popen([sys.executable, str(PROJECT_ROOT / "run.py"), "desktop", "--folder", str(folder),
                                "--data-dir", str(data_dir)], cwd=PROJECT_ROOT, env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            _drive_window(app, env, devtools_port, data_dir, xvfb, screenshots)
        finally:
            if app.poll() is None:
                os.killpg(app.pid, signal.SIGKILL)
                app.wait()


def _drive_window(app: subprocess.Popen[str], env: dict[str, str], devtools_port: int, data_dir: Path,
                  display: str, screenshots: Path) -> None:
    chat = _page_at(devtools_port, "/chat/", app, timeout_s=90)  # signed in by itself: no sign-in page
    chat.wait_for("document.querySelector('#question textarea')", 60)
    second = _desktop(["--data-dir", str(data_dir)], env)  # a second window on the same data dir
    assert second.returncode == 1 and "already writing the index" in second.stderr, second.stderr
    _wait_for_ingest(data_dir, env, 90)
    chat.type_into("#question textarea", QUESTION)
    chat.evaluate("document.querySelector('#ask').click()")
    chat.wait_for("[...document.querySelectorAll('#transcript .meta')].some(m => m.innerText.includes('Answered by'))",
                  90)
    chat.evaluate("document.querySelector('#transcript a.cite').click()")
    chat.wait_for("document.querySelector('.source:target .source-head')", 10)
    assert "leave.md" in chat.evaluate("document.querySelector('.source:target .source-head').innerText")
    chat.screenshot(screenshots / "desktop-window.png")
    cited = chat.evaluate("new URL(document.querySelector('.source:target a.open-doc').href).pathname")
    chat.evaluate("document.querySelector('.source:target a.open-doc').click()")
    viewer = _page_at(devtools_port, cited, app, timeout_s=30, title="leave.md")  # a second window, signed in
    assert viewer.evaluate("document.querySelector('h1').innerText") == "leave.md"
    viewer.close()
    chat.evaluate("window.beforeSignOut = true; document.querySelector('button.signout').click()")
    # No sign-in page the password-less account could not pass: the window is signed in again.
    chat.wait_for("!window.beforeSignOut && location.pathname === '/chat/' && "
                  "document.querySelector('#question textarea')", 30)
    port = int(chat.evaluate("location.port"))
    chat.close()
    assert _listening(port)
    _close_window(display, "Enclave")
    output, _ = app.communicate(timeout=30)
    assert app.returncode == 0, output
    assert "the app has stopped" in output and not _listening(port)
    assert "QTWEBENGINE_REMOTE_DEBUGGING is set" in output  # the test's open DevTools port was pointed out
