"""The data dir's disk fills up during an ingest: a clear error, and what was there before still answers.

The data dir lives on a small tmpfs mounted for the test (root only; skipped with the reason
otherwise), filled up to a few hundred KB before a large ingest starts.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from assistant.errors import DiskFullError
from assistant.retrieval import Retriever

pytestmark = pytest.mark.slow
OLD = {f"old{i}.md": f"# Archive {i}\n\nThe archive record zqold{i}k is kept by the records desk.\n" for i in range(4)}
WORDS = ("policy", "ledger", "invoice", "vendor", "contract", "audit", "budget", "forecast", "region", "quarter")
LEFT_FREE_KB = 64
BIG = 16


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 24 MB tmpfs, unmounted (lazily, in case a file is still open) after the test."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mount_point)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip()}); the disk-full test needs root")
    yield mount_point
    subprocess.run(["umount", "-l", str(mount_point)], check=True)


def _write_folder(folder: Path, docs: dict[str, str]) -> Path:
    folder.mkdir()
    for name, text in docs.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def _big_docs(count: int) -> dict[str, str]:
    return {f"ledger{i:03d}.md": f"# Ledger {i}\n\n" + " ".join(
        f"The {WORDS[(i + j) % 10]} entry {i}-{j} for the {WORDS[(i * j) % 10]} was booked." for j in range(100)
    ) for i in range(count)}


def _answers(services: Any) -> list[tuple[str, str]]:
    retriever = Retriever(services.corpus, services.settings.retrieval)
    return [(p.chunk.file, p.chunk.text) for name in OLD
            for p in retriever.retrieve(f"archive record zq{name[:-3]}k", top_k=1).passages]


def _fill(disk: Path, leave_kb: int) -> Path:
    stats = os.statvfs(disk)
    filler = disk / "filler"
    with filler.open("wb") as fh:
        fh.write(b"\0" * max(0, stats.f_bavail * stats.f_frsize - leave_kb * 1024))
    return filler


def test_disk_full_during_ingest_fails_clearly_and_keeps_what_was_there(
    small_disk: Path, make_services: Any, tmp_path: Path, record_figure: Callable[[str, object], None]
) -> None:
    data_dir = small_disk / "data"
    services = make_services(data_dir)
    services.ingest.ingest(_write_folder(tmp_path / "old", OLD), "archive")
    before = _answers(services)
    assert [file for file, _ in before] == list(OLD)
    filler = _fill(small_disk, LEFT_FREE_KB)
    big = _write_folder(tmp_path / "big", _big_docs(BIG))

    with pytest.raises(DiskFullError) as raised:
        services.ingest.ingest(big, "archive")

    message = str(raised.value)
    assert "no space left" in message and str(data_dir) in message and "free some space" in message
    reopened = make_services(data_dir)  # a restart while the disk is still full
    cid = reopened.corpus.collection_id("archive")
    index = reopened.corpus.index(cid)
    truth = sorted(reopened.corpus.store.chunk_ids(cid).tolist())
    assert sorted(index.vectors.ids().tolist()) == truth == sorted(index.bm25.ids().tolist())
    assert _answers(reopened) == before
    kept = reopened.corpus.status()["documents"]
    filler.unlink()
    report = reopened.ingest.ingest(big, "archive")
    assert reopened.corpus.status()["documents"] == len(OLD) + BIG and not report.failed
    assert _answers(reopened) == before
    record_figure("free space when the ingest began (KB)", LEFT_FREE_KB)
    record_figure("documents kept and consistent after the failure (old + committed new)", kept)
    record_figure("error shown", message)
