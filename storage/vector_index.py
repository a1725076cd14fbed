"""FAISS vector index keyed by chunk id, with removal, on normalised embeddings (cosine)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from assistant.errors import IndexCorruptError


def _faiss() -> Any:
    try:
        import faiss
    except ImportError as exc:  # pragma: no cover - faiss-cpu is a core dependency
        raise ImportError("faiss is missing: pip install faiss-cpu") from exc
    return faiss


class VectorIndex:
    """Exact inner-product search over an ``IndexIDMap2``; ids are chunk ids."""

    FILE_NAME = "vectors.faiss"

    def __init__(self, dim: int, index: Any | None = None) -> None:
        faiss = _faiss()
        self.dim = dim
        self.index = index if index is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(dim))

    def __len__(self) -> int:
        return int(self.index.ntotal)

    def ids(self) -> np.ndarray:
        """Chunk ids in the index."""
        return _faiss().vector_to_array(self.index.id_map).astype(np.int64)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add vectors under chunk ids; an id already present is replaced."""
        ids = np.asarray(ids, dtype=np.int64)
        if not len(ids):
            return
        self.remove(ids)
        self.index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), ids)

    def remove(self, ids: np.ndarray | list[int]) -> int:
        """Remove chunk ids; returns how many were present."""
        ids = np.asarray(ids, dtype=np.int64)
        if not len(ids) or not len(self):
            return 0
        return int(self.index.remove_ids(_faiss().IDSelectorBatch(ids)))

    def search(self, query: np.ndarray, k: int) -> list[tuple[int, float]]:
        """The ``k`` nearest chunk ids to one query vector, with cosine scores, best first."""
        if not len(self):
            return []
        scores, ids = self.index.search(np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32), k)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]

    def save(self, folder: Path) -> Path:
        """Write the index into a folder; returns the file written."""
        path = folder / self.FILE_NAME
        _faiss().write_index(self.index, str(path))
        return path

    @classmethod
    def load(cls, folder: Path, dim: int) -> VectorIndex:
        """Read an index written by ``save``; a damaged file raises IndexCorruptError."""
        path = folder / cls.FILE_NAME
        try:
            index = _faiss().read_index(str(path))
        except RuntimeError as exc:
            raise IndexCorruptError(f"vector index {path} cannot be read: {exc}") from exc
        if index.d != dim:
            raise IndexCorruptError(f"vector index {path} has dimension {index.d}, expected {dim}")
        return cls(dim, index)
