"""End to end in a network namespace with only loopback: the app, traced, never tries to reach another host.

``run.py serve`` runs under ``strace -f`` (all its threads and child processes), Chromium
drives a whole session (sign in, ingest a folder, ask, click the citation, open the
document), and every connect/sendto/sendmsg the server made is parsed from the trace.
"""

from __future__ import annotations

import ipaddress
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT

pytestmark = pytest.mark.slow
SYSCALL = re.compile(r"^\d+\s+(connect|sendto|sendmsg)\((.*)$")
FAMILY = re.compile(r"sa_family=(AF_\w+)")
ADDRESS = re.compile(r'inet_addr\("([^"]+)"\)|inet_pton\(AF_INET6?, "([^"]+)"')


def outbound_attempts(trace: str) -> tuple[int, list[str]]:
    """(socket calls that named an address, those whose address is not loopback) in strace output."""
    named, outside = 0, []
    for line in trace.splitlines():
        call = SYSCALL.match(line)
        family = FAMILY.search(line) if call else None
        if family is None:
            continue  # resumed halves, or a send on a connected socket (its connect was counted)
        named += 1
        if family.group(1) not in ("AF_INET", "AF_INET6"):
            continue  # AF_UNIX, AF_NETLINK, AF_UNSPEC never leave the machine
        found = ADDRESS.search(line)
        address = ipaddress.ip_address(found.group(1) or found.group(2)) if found else None
        mapped = getattr(address, "ipv4_mapped", None)
        if address is None or not (mapped or address).is_loopback:
            outside.append(line.strip())
    return named, outside


def test_parser_flags_what_leaves_and_passes_loopback_and_unix() -> None:
    trace = "\n".join([
        '7 connect(3, {sa_family=AF_INET, sin_port=htons(80), sin_addr=inet_addr("10.1.2.3")}, 16) = -1 ENETUNREACH',
        '7 connect(4, {sa_family=AF_INET6, sin6_port=htons(443), sin6_flowinfo=htonl(0), '
        'inet_pton(AF_INET6, "2001:4860:4860::8888", &sin6_addr), sin6_scope_id=0}, 28 <unfinished ...>',
        '7 sendto(5, "x", 1, 0, {sa_family=AF_INET, sin_port=htons(53), sin_addr=inet_addr("8.8.8.8")}, 16) = 1',
        '7 connect(6, {sa_family=AF_INET, sin_port=htons(8080), sin_addr=inet_addr("127.0.0.1")}, 16) = 0',
        '7 connect(6, {sa_family=AF_INET6, sin6_port=htons(8080), inet_pton(AF_INET6, "::1", &sin6_addr)}, 28) = 0',
        '7 connect(8, {sa_family=AF_UNIX, sun_path="/run/x.sock"}, 110) = 0',
        "7 sendto(9, \"x\", 1, MSG_NOSIGNAL, NULL, 0) = 1",
        "7 <... connect resumed>) = 0",
    ])
    named, outside = outbound_attempts(trace)
    assert named == 6
    assert [re.search(r"\d+\.\d+\.\d+\.\d+|[0-9a-f:]{6,}", line).group(0) for line in outside] == [  # type: ignore[union-attr]
        "10.1.2.3", "2001:4860:4860::8888", "8.8.8.8"]


def _namespaces_allowed() -> bool:
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True)
    return probe.returncode == 0


def test_served_app_in_a_loopback_only_namespace_never_reaches_out(
    tmp_path: Path, record_figure: Callable[[str, object], None]
) -> None:
    for tool, package in (("strace", "strace"), ("unshare", "util-linux"), ("ip", "iproute2")):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (Debian's {package}; .ci/run installs it)")
    if not Path("/usr/bin/chromium").is_file():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    traced = subprocess.run(["strace", "-f", "-qq", "-e", "trace=connect", "true"], capture_output=True, text=True)
    if traced.returncode != 0:
        pytest.skip(f"strace cannot trace here (ptrace not permitted?): {traced.stderr.strip()[:200]}")
    driver = [sys.executable, "-m", "tests.security.netns_driver", str(tmp_path)]
    isolated = _namespaces_allowed()
    command = ["unshare", "-n", "--", *driver] if isolated else [*driver, "--no-netns"]
    run = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=540)
    log = (tmp_path / "server.log").read_text() if (tmp_path / "server.log").exists() else ""
    assert run.returncode == 0, f"{run.stderr[-3000:]}\nserver log:\n{log[-2000:]}"
    result = json.loads((tmp_path / "result.json").read_text())
    assert "added 2," in result["ingest"] and "leave.md" in result["cited"] and result["viewer"] == "leave.md"
    assert result["ollama_chats"] >= 1
    foreign = [u for u in result["requests"] if not u.startswith(("http://127.0.0.1:", "data:", "blob:"))]
    assert foreign == []
    named, outside = outbound_attempts((tmp_path / "strace-server.txt").read_text())
    _, browser_outside = outbound_attempts((tmp_path / "strace-browser.txt").read_text())
    record_figure("network namespace", "loopback only" if isolated else "not permitted here: strace alone")
    record_figure("app socket calls naming an address (connect/sendto/sendmsg)", named)
    record_figure("app attempts to a non-loopback address", len(outside))
    record_figure("Chromium's own attempts to a non-loopback address (not the app's)", len(browser_outside))
    record_figure("page requests to anywhere but the app", len(foreign))
    assert named > 0, "strace saw no socket calls at all, so it traced nothing"
    assert outside == [], "\n".join(outside[:20])
    if isolated:
        assert "lo:" in result["interfaces"] and result["interfaces"].count(": <") == 1
