"""Parser processes start small, whatever the process that runs the ingest holds."""

from __future__ import annotations

import mmap
from pathlib import Path
from typing import Any

NORESERVE = getattr(mmap, "MAP_NORESERVE", 0x4000)  # Linux value; Python 3.11 does not name it


def _address_space_mb() -> int:
    for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) // 1024
    raise AssertionError("no VmSize in /proc/self/status")


def test_ingest_from_a_large_process_parses_under_the_memory_cap(make_services: Any, tmp_path: Path) -> None:
    share = tmp_path / "share"
    share.mkdir()
    for n in range(3):
        (share / f"note-{n}.md").write_text(f"# Note {n}\n\nDesk {n} issues parking permits on Mondays.\n", "utf-8")
    cap_mb = 1024
    # Like the web app holding both models and many threads: far more address space than the cap.
    reserved = mmap.mmap(-1, 2 * cap_mb * 2**20, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | NORESERVE)
    try:
        assert _address_space_mb() > cap_mb
        report = make_services(ingest={"worker_memory_mb": cap_mb}).ingest.ingest(share)
    finally:
        reserved.close()
    assert report.failed == [] and report.added == 3


def _own_niceness() -> int:
    import os

    return os.nice(0)


def test_parser_processes_run_below_the_priority_of_questions() -> None:
    """Parsing is background work: on busy cores the app's question threads get the CPU first."""
    import os

    from pebble import ProcessPool

    from ingest.parser_process import init_parser_process
    from ingest.pipeline import parser_context

    with ProcessPool(max_workers=1, initializer=init_parser_process, initargs=(0,), context=parser_context()) as pool:
        assert pool.schedule(_own_niceness).result(timeout=60) > os.nice(0)


def test_parse_workers_default_to_one_per_core_within_bounds() -> None:
    import os

    from ingest.settings import MAX_AUTO_PARSERS, IngestSettings

    assert IngestSettings().parsers() == max(1, min(MAX_AUTO_PARSERS, os.cpu_count() or 1))
    assert IngestSettings(parse_workers=3).parsers() == 3
