"""The vector index: exact while small, IVF above the threshold, same answers either way."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from storage.vector_index import VectorIndex, VectorLayout

DIM = 32


def _clustered(n: int, seed: int = 0) -> np.ndarray:
    """Normalised vectors around 40 topics, like embeddings of a real corpus."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(40, DIM))
    vectors = centres[rng.integers(0, 40, n)] + 0.35 * rng.normal(size=(n, DIM))
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def _recall_at_10(approximate: VectorIndex, exact: VectorIndex, queries: np.ndarray) -> float:
    found = 0
    for query in queries:
        truth = {i for i, _ in exact.search(query, 10)}
        found += len(truth & {i for i, _ in approximate.search(query, 10)})
    return found / (10 * len(queries))


def test_index_turns_approximate_above_threshold_and_keeps_recall() -> None:
    layout = VectorLayout(approximate_above=2_000, nprobe=24)
    vectors, ids = _clustered(6_000), np.arange(10, 6_010, dtype=np.int64)
    index, exact = VectorIndex(DIM, layout=layout), VectorIndex(DIM, layout=VectorLayout(approximate_above=0))
    for start in range(0, 6_000, 500):  # arrives in batches, as during an ingest
        index.add(ids[start:start + 500], vectors[start:start + 500])
    exact.add(ids, vectors)
    assert index.kind.startswith("ivf") and exact.kind == "exact"
    assert len(index) == 6_000 and sorted(index.ids().tolist()) == ids.tolist()
    assert _recall_at_10(index, exact, _clustered(200, seed=1)) >= 0.95


def test_removal_and_replacement_work_on_the_approximate_index(tmp_path: Path) -> None:
    layout = VectorLayout(approximate_above=1_000, nprobe=16)
    vectors, ids = _clustered(3_000), np.arange(3_000, dtype=np.int64)
    index = VectorIndex(DIM, layout=layout)
    index.add(ids, vectors)
    assert index.kind.startswith("ivf")
    assert index.remove([5, 6, 7]) == 3
    assert not {5, 6, 7} & {i for i, _ in index.search(vectors[5], 20)}
    index.add(np.array([8]), vectors[100:101])  # a changed chunk keeps its id, with its new vector
    assert index.search(vectors[100], 1)[0][0] in (8, 100)
    assert len(index) == 2_997
    index.save(tmp_path)
    reloaded = VectorIndex.load(tmp_path, DIM, layout)
    ivf = reloaded.ivf
    assert reloaded.kind == index.kind and ivf is not None and ivf.nprobe == 16
    assert reloaded.search(vectors[42], 1)[0][0] == 42


def test_index_returns_to_exact_when_the_collection_shrinks() -> None:
    layout = VectorLayout(approximate_above=1_000)
    vectors, ids = _clustered(1_500), np.arange(1_500, dtype=np.int64)
    index = VectorIndex(DIM, layout=layout)
    index.add(ids, vectors)
    assert index.kind.startswith("ivf")
    index.remove(ids[:1_100])
    assert index.kind == "exact" and len(index) == 400
    assert index.search(vectors[1_200], 1) == [(1_200, index.search(vectors[1_200], 1)[0][1])]
    assert sorted(index.ids().tolist()) == list(range(1_100, 1_500))
