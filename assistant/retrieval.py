"""Hybrid retrieval: FAISS and BM25 per readable collection, fused, optionally reranked.

Only the indexes of the collections a caller may read are searched, so nothing from
another collection can be fused, reranked or handed to a prompt.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from assistant.corpus import Corpus
from assistant.settings import RetrievalSettings
from storage.documents import StoredChunk, searchable_text


@dataclass(frozen=True)
class Passage:
    """A retrieved chunk with the scores that put it there."""

    chunk: StoredChunk
    score: float
    dense: float | None = None
    bm25: float | None = None
    rerank: float | None = None

    def as_json(self, n: int | None = None) -> dict[str, Any]:
        """The fields a citation or a retrieved-list entry shows."""
        out = {
            "file": self.chunk.file, "page": self.chunk.page, "heading": self.chunk.heading,
            "text": self.chunk.text, "score": round(self.score, 4),
            "span": [self.chunk.char_start, self.chunk.char_end], "collection": self.chunk.collection,
        }
        return {"n": n, **out} if n is not None else out


class Reranker(Protocol):
    """Scores (question, passage) pairs; higher is more relevant."""

    def score(self, question: str, passages: list[str]) -> list[float]: ...


class CrossEncoderReranker:
    """A local sentence-transformers cross-encoder."""

    def __init__(self, model: str) -> None:
        from sentence_transformers import CrossEncoder

        from assistant.embeddings import resolve_model_dir

        self.model = CrossEncoder(str(resolve_model_dir(model)), device="cpu", local_files_only=True)

    def score(self, question: str, passages: list[str]) -> list[float]:
        """Relevance of each passage to the question."""
        return [float(s) for s in self.model.predict([(question, p) for p in passages], show_progress_bar=False)]


@dataclass
class Retrieval:
    """Passages, best first, and how long finding them took."""

    passages: list[Passage]
    query: str
    retrieve_ms: float


def fuse_rrf(rankings: Iterable[list[tuple[int, float]]], k: int) -> dict[int, float]:
    """Reciprocal rank fusion of several rankings of chunk ids."""
    fused: dict[int, float] = {}
    for ranking in rankings:
        for rank, (chunk_id, _) in enumerate(ranking):
            fused[chunk_id] = fused.get(chunk_id, 0.0) + 1.0 / (k + rank + 1)
    return fused


def fuse_weighted(
    dense: list[tuple[int, float]], bm25: list[tuple[int, float]], dense_weight: float
) -> dict[int, float]:
    """Weighted sum of min-max normalised scores."""
    fused: dict[int, float] = {}
    for ranking, weight in ((dense, dense_weight), (bm25, 1.0 - dense_weight)):
        if not ranking:
            continue
        scores = [s for _, s in ranking]
        lo, hi = min(scores), max(scores)
        for chunk_id, s in ranking:
            norm = (s - lo) / (hi - lo) if hi > lo else 1.0
            fused[chunk_id] = fused.get(chunk_id, 0.0) + weight * norm
    return fused


def distinct_pages_first(passages: list[Passage], k: int) -> list[Passage]:
    """Keep ranking order, but let a page's second chunk wait until k distinct pages are in."""
    seen: set[tuple[str, int | None, str]] = set()
    first: list[Passage] = []
    later: list[Passage] = []
    for p in passages:
        key = (p.chunk.file, p.chunk.page, p.chunk.collection)
        (later if key in seen else first).append(p)
        seen.add(key)
    return first + later


class Retriever:
    """Finds the passages that best answer a question within the allowed collections."""

    def __init__(self, corpus: Corpus, settings: RetrievalSettings, reranker: Reranker | None = None) -> None:
        self.corpus = corpus
        self.settings = settings
        self.reranker = reranker

    def retrieve(self, query: str, collections: list[str] | None = None, top_k: int | None = None) -> Retrieval:
        """The ``top_k`` passages for ``query`` from ``collections`` (all when None)."""
        started = time.perf_counter()
        k = top_k or self.settings.top_k
        dense, bm25 = self._search(query, collections)
        if self.settings.fusion == "rrf":
            fused = fuse_rrf([dense, bm25], self.settings.rrf_k)
        else:
            fused = fuse_weighted(dense, bm25, self.settings.dense_weight)
        # Rows for 4k candidates leave room to prefer distinct pages; a reranker sees them all.
        limit = self.settings.candidates if self.reranker else 4 * k
        order = sorted(fused, key=fused.__getitem__, reverse=True)[:limit]
        chunks = self.corpus.store.chunks_by_id(order)  # ids the database lacks are never returned
        dense_of, bm25_of = dict(dense), dict(bm25)
        passages = [
            Passage(chunks[i], fused[i], dense_of.get(i), bm25_of.get(i)) for i in order if i in chunks
        ]
        if self.reranker and passages:
            passages = self._rerank(query, passages)
        if self.settings.distinct_pages:
            passages = distinct_pages_first(passages, k)
        return Retrieval(passages[:k], query, (time.perf_counter() - started) * 1000)

    def _search(
        self, query: str, collections: list[str] | None
    ) -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:
        names = self.corpus.store.collections()
        allowed = [cid for cid, name in names.items() if collections is None or name in collections]
        if not allowed:
            return [], []
        vector = self.corpus.embedder.embed_query(query)
        n = self.settings.candidates
        dense: list[tuple[int, float]] = []
        bm25: list[tuple[int, float]] = []
        for cid in allowed:
            index = self.corpus.index(cid)
            dense_hits, bm25_hits = index.search(vector, query, n)
            dense += dense_hits
            bm25 += bm25_hits
        dense.sort(key=lambda hit: hit[1], reverse=True)
        bm25.sort(key=lambda hit: hit[1], reverse=True)
        return dense[:n], bm25[:n]

    def _rerank(self, query: str, passages: list[Passage]) -> list[Passage]:
        assert self.reranker is not None
        texts = [searchable_text(p.chunk.file, p.chunk.heading, p.chunk.text) for p in passages]
        scores = self.reranker.score(query, texts)
        ranked = sorted(zip(passages, scores, strict=True), key=lambda pair: pair[1], reverse=True)
        return [Passage(p.chunk, p.score, p.dense, p.bm25, s) for p, s in ranked]
