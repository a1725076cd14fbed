"""The air-gap switches: set before any model or web library is imported, in every process.

``enforce_offline`` runs first thing in every entry point: ``run.py``, the web app's build and
the parser processes ingest starts. It lives here, below ``assistant``, so those processes can
set the switches without importing the services; ``assistant.offline`` re-exports it beside the
startup check that refuses to serve when a switch is off.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

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
