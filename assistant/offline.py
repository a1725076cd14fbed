"""Air-gap switches that must be set before any model or web library is imported, and the startup check.

``enforce_offline`` runs first thing in every entry point (``run.py``, parser processes, the
web app's build). ``assert_offline`` runs when the web app is built and refuses to serve if
anything would let a library reach the internet: an offline switch unset, a model library
imported before the switches were set, llama-index's NLTK or tiktoken data not on local disk
(llama-index downloads them when missing), a Gradio page with analytics or a share link on.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from assistant.errors import ConfigError

OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_HUB_DISABLE_IMPLICIT_TOKEN": "1",
    "DISABLE_TELEMETRY": "1",
    "DO_NOT_TRACK": "1",
    "GRADIO_ANALYTICS_ENABLED": "False",
    "GRADIO_SHARE": "False",
    "ANONYMIZED_TELEMETRY": "False",
    "TOKENIZERS_PARALLELISM": "false",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
}
# Data llama-index loads on first use and downloads when absent: the folder it ships inside
# its own package, and a file there that proves the data is present.
LOCAL_DATA = {
    "NLTK_DATA": ("nltk_cache", "tokenizers/punkt_tab"),
    "TIKTOKEN_CACHE_DIR": ("tiktoken_cache", "9b5ad71b2ce5302211f9c61530b329a4922fc6a4"),
}


def llama_index_static() -> Path | None:
    """llama-index's bundled ``_static`` folder, found without importing llama-index itself."""
    spec = importlib.util.find_spec("llama_index.core")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "_static"


def enforce_offline() -> None:
    """Force every model library into offline mode, switch off telemetry and point at local data.

    Values already set to the offline value are kept; anything else is overwritten,
    because an air-gapped install must not depend on the caller's environment.
    """
    os.environ.update(OFFLINE_ENV)
    static = llama_index_static()
    if static is not None:
        for key, (folder, _probe) in LOCAL_DATA.items():
            os.environ[key] = str(static / folder)


def _flag(value: str | None) -> bool | None:
    """A switch's meaning, however it is spelt (Gradio rewrites HF_HUB_DISABLE_TELEMETRY=1 as True)."""
    text = (value or "").strip().lower()
    return True if text in ("1", "true", "yes", "on") else False if text in ("0", "false", "no", "off") else None


def _env_problems() -> list[str]:
    problems = [f"{key} is {os.environ.get(key)!r}, not {value!r}" for key, value in OFFLINE_ENV.items()
                if _flag(os.environ.get(key)) != _flag(value)]
    hub = sys.modules.get("huggingface_hub.constants")
    if hub is not None and not getattr(hub, "HF_HUB_OFFLINE", False):
        problems.append("huggingface_hub was imported before HF_HUB_OFFLINE was set")
    for key, (_folder, probe) in LOCAL_DATA.items():
        where = os.environ.get(key)
        if not where or not (Path(where) / probe).exists():
            problems.append(f"{key} ({where}) lacks {probe}, so llama-index would download it")
    return problems


def offline_problems(pages: Iterable[Any] = ()) -> list[str]:
    """Everything that would let this process reach the internet; empty when air-gapped."""
    problems = _env_problems()
    for page in pages:
        if getattr(page, "analytics_enabled", False):
            problems.append(f"Gradio analytics are on for {type(page).__name__}")
        if getattr(page, "share", False) or getattr(page, "share_url", None):
            problems.append(f"Gradio would open a public share link for {type(page).__name__}")
    return problems


def assert_offline(pages: Iterable[Any] = ()) -> None:
    """Refuse to start when anything could reach the internet (``pages``: the Gradio Blocks served)."""
    problems = offline_problems(pages)
    if problems:
        raise ConfigError("refusing to start, not air-gapped: " + "; ".join(problems))
