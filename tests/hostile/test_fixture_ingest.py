"""Every file of the shared fixtures goes through the real ingest: added, or skipped with a reason.

The ingest runs in its own process (tests/hostile/ingest_runner.py) with the default settings,
so its peak memory and its parser processes' peak memory (``RUSAGE_CHILDREN``: every parser
process and what it started, such as tesseract) are this ingest's alone.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from assistant.settings import IngestSettings
from tests.conftest import PROJECT_ROOT, require_dataset

pytestmark = pytest.mark.slow
# The ingesting process holds the embedding model, torch and the indexes; measured at 1.2 GB here.
PARENT_MEMORY_MB = 2560


@pytest.mark.timeout(3600)
def test_every_fixture_is_ingested_or_skipped_with_a_reason_within_time_and_memory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fixtures = require_dataset("ingest-fixtures")
    done = subprocess.run([sys.executable, "-m", "tests.hostile.ingest_runner", str(tmp_path / "data"),
                           str(fixtures)], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=3500)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    limits = IngestSettings(**result["settings"])  # the settings the ingest ran with: the defaults
    files = {f["path"] for f in result["files"]}
    on_disk = {p.relative_to(fixtures).as_posix() for p in fixtures.rglob("*") if p.is_file()}
    assert files == on_disk  # every file has an outcome, none is lost or counted twice
    outcomes = Counter(f["outcome"] for f in result["files"])
    assert set(outcomes) <= {"added", "failed"} and outcomes["added"] == result["documents"]
    reasons = Counter(str(f["reason"]) for f in result["files"] if f["outcome"] == "failed")
    assert all(r.strip() for r in reasons), "a skip without a reason"
    overran = [r for r in reasons if "took longer than" in r or "crashed or ran out of memory" in r]
    assert not overran, overran  # every file finished within ingest.parse_timeout_s, and no parser died
    assert 0 < result["children_peak_mb"] <= limits.worker_memory_mb  # measured, and the parsers' cap held
    assert result["self_peak_mb"] <= PARENT_MEMORY_MB
    with capsys.disabled():
        print(f"\nfixtures ingested: {outcomes['added']} added ({result['chunks']} chunks), {outcomes['failed']} "
              f"skipped, {result['seconds']} s; peak RSS {result['self_peak_mb']} MB ingest, "
              f"{result['children_peak_mb']} MB parsers (cap {limits.worker_memory_mb} MB, "
              f"{limits.parse_timeout_s:g} s a file)")
        for reason, count in reasons.most_common():
            print(f"{count:4d}  {reason}")
