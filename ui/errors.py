"""The UI's one translation of Enclave errors: the message, shown to the user as a Gradio error.

Errors a user causes or can fix (every ``EnclaveError``, and the ``gr.Error`` a handler raises
itself: "choose a question first") are expected: the log gets one line for them, and Gradio is
told not to print a traceback. Other exceptions are bugs; Gradio and uvicorn log those in full.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import gradio as gr

from assistant.errors import EnclaveError

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger(__name__)


def log_expected(error: BaseException, where: str) -> None:
    """One log line, no traceback, for an error the user is shown (``where``: the page or route)."""
    message = error.message if isinstance(error, gr.Error) else str(error)
    log.info("%s refused: %s (%s)", where, message, type(error).__name__)


@contextmanager
def _shown_to_user(where: str) -> Iterator[None]:
    """EnclaveErrors become the ``gr.Error`` the user sees; for these Gradio prints no traceback."""
    try:
        yield
    except gr.Error as exc:  # raised by a handler itself: "choose a question first"
        log_expected(exc, where)
        exc.print_exception = False
        raise
    except EnclaveError as exc:
        log_expected(exc, where)
        raise gr.Error(str(exc), print_exception=False) from exc


def shows_errors(handler: F) -> F:
    """Wrap a Gradio handler (plain or generator) so an EnclaveError becomes a ``gr.Error`` with its message."""
    where = handler.__qualname__
    if inspect.isgeneratorfunction(handler):

        @functools.wraps(handler)
        def streaming(*args: Any, **kwargs: Any) -> Any:
            with _shown_to_user(where):
                yield from handler(*args, **kwargs)

        return streaming  # type: ignore[return-value]

    @functools.wraps(handler)
    def plain(*args: Any, **kwargs: Any) -> Any:
        with _shown_to_user(where):
            return handler(*args, **kwargs)

    return plain  # type: ignore[return-value]
