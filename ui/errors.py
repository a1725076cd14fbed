"""The UI's one translation of Enclave errors: the message, shown to the user as a Gradio error."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

import gradio as gr

from assistant.errors import EnclaveError

F = TypeVar("F", bound=Callable[..., Any])


def shows_errors(handler: F) -> F:
    """Wrap a Gradio handler (plain or generator) so an EnclaveError becomes a ``gr.Error`` with its message."""
    if inspect.isgeneratorfunction(handler):

        @functools.wraps(handler)
        def streaming(*args: Any, **kwargs: Any) -> Any:
            try:
                yield from handler(*args, **kwargs)
            except EnclaveError as exc:
                raise gr.Error(str(exc)) from exc

        return streaming  # type: ignore[return-value]

    @functools.wraps(handler)
    def plain(*args: Any, **kwargs: Any) -> Any:
        try:
            return handler(*args, **kwargs)
        except EnclaveError as exc:
            raise gr.Error(str(exc)) from exc

    return plain  # type: ignore[return-value]
