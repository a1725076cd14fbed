"""A TCP proxy on 127.0.0.1 in front of a server, which can hold replies back or stop listening.

It stands for the network between Enclave and an Ollama host: ``delay_s`` holds each piece
of every reply back that long (a slow or overloaded link), ``stop()`` closes
the listening socket so connections are refused (Ollama stopped), ``start()`` listens on the
same port again (Ollama back).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from types import TracebackType


class DelayingProxy:
    """Forwards 127.0.0.1:port to ``upstream``; use as a context manager."""

    def __init__(self, upstream: tuple[str, int], delay_s: float = 0.0) -> None:
        self.upstream = upstream
        self.delay_s = delay_s
        self.port = 0
        self._listener: socket.socket | None = None
        self._closing = threading.Event()
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        """The address clients are given."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Listen (again, on the same port once one was chosen) and serve connections in threads."""
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def stop(self) -> None:
        """Stop listening and drop open connections: new connections are refused, as when the server is down."""
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        with self._lock:
            dropped, self._open = list(self._open), set()
        for end in dropped:
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # stopped
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.upstream, timeout=5)
        except OSError:
            client.close()
            return
        with self._lock:
            self._open.update((client, upstream))
        threading.Thread(target=self._pump, args=(client, upstream, False), daemon=True).start()
        self._pump(upstream, client, True)

    def _pump(self, source: socket.socket, sink: socket.socket, replies: bool) -> None:
        """Copy bytes; replies wait ``delay_s`` (read when they arrive, so kept-alive connections slow too)."""
        try:
            while data := source.recv(65536):
                if replies and self.delay_s and self._closing.wait(self.delay_s):
                    return
                sink.sendall(data)
        except OSError:
            pass  # either side hung up: the other side's pump ends the pair
        finally:
            for end in (source, sink):
                with self._lock:
                    self._open.discard(end)
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)
                end.close()

    def __enter__(self) -> DelayingProxy:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._closing.set()
        self.stop()
        time.sleep(0.05)
