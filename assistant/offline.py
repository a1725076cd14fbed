"""Air-gap switches that must be set before any model or web library is imported, and the startup check.

``enforce_offline`` runs first thing in every entry point (``run.py``, parser processes, the
web app's build); it is defined in ``ingest.offline``, so that parser processes reach it without
importing the services, and importable from here as before. ``assert_offline`` runs when the web
app is built and refuses to serve if anything would let a library reach the internet: an offline
switch unset, a model library imported before the switches were set, llama-index's NLTK or
tiktoken data not on local disk (llama-index downloads them when missing), a Gradio page with
analytics or a share link on.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from assistant.errors import ConfigError
from ingest.offline import LOCAL_DATA as LOCAL_DATA
from ingest.offline import OFFLINE_ENV as OFFLINE_ENV
from ingest.offline import enforce_offline as enforce_offline
from ingest.offline import llama_index_static as llama_index_static


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
