"""An interrupted ingest of a large folder resumes where it stopped: finished files are not redone."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PROJECT_ROOT

pytestmark = pytest.mark.slow

FILES = 24
KILL_AFTER = 6


def _share(root: Path) -> Path:
    root.mkdir()
    for n in range(FILES):
        rules = (f"Rule {n}.{i}: form {n * 100 + i} is filed with desk {i}." for i in range(60))
        text = f"# Policy {n}\n\n" + " ".join(rules)
        (root / f"policy-{n:02d}.md").write_text(text, encoding="utf-8")
    return root


def _ingest_until_acknowledged(data_dir: Path, share: Path, files: int) -> set[str]:
    """Run ingest in a child process and SIGKILL it once ``files`` files are acknowledged."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.ingest.crash_runner", str(data_dir), str(share), "random"],
        cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    acknowledged: set[str] = set()
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            if line.startswith("ack added "):
                acknowledged.add(line.split(" ", 2)[2].strip())
            if len(acknowledged) >= files:
                proc.kill()
                break
    finally:
        proc.kill()
        proc.wait(timeout=60)
    assert proc.returncode == -9, "the ingest finished before it could be interrupted"
    return acknowledged


def test_interrupted_ingest_resumes_without_redoing_finished_files(make_services: Any, tmp_path: Path) -> None:
    data_dir, share = tmp_path / "data", _share(tmp_path / "share")
    finished = _ingest_until_acknowledged(data_dir, share, KILL_AFTER)

    report = make_services(data_dir).ingest.ingest(share)

    assert report.unchanged >= len(finished)  # everything acknowledged before the kill is kept as it was
    assert report.added == FILES - report.unchanged  # and only the rest is parsed and embedded
    assert report.documents == FILES and not report.failed
    services = make_services(data_dir)
    hits = services.retriever.retrieve("form 2305 filed with desk 5", top_k=1).passages
    assert hits and hits[0].chunk.file.endswith("policy-23.md")
