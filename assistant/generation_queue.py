"""A fair (first come, first served) queue in front of the model, with each waiter's place in line.

The embedded llama.cpp model writes one answer at a time and a model server answers a
configured number at once; every other question waits here, in arrival order, for at most
``generation.queue_wait_s``. While it waits, ``GenerationQueue.enter`` yields how many
requests are ahead of it whenever that changes (and again every ``heartbeat_s``, so a
caller that went away is noticed: closing the generator gives its place up). Retrieval is
never queued: only the model call goes through here.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from collections.abc import Generator
from dataclasses import dataclass

from assistant.errors import ModelBusy


@dataclass(frozen=True)
class Place:
    """Where a waiting request stands: requests that must start or finish before it, and seconds waited."""

    ahead: int
    waited_s: float


class GenerationQueue:
    """Admits up to ``slots`` generations at once, the rest first come, first served."""

    def __init__(self, slots: int, max_wait_s: float, heartbeat_s: float = 2.0) -> None:
        if slots < 1:
            raise ValueError("a generation queue needs at least one slot")
        self._slots = slots
        self.max_wait_s = max_wait_s
        self.heartbeat_s = heartbeat_s
        self._waiting: deque[int] = deque()
        self._active = 0
        self._tickets = itertools.count()
        self._changed = threading.Condition()

    @property
    def slots(self) -> int:
        """Generations admitted at once."""
        return self._slots

    def resize(self, slots: int) -> None:
        """Admit ``slots`` at once from now on (the model was chosen or changed)."""
        with self._changed:
            self._slots = max(1, slots)
            self._changed.notify_all()

    def load(self) -> tuple[int, int]:
        """Generations running and requests waiting, right now."""
        with self._changed:
            return self._active, len(self._waiting)

    def enter(self) -> Generator[Place, None, None]:
        """Wait for a slot, yielding the place in line while it is not yet this request's turn.

        When the generator is exhausted the caller holds a slot and must call ``leave`` once
        done; closing the generator before then gives the place up. Raises ``ModelBusy`` after
        ``max_wait_s``.
        """
        ticket = next(self._tickets)
        started = time.monotonic()
        with self._changed:
            self._waiting.append(ticket)
        admitted = shown = False
        try:
            while True:
                ahead, admitted = self._try_admit(ticket, started, wait=shown)
                if admitted:  # never yield holding a slot: a caller closing us then would leak it
                    return
                shown = True
                yield Place(ahead, time.monotonic() - started)
        finally:
            if not admitted:
                with self._changed:
                    self._waiting.remove(ticket)
                    self._changed.notify_all()

    def leave(self) -> None:
        """Give a slot back (the answer is finished, failed or abandoned)."""
        with self._changed:
            self._active -= 1
            self._changed.notify_all()

    def _ahead(self, ticket: int) -> int:
        """Requests that must start (those waiting in front) or finish (when all slots are busy) first."""
        return self._waiting.index(ticket) + max(0, self._active - self._slots + 1)

    def _try_admit(self, ticket: int, started: float, wait: bool) -> tuple[int, bool]:
        """Take a slot if this ticket is first in line and one is free; else (``wait``) until the place changes."""
        with self._changed:
            ahead = self._ahead(ticket)
            if ahead > 0 and not wait:
                return ahead, False
            deadline = started + self.max_wait_s
            pause_until = time.monotonic() + self.heartbeat_s
            while ahead > 0:
                now = time.monotonic()
                if now >= deadline:
                    raise ModelBusy(
                        f"the model is busy: {ahead} request{'s' if ahead != 1 else ''} still ahead of yours after "
                        f"{self.max_wait_s:g} s of waiting; try again in a minute"
                    )
                if now >= pause_until:
                    return ahead, False
                self._changed.wait(min(deadline, pause_until) - now)
                now_ahead = self._ahead(ticket)
                if now_ahead != ahead and now_ahead > 0:
                    return now_ahead, False
                ahead = now_ahead
            self._waiting.popleft()
            self._active += 1
            self._changed.notify_all()
            return 0, True
