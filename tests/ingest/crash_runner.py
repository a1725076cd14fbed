"""Runs one ingest in this process and SIGKILLs it at a named point (fault injection).

Usage: python -m tests.ingest.crash_runner DATA_DIR FOLDER POINT

The product code runs unchanged; the runner only wraps one function so that the
process dies, as with ``kill -9``, right after (or inside) it. With POINT ``random``
nothing is wrapped: the runner prints ``ingesting`` when the ingest starts and
``ack <outcome> <file>`` for every file the pipeline reports done, and the test kills
it from outside after a random delay (tests/faults/test_random_kill.py).
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from assistant.offline import enforce_offline


def _die_after(owner: Any, name: str, when: Callable[..., bool] = lambda *a, **k: True) -> None:
    original = getattr(owner, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        if when(*args, **kwargs):
            sys.stdout.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        return result

    setattr(owner, name, wrapper)


def install(point: str) -> None:
    """Arm the fault at ``point``."""
    from assistant.embeddings import SentenceTransformerEmbedder
    from storage import index_store
    from storage.bm25 import BM25Index
    from storage.documents import DocumentStore

    if point == "after_embedding_before_commit":
        _die_after(SentenceTransformerEmbedder, "embed_passages")
    elif point == "after_commit_before_index":
        _die_after(DocumentStore, "write_documents")
    elif point == "during_index_save":  # vectors written to the staging folder, BM25 too, nothing renamed
        _die_after(BM25Index, "save")
    elif point == "before_current_pointer":  # new version folder renamed into place, CURRENT not yet
        calls = iter(range(1, 1000))
        _die_after(index_store, "_fsync_dir", lambda path: next(calls) == 2)
    elif point == "after_delete_before_index":
        _die_after(DocumentStore, "delete_documents")
    else:
        raise SystemExit(f"unknown point {point}")


class AckPrinter:
    """Prints each acknowledged file at once, so the killing test knows what was promised."""

    def started(self, total_files: int) -> None:
        """The ingest has begun."""
        print(f"ingesting {total_files}", flush=True)

    def file_done(self, path: str, outcome: str, chunks: int, reason: str = "") -> None:
        """One file is done (committed and indexed in memory, or skipped)."""
        print(f"ack {outcome} {path}", flush=True)

    def doing(self, what: str) -> None:
        """A step begins; only acknowledged files matter here."""


def main() -> None:
    enforce_offline()
    data_dir, folder, point = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    from assistant.services import build_services
    from assistant.settings import load_settings

    if point != "random":
        install(point)
    services = build_services(load_settings(data_dir=data_dir, ingest={"save_every_s": 0.0}))
    services.ingest.ingest(folder, sync=True, progress=AckPrinter() if point == "random" else None)
    print("finished without crashing", flush=True)


if __name__ == "__main__":
    main()
