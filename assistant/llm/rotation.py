"""Several model servers used in turn, skipping for a while those that did not answer.

Shared by the Ollama and OpenAI-compatible backends: a request starts at the next server in
turn; a server that could not be reached is passed over until ``cool_down_s`` has passed
(it is still tried last, so a request fails only when every server fails).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from assistant.errors import BackendUnavailable, GenerationError


@dataclass(frozen=True)
class HostCheck:
    """Whether one server answers and has the model; ``problem`` names the fix when not."""

    host: str
    ok: bool
    problem: str = ""


def unanswered(checks: list[HostCheck]) -> list[str]:
    """Why no server answers with the model (each one's problem), or nothing when one does."""
    return [] if any(check.ok for check in checks) else [check.problem for check in checks]


class HostRotation:
    """Round robin over ``hosts`` with a short memory of the ones that are down."""

    def __init__(self, hosts: list[str], cool_down_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.hosts = list(hosts)
        self._cool_down_s = cool_down_s
        self._clock = clock
        self._lock = threading.Lock()
        self._next = 0
        self._down_until: dict[str, float] = {}

    def in_turn(self) -> list[str]:
        """Hosts starting at the next in turn; those cooling down go last, tried only if the rest fail."""
        with self._lock:
            start = self._next
            self._next = (start + 1) % len(self.hosts)
            now = self._clock()
            cooling = {host for host, until in self._down_until.items() if until > now}
        ordered = self.hosts[start:] + self.hosts[:start]
        return [h for h in ordered if h not in cooling] + [h for h in ordered if h in cooling]

    def is_down(self, host: str) -> bool:
        """Whether ``host`` failed recently and is still being passed over."""
        with self._lock:
            return self._down_until.get(host, 0.0) > self._clock()

    def cool_down(self, host: str) -> None:
        """Pass ``host`` over for a while: it did not answer."""
        with self._lock:
            self._down_until[host] = self._clock() + self._cool_down_s

    def mark_up(self, host: str) -> None:
        """``host`` answered: use it in turn again."""
        with self._lock:
            self._down_until.pop(host, None)


def stream_in_turn(
    rotation: HostRotation,
    attempt: Callable[[str], Iterator[str]],
    worth_another_host: Callable[[GenerationError], bool],
    servers: str,
) -> Iterator[str]:
    """Stream from the next live host; fail over only while nothing has been yielded.

    Args:
        rotation: The hosts and their health memory.
        attempt: Streams one host's answer, raising ``GenerationError`` subclasses.
        worth_another_host: Whether a failure before any text should send the request on.
        servers: What the hosts are, for the message when all fail (e.g. ``"Ollama host"``).
    """
    failures: list[GenerationError] = []
    for host in rotation.in_turn():
        started = False
        try:
            for piece in attempt(host):
                started = True
                yield piece
            rotation.mark_up(host)
            return
        except GenerationError as error:
            if started or not worth_another_host(error):
                raise
            failures.append(error)
            if isinstance(error, BackendUnavailable):
                rotation.cool_down(host)
    raise all_failed(failures, servers)


def all_failed(failures: list[GenerationError], servers: str) -> GenerationError:
    """One error for a request that no host could take: the host's own, or all of them listed."""
    if len(failures) == 1:
        return failures[0]
    reasons = "; ".join(str(failure) for failure in failures)
    if all(isinstance(failure, BackendUnavailable) for failure in failures):
        return BackendUnavailable(f"no {servers} could answer: {reasons}")
    return GenerationError(f"no {servers} could answer: {reasons}")
