"""Inside a network namespace with only loopback: serve the app under strace and drive it with Chromium.

Usage (as root): unshare -n -- python -m tests.security.netns_driver WORK_DIR [--no-netns]

``run.py serve`` runs unchanged under ``strace -f`` (every thread and child process), and so
does Chromium (through a wrapper script), both recording each connect/sendto/sendmsg with
its address into WORK_DIR/strace-*.txt. The browser signs in as admin, ingests a folder,
asks, clicks a citation and opens the cited document. Ollama is a protocol-level stand-in
on the namespace's loopback. WORK_DIR/result.json says what was seen; the test judges it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.fake_ollama import FakeOllama, FakeOllamaScript

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
# As tests/ui/test_browser.py runs it: Chromium's own background probes (DNS, update checks) off.
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run", "--disable-sync", "--disable-quic"]
TRACE = ["strace", "-f", "-qq", "--seccomp-bpf", "-e", "trace=connect,sendto,sendmsg"]
ADMIN_PASSWORD = "netns-admin-password-1"
DOCS = {
    "leave.md": "# Leave\n\nEmployees accrue 1.5 days of paid leave per month, up to 30 days a year.\n",
    "parking.md": "# Parking\n\nParking permits are issued by the facilities desk on Mondays.\n",
}
QUESTION = "How many days of paid leave do employees accrue per month?"
REPLY = "Employees accrue 1.5 days of paid leave per month [1]."


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for_port(port: int, server: subprocess.Popen[bytes], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited with {server.returncode}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError(f"the server did not listen on {port} within {seconds} s")


def start_server(work: Path, share: Path, ollama_url: str, port: int) -> subprocess.Popen[bytes]:
    """``run.py serve`` under strace, configured through ENCLAVE_* variables only."""
    env = {**os.environ, "ENCLAVE_ADMIN_PASSWORD": ADMIN_PASSWORD, "ENCLAVE_GENERATION__BACKEND": "ollama",
           "ENCLAVE_GENERATION__OLLAMA__HOSTS": json.dumps([ollama_url]), "ENCLAVE_WEB__COOKIE_SECURE": "false",
           "ENCLAVE_WEB__INGEST_ROOTS": json.dumps([str(share.parent)])}
    command = [*TRACE, "-o", str(work / "strace-server.txt"), sys.executable, str(PROJECT_ROOT / "run.py"),
               "serve", "--no-browser", "--port", str(port), "--data-dir", str(work / "data")]
    log = (work / "server.log").open("wb")
    return subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)


def traced_chromium(work: Path) -> Path:
    """A wrapper that runs Chromium, and every process it starts, under strace."""
    wrapper = work / "chromium-traced"
    trace = " ".join(TRACE)
    wrapper.write_text(f'#!/bin/sh\nexec {trace} -o {work / "strace-browser.txt"} {CHROMIUM} "$@"\n')
    wrapper.chmod(0o755)
    return wrapper


def drive(page: Any, url: str, share: Path, seen: dict[str, Any]) -> None:
    """Sign in, ingest, ask, click the citation, open the cited document."""
    page.goto(url + "/admin/")
    page.fill("#username", "admin")
    page.fill("#password", ADMIN_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("#ingest-folder textarea", timeout=60_000)
    page.fill("#ingest-collection input", "handbook")
    page.keyboard.press("Enter")
    page.fill("#ingest-folder textarea", str(share))
    page.wait_for_function("document.querySelector('#ingest-collection input').value === 'handbook'")
    page.click("#ingest-start")
    page.wait_for_selector("#ingest-progress .job[data-state=done]", timeout=120_000)
    seen["ingest"] = page.inner_text("#ingest-progress")
    page.goto(url + "/chat/")
    page.wait_for_selector("#question textarea", timeout=60_000)
    page.fill("#question textarea", QUESTION)
    page.click("#ask")
    page.wait_for_selector("#transcript .meta:has-text('Answered by')", timeout=120_000)
    page.click("#transcript a.cite >> nth=0")
    seen["cited"] = page.locator(".source:target .source-head").inner_text()
    with page.context.expect_page() as opened:
        page.locator(".source:target a.open-doc").click()
    viewer = opened.value
    viewer.wait_for_load_state()
    seen["viewer"] = viewer.inner_text("h1")


def run_browser(work: Path, url: str, share: Path) -> dict[str, Any]:
    """Chromium (traced) through the whole user journey; every request the pages made is listed."""
    from playwright.sync_api import sync_playwright

    seen: dict[str, Any] = {"requests": []}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(traced_chromium(work)), args=ARGS)
        context = browser.new_context()
        context.on("request", lambda request: seen["requests"].append(request.url))
        try:
            drive(context.new_page(), url, share, seen)
        finally:
            context.close()
            browser.close()
    return seen


def main() -> None:
    work, in_namespace = Path(sys.argv[1]), "--no-netns" not in sys.argv
    if in_namespace:  # a new namespace's loopback starts down
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    share = work / "shares" / "handbook"
    share.mkdir(parents=True)
    for name, text in DOCS.items():
        (share / name).write_text(text, encoding="utf-8")
    result: dict[str, Any] = {"interfaces": subprocess.run(["ip", "-o", "link"], capture_output=True,
                                                           text=True, check=True).stdout}
    port = _free_port()
    with FakeOllama(FakeOllamaScript(reply=REPLY)) as ollama:
        server = start_server(work, share, ollama.url, port)
        try:
            _wait_for_port(port, server, 180)
            result.update(run_browser(work, f"http://127.0.0.1:{port}", share))
            result["ollama_chats"] = len(ollama.chat_requests())
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()
    (work / "result.json").write_text(json.dumps(result), encoding="utf-8")


if __name__ == "__main__":
    main()
