"""The answering backends: one list, read by the settings, the factory, the answering service and the settings page.

To add a backend, write one module with its chat model, its settings section and its ``SPEC``,
and add that ``SPEC`` to ``BACKENDS`` (docs/extending.md). ``generation.backend = "auto"`` tries
the backends whose ``auto`` says so, in this order, and takes the first that can answer.
"""

from __future__ import annotations

from assistant.errors import ConfigError
from assistant.llm import embedded, ollama, openai_compat
from assistant.llm.base import BackendSpec

BACKENDS: list[BackendSpec] = [
    ollama.SPEC,
    openai_compat.SPEC,
    embedded.SPEC,
]


def backend_names() -> list[str]:
    """The registered backends' names, in registry order."""
    return [spec.name for spec in BACKENDS]


def find_backend(name: str) -> BackendSpec | None:
    """The backend registered as ``name``, or None."""
    return next((spec for spec in BACKENDS if spec.name == name), None)


def get_backend(name: str) -> BackendSpec:
    """The backend registered as ``name``; raises ConfigError for any other name."""
    spec = find_backend(name)
    if spec is None:
        raise ConfigError(f"no answering backend is registered as {name!r}: use one of {', '.join(backend_names())}")
    return spec
