"""Kill -9 of ingest at chosen points: the next start finds DB, FAISS and BM25 in agreement."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PROJECT_ROOT

pytestmark = pytest.mark.slow

DOCS = {
    "leave.md": "# Leave\n\nEmployees accrue 1.5 days of paid leave per month.\n",
    "dental.txt": "The dental plan covers two cleanings per year.\n",
    "parking.txt": "Parking permits are issued by the facilities desk on Mondays.\n",
    "travel.md": "# Travel\n\nEconomy class is booked for flights under six hours.\n",
    "laptops.txt": "Laptops are replaced every three years by the IT service desk.\n",
}


def _share(root: Path) -> Path:
    root.mkdir()
    for name, text in DOCS.items():
        (root / name).write_text(text, encoding="utf-8")
    return root


def _run_until_killed(data_dir: Path, share: Path, point: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "tests.ingest.crash_runner", str(data_dir), str(share), point],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == -9, f"expected SIGKILL at {point}, got {proc.returncode}: {proc.stderr[-2000:]}"


def _assert_consistent_and_complete(services: Any, share: Path, expected_files: set[str]) -> None:
    from assistant.retrieval import Retriever

    cid = services.corpus.collection_id("default")
    index = services.corpus.index(cid)  # opening reconciles with the database
    truth = sorted(services.corpus.store.chunk_ids(cid).tolist())
    embedded = sorted(services.corpus.store.chunk_ids(cid, embedded=True).tolist())
    assert sorted(index.vectors.ids().tolist()) == embedded  # chunks killed before their embedding: keyword only
    assert sorted(index.bm25.ids().tolist()) == truth
    retriever = Retriever(services.corpus, services.settings.retrieval)
    for question in ("paid leave per month", "dental cleanings", "laptop replacement", "flights economy"):
        for passage in retriever.retrieve(question, top_k=5).passages:
            assert passage.chunk.id in truth  # never a citation of a chunk that does not exist
    services.ingest.ingest(share, sync=True)
    status = services.corpus.status()
    assert status["documents"] == len(expected_files)
    truth = sorted(services.corpus.store.chunk_ids(cid).tolist())
    assert sorted(index.vectors.ids().tolist()) == truth == sorted(index.bm25.ids().tolist())
    assert not len(services.corpus.store.chunk_ids(cid, embedded=False))  # the next run embedded what waited
    found = {p.chunk.file for q in DOCS.values() for p in retriever.retrieve(q, top_k=1).passages}
    assert found == expected_files


@pytest.mark.parametrize(
    "point",
    ["after_embedding_before_commit", "after_commit_before_index", "during_index_save", "before_current_pointer"],
)
def test_first_ingest_killed_recovers(point: str, make_services: Any, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    share = _share(tmp_path / "share")
    _run_until_killed(data_dir, share, point)
    _assert_consistent_and_complete(make_services(data_dir), share, set(DOCS))


def test_sync_killed_between_delete_and_index_save_never_cites_deleted_chunks(
    make_services: Any, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    share = _share(tmp_path / "share")
    make_services(data_dir).ingest.ingest(share)
    (share / "parking.txt").unlink()
    _run_until_killed(data_dir, share, "after_delete_before_index")
    _assert_consistent_and_complete(make_services(data_dir), share, set(DOCS) - {"parking.txt"})
