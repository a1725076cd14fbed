"""FAISS vector index keyed by chunk id, with removal, on normalised embeddings (cosine).

Small collections are searched exactly (``IndexIDMap2`` over ``IndexFlatIP``). Above
``VectorLayout.approximate_above`` vectors the index rebuilds itself as an inverted-file
index (``IVF<n>,Flat``, inner product): queries then scan only the ``nprobe`` lists nearest
the question instead of every vector. IVF keeps the full vectors (no compression), supports
removal by id, and is retrained when the collection has grown well past the size it was
trained at. HNSW was not chosen because FAISS cannot remove ids from it, and re-ingesting a
changed file must drop its old chunks. ``bench/scale.py`` measures recall against exact search.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from storage.errors import IndexCorruptError


def _faiss() -> Any:
    try:
        import faiss
    except ImportError as exc:  # pragma: no cover - faiss-cpu is a core dependency
        raise ImportError("faiss is missing: pip install faiss-cpu") from exc
    return faiss


@dataclass(frozen=True)
class VectorLayout:
    """When the index turns approximate, and how thoroughly approximate search looks."""

    approximate_above: int = 50_000
    nprobe: int = 32
    ef_search: int = 100  # pgvector HNSW candidates a search keeps (the PostgreSQL backend, storage/pg_index.py)
    lists_per_sqrt: float = 4.0
    train_points_per_list: int = 40
    train_iterations: int = 12
    seed: int = 1234

    def list_count(self, size: int) -> int:
        """Inverted lists for a collection of ``size`` vectors (about 4 per square root)."""
        return max(16, int(self.lists_per_sqrt * math.sqrt(max(size, 1))))

    def wants_approximate(self, size: int) -> bool:
        """Whether a collection of this size should be searched approximately."""
        return 0 < self.approximate_above < size


class VectorIndex:
    """Inner-product search by chunk id: exact while small, inverted-file (IVF) when large."""

    FILE_NAME = "vectors.faiss"

    def __init__(self, dim: int, index: Any | None = None, layout: VectorLayout | None = None) -> None:
        faiss = _faiss()
        self.dim = dim
        self.layout = layout or VectorLayout()
        self.index = index if index is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        self._tune()

    def __len__(self) -> int:
        return int(self.index.ntotal)

    @property
    def ivf(self) -> Any | None:
        """The inverted-file index when search is approximate, else None."""
        return _faiss().try_extract_index_ivf(self.index)

    @property
    def kind(self) -> str:
        """'exact' or 'ivf<lists>' for status pages and benchmarks."""
        ivf = self.ivf
        return f"ivf{ivf.nlist}" if ivf is not None else "exact"

    def _tune(self) -> None:
        ivf = self.ivf
        if ivf is not None:
            ivf.nprobe = min(self.layout.nprobe, ivf.nlist)

    def ids(self) -> np.ndarray:
        """Chunk ids in the index."""
        ivf = self.ivf
        if ivf is None:
            return _faiss().vector_to_array(self.index.id_map).astype(np.int64)
        return self._ivf_contents(ivf, vectors=False)[0]

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add vectors under chunk ids; an id already present is replaced."""
        ids = np.asarray(ids, dtype=np.int64)
        if not len(ids):
            return
        self.remove(ids)
        self.index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), ids)
        self._relayout()

    def remove(self, ids: np.ndarray | list[int]) -> int:
        """Remove chunk ids; returns how many were present."""
        ids = np.asarray(ids, dtype=np.int64)
        if not len(ids) or not len(self):
            return 0
        removed = int(self.index.remove_ids(_faiss().IDSelectorBatch(ids)))
        if removed:
            self._relayout()
        return removed

    def search(self, query: np.ndarray, k: int) -> list[tuple[int, float]]:
        """The ``k`` nearest chunk ids to one query vector, with cosine scores, best first."""
        if not len(self):
            return []
        scores, ids = self.index.search(np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32), k)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]

    def _relayout(self) -> None:
        """Switch between exact and approximate search as the collection crosses the threshold."""
        size, ivf, layout = len(self), self.ivf, self.layout
        if ivf is None and layout.wants_approximate(size):
            self._rebuild(approximate=True)
        elif ivf is not None and not layout.wants_approximate(2 * size):
            self._rebuild(approximate=False)  # shrank to half the threshold: exact is cheap again
        elif ivf is not None and layout.list_count(size) > 2 * ivf.nlist:
            self._rebuild(approximate=True)  # grew far past its training: lists too long

    def _rebuild(self, approximate: bool) -> None:
        faiss = _faiss()
        ids, vectors = self.contents()
        if not approximate:
            self.index = faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))
        else:
            self.index = self._trained_ivf(vectors)
        self.index.add_with_ids(vectors, ids)
        self._tune()

    def _trained_ivf(self, vectors: np.ndarray) -> Any:
        faiss, layout = _faiss(), self.layout
        lists = layout.list_count(len(vectors))
        index = faiss.index_factory(self.dim, f"IVF{lists},Flat", faiss.METRIC_INNER_PRODUCT)
        sample_size = min(len(vectors), lists * layout.train_points_per_list)
        rng = np.random.default_rng(layout.seed)
        sample = vectors[np.sort(rng.choice(len(vectors), sample_size, replace=False))]
        clustering = faiss.Clustering(self.dim, lists)
        clustering.niter = layout.train_iterations
        clustering.seed = layout.seed
        clustering.max_points_per_centroid = layout.train_points_per_list
        clustering.min_points_per_centroid = 5  # small collections just past the threshold train on what they have
        clustering.spherical = True  # centroids of normalised vectors, compared by inner product
        clustering.train(sample, index.quantizer)
        index.is_trained = True
        return index

    def contents(self) -> tuple[np.ndarray, np.ndarray]:
        """Every chunk id and its vector, in index order."""
        ivf = self.ivf
        if ivf is not None:
            return self._ivf_contents(ivf, vectors=True)
        n = len(self)
        flat = _faiss().downcast_index(self.index.index)
        vectors = flat.reconstruct_n(0, n) if n else np.zeros((0, self.dim), dtype=np.float32)
        return self.ids(), np.ascontiguousarray(vectors, dtype=np.float32)

    def _ivf_contents(self, ivf: Any, vectors: bool) -> tuple[np.ndarray, np.ndarray]:
        faiss, lists = _faiss(), ivf.invlists
        id_parts: list[np.ndarray] = []
        vector_parts: list[np.ndarray] = []
        for number in range(ivf.nlist):
            size = lists.list_size(number)
            if not size:
                continue
            id_parts.append(faiss.rev_swig_ptr(lists.get_ids(number), size).copy())
            if vectors:  # an IVF-Flat code is the raw float32 vector
                codes = faiss.rev_swig_ptr(lists.get_codes(number), size * lists.code_size)
                vector_parts.append(np.frombuffer(codes.copy(), dtype=np.float32).reshape(size, self.dim))
        ids = np.concatenate(id_parts).astype(np.int64) if id_parts else np.zeros(0, dtype=np.int64)
        if not vectors:
            return ids, np.zeros((0, self.dim), dtype=np.float32)
        stacked = np.concatenate(vector_parts) if vector_parts else np.zeros((0, self.dim), dtype=np.float32)
        return ids, np.ascontiguousarray(stacked)

    def save(self, folder: Path) -> Path:
        """Write the index into a folder; returns the file written."""
        path = folder / self.FILE_NAME
        _faiss().write_index(self.index, str(path))
        return path

    @classmethod
    def load(cls, folder: Path, dim: int, layout: VectorLayout | None = None) -> VectorIndex:
        """Read an index written by ``save``; a damaged file raises IndexCorruptError."""
        path = folder / cls.FILE_NAME
        try:
            index = _faiss().read_index(str(path))
        except RuntimeError as exc:
            raise IndexCorruptError(f"vector index {path} cannot be read: {exc}") from exc
        if index.d != dim:
            raise IndexCorruptError(f"vector index {path} has dimension {index.d}, expected {dim}")
        return cls(dim, index, layout)
