"""A streamed HTTP response that closes its source when the client goes away.

Starlette stops pulling from a streamed body when the client disconnects, but leaves a
synchronous generator suspended until the garbage collector finds it; an answer suspended
like that would hold the model (or its place in line) long after its reader left. This
response closes the source as soon as the response ends, however it ended.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import anyio
import anyio.to_thread
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send


class ClosingIterator:
    """Steps a source from worker threads one at a time; ``close`` waits for a running step, then closes it."""

    def __init__(self, source: Iterator[str]) -> None:
        self._source = source
        self._lock = threading.Lock()
        self._closed = False

    def __iter__(self) -> ClosingIterator:
        return self

    def __next__(self) -> str:
        with self._lock:
            if self._closed:
                raise StopIteration
            return next(self._source)

    def close(self) -> None:
        """Close the source (its ``finally`` blocks run, e.g. giving the model back); later steps end at once."""
        with self._lock:
            self._closed = True
            if isinstance(self._source, Generator):
                self._source.close()


class ClosingStreamingResponse(StreamingResponse):
    """``StreamingResponse`` over a synchronous generator that is closed when the response ends or is cut."""

    def __init__(self, source: Iterator[str], **kwargs: Any) -> None:
        self._source = ClosingIterator(source)
        super().__init__(self._source, **kwargs)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(self._source.close)


def worker_threads(threads: int) -> Callable[[Any], AbstractAsyncContextManager[None]]:
    """A lifespan that lets ``threads`` requests run in worker threads at once (AnyIO's default is 40).

    Synchronous routes and streamed answers run in these threads; an answer waiting in line
    for the model holds one, and with the default 40 such answers would leave none for the
    answer being written or for retrieval.
    """

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = threads
        yield

    return lifespan
