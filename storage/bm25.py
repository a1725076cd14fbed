"""An Okapi BM25 index over chunk texts that supports adding and removing chunks.

Why not bm25s or rank-bm25: both build an immutable index, so every ingest of one file
would rebuild the whole corpus. Here postings live in immutable sparse segments
(CSC, term columns) with a tombstone mask; additions append a segment, removals flip
the mask, and segments are merged when there are too many. Scoring is numpy over the
query terms' posting columns, so it stays fast at a million chunks.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from scipy import sparse

TOKEN_RE = re.compile(r"[^\W_]+", re.UNICODE)  # underscores split words, as in file names
STOPWORDS = frozenset(
    [
        "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "from", "has", "have", "i", "if", "in",
        "into", "is", "it", "its", "of", "on", "or", "our", "so", "such", "that", "the", "their", "then", "there",
        "these", "they", "this", "to", "was", "we", "were", "what", "when", "where", "which", "who", "will",
        "with", "you", "your", "do", "does", "did", "can", "how"
    ]
)
MAX_SEGMENTS = 8


@lru_cache(maxsize=1)
def _stemmer() -> Any:
    import Stemmer

    return Stemmer.Stemmer("english")


def idf(chunks: int, containing: Any) -> Any:
    """Okapi BM25's inverse document frequency (always positive), for a count or an array of counts."""
    return np.log(1 + (chunks - containing + 0.5) / (containing + 0.5))


def tokenize(text: str) -> list[str]:
    """Lower-cased, stop-word-free, stemmed word tokens."""
    words = [w for w in TOKEN_RE.findall(text.lower()) if w not in STOPWORDS]
    return list(_stemmer().stemWords(words))


@dataclass
class _Segment:
    """Postings of a batch of chunks: rows are chunks, columns are term ids."""

    ids: np.ndarray
    matrix: sparse.csc_matrix
    lengths: np.ndarray
    live: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))


class BM25Index:
    """BM25 (k1=1.2, b=0.75) keyed by chunk id."""

    def __init__(self, k1: float = 1.2, b: float = 0.75) -> None:
        self.k1 = k1
        self.b = b
        self.vocab: dict[str, int] = {}
        self.df = np.zeros(0, dtype=np.int64)
        self.segments: list[_Segment] = []
        self._where: dict[int, tuple[int, int]] = {}
        self._total_length = 0

    def __len__(self) -> int:
        return len(self._where)

    def __contains__(self, chunk_id: object) -> bool:
        return chunk_id in self._where

    def ids(self) -> np.ndarray:
        """Chunk ids in the index."""
        return np.fromiter(self._where.keys(), dtype=np.int64, count=len(self._where))

    def has_term(self, term: str) -> bool:
        """Whether any indexed chunk contains this (already tokenized) term."""
        found = self.vocab.get(term)
        return found is not None and found < len(self.df) and self.df[found] > 0

    def term_counts(self, terms: list[str]) -> tuple[int, list[int]]:
        """How many chunks are indexed, and in how many of them each (tokenized) term occurs."""
        counts = [int(self.df[i]) if (i := self.vocab.get(t)) is not None and i < len(self.df) else 0 for t in terms]
        return len(self._where), counts

    def add(self, ids: np.ndarray, texts: list[str]) -> None:
        """Index texts under chunk ids; an id already present is replaced."""
        self.remove([int(i) for i in ids if int(i) in self._where])
        rows, cols, vals, lengths = [], [], [], []
        for row, text in enumerate(texts):
            counts = Counter(self._term_id(t) for t in tokenize(text))
            rows += [row] * len(counts)
            cols += list(counts.keys())
            vals += list(counts.values())
            lengths.append(sum(counts.values()))
        if len(self.df) < len(self.vocab):
            self.df = np.concatenate([self.df, np.zeros(len(self.vocab) - len(self.df), dtype=np.int64)])
        matrix = sparse.csc_matrix(
            (np.array(vals, dtype=np.float32), (rows, cols)), shape=(len(texts), len(self.vocab))
        )
        np.add.at(self.df, np.array(cols, dtype=np.int64), 1)
        self._append(np.asarray(ids, dtype=np.int64), matrix, np.array(lengths, dtype=np.float32))
        if len(self.segments) > MAX_SEGMENTS:
            self.compact()

    def _term_id(self, term: str) -> int:
        found = self.vocab.get(term)
        if found is None:
            found = self.vocab[term] = len(self.vocab)
        return found

    def _append(self, ids: np.ndarray, matrix: sparse.csc_matrix, lengths: np.ndarray) -> None:
        index = len(self.segments)
        self.segments.append(_Segment(ids, matrix, lengths, np.ones(len(ids), dtype=bool)))
        for row, chunk_id in enumerate(ids.tolist()):
            self._where[chunk_id] = (index, row)
        self._total_length += int(lengths.sum())

    def remove(self, ids: list[int]) -> None:
        """Forget chunk ids; unknown ids are ignored."""
        for chunk_id in ids:
            where = self._where.pop(int(chunk_id), None)
            if where is None:
                continue
            seg = self.segments[where[0]]
            seg.live[where[1]] = False
            row = seg.matrix.getrow(where[1])
            np.subtract.at(self.df, row.indices, 1)
            self._total_length -= int(seg.lengths[where[1]])

    def compact(self) -> None:
        """Merge all segments into one, dropping removed rows."""
        live = [s for s in self.segments if s.live.any()]
        self.segments, self._where = [], {}
        self._total_length = 0
        if not live:
            return
        width = len(self.vocab)
        # Older segments have fewer term columns than the vocabulary has grown to.
        matrices = [self._widen(s.matrix[s.live], width) for s in live]
        self._append(
            np.concatenate([s.ids[s.live] for s in live]),
            sparse.vstack(matrices, format="csc"),
            np.concatenate([s.lengths[s.live] for s in live]),
        )

    @staticmethod
    def _widen(matrix: sparse.spmatrix, width: int) -> sparse.csc_matrix:
        matrix = sparse.csc_matrix(matrix)
        indptr = np.concatenate([matrix.indptr, np.full(width - matrix.shape[1], matrix.indptr[-1])])
        return sparse.csc_matrix((matrix.data, matrix.indices, indptr), shape=(matrix.shape[0], width))

    def search(self, query: str, k: int) -> list[tuple[int, float]]:
        """The ``k`` best chunk ids for a query with their BM25 scores, best first."""
        n = len(self._where)
        terms = [self.vocab[t] for t in set(tokenize(query)) if t in self.vocab]
        if not n or not terms:
            return []
        avgdl = self._total_length / n
        weights = idf(n, self.df[terms])
        hits: list[tuple[np.ndarray, np.ndarray]] = []
        for seg in self.segments:
            found = self._segment_scores(seg, terms, weights, avgdl)
            if found is not None:
                hits.append(found)
        if not hits:
            return []
        ids = np.concatenate([h[0] for h in hits])
        scores = np.concatenate([h[1] for h in hits])
        if len(scores) > k:  # select the k best before sorting: hits can be most of a large collection
            best = np.argpartition(-scores, k - 1)[:k]
            top = best[np.argsort(-scores[best], kind="stable")]
        else:
            top = np.argsort(-scores, kind="stable")
        return [(int(ids[i]), float(scores[i])) for i in top if scores[i] > 0]

    def _segment_scores(
        self, seg: _Segment, terms: list[int], weights: np.ndarray, avgdl: float
    ) -> tuple[np.ndarray, np.ndarray] | None:
        width = seg.matrix.shape[1]
        rows_all, vals_all = [], []
        for term, weight in zip(terms, weights, strict=True):
            if term >= width:
                continue
            lo, hi = seg.matrix.indptr[term], seg.matrix.indptr[term + 1]
            rows = seg.matrix.indices[lo:hi]
            tf = seg.matrix.data[lo:hi]
            norm = self.k1 * (1 - self.b + self.b * seg.lengths[rows] / avgdl)
            rows_all.append(rows)
            vals_all.append(weight * tf * (self.k1 + 1) / (tf + norm))
        if not rows_all:
            return None
        rows = np.concatenate(rows_all)
        scores = np.bincount(rows, weights=np.concatenate(vals_all), minlength=len(seg.ids))
        scores[~seg.live] = 0
        hit_rows = np.flatnonzero(scores)
        return seg.ids[hit_rows], scores[hit_rows]

    def save(self, folder: Path) -> list[Path]:
        """Write the index (compacted) into a folder; returns the files written."""
        self.compact()
        seg = self.segments[0] if self.segments else None
        matrix = seg.matrix if seg else sparse.csc_matrix((0, len(self.vocab)), dtype=np.float32)
        arrays = folder / "bm25.npz"
        with arrays.open("wb") as fh:
            np.savez(
                fh, data=matrix.data, indices=matrix.indices, indptr=matrix.indptr,
                shape=np.array(matrix.shape), ids=seg.ids if seg else np.zeros(0, np.int64),
                lengths=seg.lengths if seg else np.zeros(0, np.float32), df=self.df,
            )
        vocab = folder / "bm25_vocab.json"
        vocab.write_text(json.dumps(sorted(self.vocab, key=self.vocab.__getitem__)), encoding="utf-8")
        return [arrays, vocab]

    @classmethod
    def load(cls, folder: Path) -> BM25Index:
        """Read an index written by ``save``."""
        index = cls()
        terms = json.loads((folder / "bm25_vocab.json").read_text(encoding="utf-8"))
        index.vocab = {t: i for i, t in enumerate(terms)}
        with np.load(folder / "bm25.npz") as z:
            matrix = sparse.csc_matrix((z["data"], z["indices"], z["indptr"]), shape=tuple(z["shape"]))
            index.df = z["df"].astype(np.int64)
            if len(z["ids"]):
                index._append(z["ids"].astype(np.int64), matrix, z["lengths"])
        return index
