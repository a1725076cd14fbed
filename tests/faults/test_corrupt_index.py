"""Index files damaged while the app was down: the next start notices, rebuilds from the database, never serves empty.

Each case damages one thing on disk (the FAISS file, a BM25 file, the manifest, the CURRENT
pointer, the whole version folder), then a fresh start must answer exactly as before: the
same passages, in the same order, for every question.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from assistant.retrieval import Retriever

DOCS = {
    "leave.md": "# Leave\n\nEmployees accrue 1.5 days of paid leave per month, up to thirty days a year.\n",
    "dental.md": "# Dental\n\nThe dental plan covers two cleanings per year and half of the cost of crowns.\n",
    "parking.md": "# Parking\n\nParking permits are issued by the facilities desk on Mondays.\n",
    "travel.md": "# Travel\n\nEconomy class is booked for flights under six hours; longer flights may be business.\n",
    "laptops.md": "# Laptops\n\nLaptops are replaced every three years by the IT service desk.\n",
}
QUESTIONS = ["paid leave per month", "dental cleanings", "parking permits", "business class flights",
             "laptop replacement", "who issues permits on Mondays"]


def _live_version(data_dir: Path) -> Path:
    (folder,) = [p for p in (data_dir / "index").iterdir() if p.is_dir() and p.name.startswith("c")]
    return folder / (folder / "CURRENT").read_text().strip()


def _truncate_vectors(version: Path) -> None:
    faiss_file = version / "vectors.faiss"
    faiss_file.write_bytes(faiss_file.read_bytes()[: faiss_file.stat().st_size // 2])


def _garble_bm25(version: Path) -> None:
    target = next(p for p in sorted(version.iterdir()) if p.name.startswith("bm25"))
    data = bytearray(target.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 16] = b"\xff" * min(16, len(data) - middle)
    target.write_bytes(bytes(data))


def _garble_manifest(version: Path) -> None:
    (version / "manifest.json").write_text("{not json", encoding="utf-8")


def _empty_manifest(version: Path) -> None:
    (version / "manifest.json").write_text("{}", encoding="utf-8")


def _garble_current(version: Path) -> None:
    (version.parent / "CURRENT").write_text("v-what\n", encoding="ascii")


def _remove_version(version: Path) -> None:
    shutil.rmtree(version)


DAMAGE: dict[str, Callable[[Path], None]] = {
    "FAISS file truncated": _truncate_vectors,
    "BM25 file garbled": _garble_bm25,
    "manifest not JSON": _garble_manifest,
    "manifest without its file list": _empty_manifest,
    "CURRENT names no version": _garble_current,
    "live version folder deleted": _remove_version,
}


def _answers(services: Any) -> list[list[tuple[str, int]]]:
    retriever = Retriever(services.corpus, services.settings.retrieval)
    return [[(p.chunk.file, p.chunk.id) for p in retriever.retrieve(q, top_k=3).passages] for q in QUESTIONS]


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damaged_index_is_rebuilt_from_the_database_and_answers_as_before(
    damage: str, make_services: Any, tmp_path: Path, record_figure: Callable[[str, object], None]
) -> None:
    share = tmp_path / "share"
    share.mkdir()
    for name, text in DOCS.items():
        (share / name).write_text(text, encoding="utf-8")
    data_dir = tmp_path / "data"
    first = make_services(data_dir)
    first.ingest.ingest(share)
    before = _answers(first)
    assert all(hits for hits in before)
    chunks = first.corpus.status()["chunks"]
    first.close()
    DAMAGE[damage](_live_version(data_dir))

    restarted = make_services(data_dir)
    index = restarted.corpus.index(restarted.corpus.collection_id("default"))

    assert index.repair.rebuilt_reason, "the damage went unnoticed"
    assert len(index) == len(index.bm25.ids()) == chunks  # never served empty
    assert _answers(restarted) == before
    again = make_services(data_dir).corpus  # the repair was saved: the next start loads it cleanly
    assert not again.index(again.collection_id("default")).repair.changed
    record_figure(f"{damage}: detected as", index.repair.rebuilt_reason)
