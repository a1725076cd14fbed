"""A page of a running Qt WebEngine window, driven over the Chrome DevTools Protocol.

Playwright cannot attach to Qt WebEngine (it has no browser contexts to manage), so the desktop
window's test speaks the protocol itself: evaluate a script, wait for a condition, take a screenshot.
Qt opens the port when ``QTWEBENGINE_REMOTE_DEBUGGING`` is set in the window's environment.
"""

from __future__ import annotations

import base64
import itertools
import json
import time
import urllib.request
from pathlib import Path
from typing import Any

import websocket


def pages(port: int) -> list[dict[str, Any]]:
    """The pages the window's web engine shows now (url, title, the socket to drive each)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/json", timeout=5) as answer:
        return [p for p in json.load(answer) if p.get("type") == "page"]


class DevToolsPage:
    """One page: scripts run in it, conditions awaited, screenshots taken."""

    def __init__(self, socket_url: str) -> None:
        self.socket = websocket.create_connection(socket_url, timeout=30, suppress_origin=True)
        self.ids = itertools.count(1)

    def close(self) -> None:
        """Hang up (the page stays open)."""
        self.socket.close()

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one command and return its result (events that arrive meanwhile are skipped)."""
        sent = next(self.ids)
        self.socket.send(json.dumps({"id": sent, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv())
            if message.get("id") == sent:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return dict(message.get("result", {}))

    def evaluate(self, script: str) -> Any:
        """The value of a JavaScript expression in the page."""
        result = self.call("Runtime.evaluate", expression=script, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"the page's script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, script: str, timeout_s: float) -> None:
        """Wait until a JavaScript expression is truthy in the page."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if self.evaluate(f"!!({script})"):
                    return
            except RuntimeError:  # the page is between two documents
                pass
            time.sleep(0.25)
        raise TimeoutError(f"still false after {timeout_s} s: {script}")

    def type_into(self, selector: str, text: str) -> None:
        """Focus a field and type into it as a keyboard would (the page's own input handlers run)."""
        self.evaluate(f"document.querySelector({json.dumps(selector)}).focus()")
        self.call("Input.insertText", text=text)

    def screenshot(self, path: Path) -> None:
        """Save what the window shows as a PNG."""
        path.write_bytes(base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"]))
