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
