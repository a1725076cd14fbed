"""The test session's network guard: what leaves the machine is blocked and fails the test; loopback works."""

from __future__ import annotations

import contextlib
import socket
import threading
import urllib.request
from collections.abc import Callable

import pytest

from tests.conftest import BLOCKED_ATTEMPTS


def _drain() -> list[str]:
    """Take the attempts this test made on purpose, so the teardown check does not fail it."""
    taken, BLOCKED_ATTEMPTS[:] = list(BLOCKED_ATTEMPTS), []
    return taken


@pytest.mark.parametrize(("what", "attempt"), [
    ("outbound connection", lambda: socket.create_connection(("203.0.113.7", 443), timeout=1)),
    ("outbound connection", lambda: socket.socket(socket.AF_INET6).connect(("2001:db8::1", 443))),
    ("datagram", lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"\0" * 12, ("8.8.8.8", 53))),
    ("DNS lookup", lambda: socket.getaddrinfo("example.com", 443)),
    ("DNS lookup", lambda: socket.gethostbyname("pypi.org")),
    ("DNS lookup", lambda: urllib.request.urlopen("http://huggingface.co/api/models", timeout=1)),
])
def test_leaving_the_machine_is_blocked_and_recorded(what: str, attempt: Callable[[], object]) -> None:
    with pytest.raises(OSError, match="test network guard"):
        attempt()
    taken = _drain()
    assert len(taken) == 1 and what in taken[0]


def test_an_attempt_the_code_swallows_is_still_recorded() -> None:
    def careless() -> None:
        with contextlib.suppress(OSError):  # what a library falling back to "offline" does
            socket.create_connection(("198.51.100.1", 80), timeout=1)

    careless()
    assert [a for a in _drain() if "198.51.100.1" in a]


def test_loopback_connections_datagrams_and_localhost_lookups_work(
    record_figure: Callable[[str, object], None]
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        accepted = threading.Thread(target=lambda: server.accept()[0].close())
        accepted.start()
        with socket.create_connection(("localhost", port), timeout=5):
            pass
        accepted.join(timeout=5)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp_in, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp_out:
        udp_in.bind(("127.0.0.1", 0))
        udp_out.sendto(b"ping", udp_in.getsockname())
        assert udp_in.recv(4) == b"ping"
    assert {info[4][0] for info in socket.getaddrinfo("localhost", 80)} <= {"127.0.0.1", "::1"}
    assert BLOCKED_ATTEMPTS == []
    record_figure("guarded entry points", "connect, connect_ex, sendto, sendmsg, getaddrinfo, gethostbyname(_ex)")
