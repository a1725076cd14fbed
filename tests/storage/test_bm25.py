"""BM25 index: ranking, incremental add and remove, persistence."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from storage.bm25 import BM25Index

TEXTS = {
    1: "Employees accrue paid time off at two days per month.",
    2: "The dental plan covers two cleanings per year.",
    3: "Vision coverage includes an annual eye exam.",
    4: "Parking passes are issued by the facilities team.",
}


def _index() -> BM25Index:
    index = BM25Index()
    index.add(np.array(list(TEXTS)), list(TEXTS.values()))
    return index


def test_best_match_ranks_first_and_stems() -> None:
    hits = _index().search("how many cleanings does dental cover", 3)
    assert hits[0][0] == 2
    assert _index().search("exams", 1)[0][0] == 3  # stemming: exams ~ exam


def test_unknown_terms_find_nothing() -> None:
    assert _index().search("zzzz qqqq", 5) == []


def test_remove_forgets_chunks_and_readding_replaces() -> None:
    index = _index()
    index.remove([2])
    assert all(cid != 2 for cid, _ in index.search("dental cleanings", 4))
    index.add(np.array([3]), ["dental implants are covered"])
    assert index.search("dental", 1)[0][0] == 3
    assert sorted(index.ids().tolist()) == [1, 3, 4]


def test_many_segments_compact_to_the_same_ranking() -> None:
    index = BM25Index()
    for cid, text in TEXTS.items():
        index.add(np.array([cid]), [text])
    before = index.search("dental plan cleanings", 4)
    index.compact()
    assert len(index.segments) == 1
    assert [c for c, _ in index.search("dental plan cleanings", 4)] == [c for c, _ in before]


def test_save_and_load_keep_results(tmp_path: Path) -> None:
    index = _index()
    index.remove([4])
    index.save(tmp_path)
    loaded = BM25Index.load(tmp_path)
    assert sorted(loaded.ids().tolist()) == [1, 2, 3]
    assert loaded.search("time off", 2) == index.search("time off", 2)
