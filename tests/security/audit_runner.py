"""Runs ``run.py`` with Python audit hooks and writes what the process imported, opened and tried to reach.

Usage: python -m tests.security.audit_runner OUT.json [run.py arguments...]

After the command, it also loads the NLTK and tiktoken data llama-index uses (the sentence
splitter's punkt tokenizer and stopwords, and the default tiktoken encoding), so the record
shows where that data came from and whether a download was tried.
"""

from __future__ import annotations

import json
import os
import runpy
import socket
import sys
from pathlib import Path
from typing import Any

# Not tests.conftest: importing it would switch offline mode on before run.py does.
PROJECT_ROOT = Path(__file__).resolve().parents[2]
MODEL_LIBRARIES = ("torch", "transformers", "sentence_transformers", "huggingface_hub", "llama_index.core",
                   "llama_cpp", "gradio", "nltk", "tiktoken", "ollama")
DATA_MARKS = ("nltk_cache", "tiktoken_cache", "nltk_data", "hostile-data")
OFFLINE_KEYS = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "GRADIO_ANALYTICS_ENABLED", "NLTK_DATA",
                "TIKTOKEN_CACHE_DIR")
record: dict[str, Any] = {"imports": {}, "network": [], "data_files": []}


def _address(args: tuple[Any, ...]) -> str:
    return repr(args[1]) if len(args) > 1 else repr(args)


def hook(event: str, args: tuple[Any, ...]) -> None:
    """Record first imports of model libraries, socket use and reads of NLTK/tiktoken data."""
    if event == "import":
        name = str(args[0])
        top = next((lib for lib in MODEL_LIBRARIES if name == lib or name.startswith(lib + ".")), None)
        if top is not None and top not in record["imports"]:
            record["imports"][top] = {key: os.environ.get(key) for key in OFFLINE_KEYS}
    elif event in ("socket.connect", "socket.sendto", "socket.sendmsg"):
        if getattr(args[0], "family", None) == socket.AF_UNIX:  # local IPC, e.g. the parsers' fork server
            record["local_ipc"] = record.get("local_ipc", 0) + 1
        else:
            record["network"].append(f"{event} {_address(args)}")
    elif event in ("socket.getaddrinfo", "socket.gethostbyname"):
        record["network"].append(f"{event} {args[0]!r}")
    elif event == "urllib.Request":
        record["network"].append(f"urllib {args[0]}")
    elif event == "open" and isinstance(args[0], str) and any(mark in args[0] for mark in DATA_MARKS):
        record["data_files"].append(args[0])


def load_llama_index_data() -> dict[str, Any]:
    """Use llama-index's NLTK and tiktoken data the way its splitters do."""
    from llama_index.core.utils import get_tokenizer, globals_helper

    return {"stopwords": len(globals_helper.stopwords),
            "punkt": len(globals_helper.punkt_tokenizer.tokenize("One sentence. Another one.")),
            "tiktoken": len(get_tokenizer()("hello world"))}


def main() -> None:
    out = Path(sys.argv[1])
    sys.argv = [str(PROJECT_ROOT / "run.py"), *sys.argv[2:]]
    sys.addaudithook(hook)
    try:
        runpy.run_path(sys.argv[0], run_name="__main__")
    except SystemExit as exc:
        record["exit"] = exc.code
    record["loaded"] = load_llama_index_data()
    out.write_text(json.dumps(record), encoding="utf-8")


if __name__ == "__main__":
    main()
