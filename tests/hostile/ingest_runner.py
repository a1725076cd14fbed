"""Ingests one folder in this process and prints one JSON line: outcomes, timings and peak memory.

Usage: python -m tests.hostile.ingest_runner DATA_DIR FOLDER

Run as its own process so that ``RUSAGE_SELF`` is this ingest alone and ``RUSAGE_CHILDREN`` is
exactly its parser processes (and what they started, such as tesseract), all waited for
through the fork server that starts them.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

from assistant.offline import enforce_offline


class Outcomes:
    """Each file's outcome and reason, as the pipeline reports them."""

    def __init__(self) -> None:
        self.files: list[dict[str, object]] = []

    def started(self, total_files: int) -> None:
        """The scan is done."""

    def file_done(self, path: str, outcome: str, chunks: int, reason: str = "") -> None:
        """One file was added, skipped with a reason, or left unchanged."""
        self.files.append({"path": path, "outcome": outcome, "reason": reason})

    def doing(self, what: str) -> None:
        """A step begins; only outcomes matter here."""


def main(data_dir: Path, folder: Path) -> None:
    """Ingest ``folder`` into the collection "fixtures" and print the JSON line."""
    enforce_offline()
    from assistant.services import build_services
    from assistant.settings import load_settings

    services = build_services(load_settings(data_dir=data_dir))
    outcomes = Outcomes()
    started = time.monotonic()
    report = services.ingest.ingest(folder, "fixtures", progress=outcomes)
    services.close()
    # Parser processes are children of multiprocessing's fork server: stop it (it has reaped
    # them) and wait for it, so RUSAGE_CHILDREN covers them.
    from multiprocessing import forkserver

    forkserver._forkserver._stop()  # type: ignore[attr-defined]  # CPython's own test hook
    kib = 1024  # ru_maxrss is in KiB on Linux
    print(json.dumps({
        "files": outcomes.files, "documents": report.documents, "chunks": report.chunks,
        "seconds": round(time.monotonic() - started, 1),
        "self_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // kib,
        "children_peak_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // kib,
        "settings": services.settings.ingest.model_dump(),
    }))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
