"""Hybrid retrieval: dense and BM25 search per readable collection, fused, optionally reranked.

Only the indexes of the collections a caller may read are searched, so nothing from
another collection can be fused, reranked or handed to a prompt.
"""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from assistant.acronyms import expand as expand_acronyms
from assistant.corpus import Corpus
from assistant.errors import ConfigError
from assistant.fusion import TermCounts, lexical_coverage, named_documents
from assistant.settings import RetrievalSettings
from assistant.spelling import correct, dictionary
from storage.bm25 import tokenize
from storage.documents import StoredChunk, searchable_text
from storage.search_index import SearchIndex

# Where a compound question starts its next part: ", and what ...", "? How ...".
_ASKING = r"(?:what|how|why|who|whom|when|where|which|are|is|does|do|can|should|will)\b"
PART_BREAK = re.compile(rf",?\s+and\s+(?={_ASKING})|(?<=\?)\s+(?=\S)", re.IGNORECASE)
# A part is searched on its own only when it asks something: not "Answer in USD millions." or
# "ROA is defined as ...", the instructions and definitions that follow many analysts' questions.
ASKS = re.compile(rf"^{_ASKING}|\?$", re.IGNORECASE)
ACRONYM_PASSAGES = 10  # passages an unknown acronym's spelled-out phrase is looked for in


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
        if self.rerank is not None:  # the order follows the reranker's score when one is configured
            out["rerank"] = round(self.rerank, 4)
        return {"n": n, **out} if n is not None else out


class Reranker(Protocol):
    """Scores (question, passage) pairs; higher is more relevant."""

    def score(self, question: str, passages: list[str]) -> list[float]: ...


class CrossEncoderReranker:
    """A local sentence-transformers cross-encoder (a model with a sequence-classification head)."""

    SETTING = "retrieval.reranker_model"

    def __init__(self, model: str) -> None:
        from sentence_transformers import CrossEncoder

        from assistant.embeddings import resolve_model_dir

        folder = resolve_model_dir(model, self.SETTING)
        self.model = CrossEncoder(str(folder), device="cpu", local_files_only=True)
        # An embedding model (architecture BertModel) loads too, with a new, untrained head that
        # would rank passages at random without anyone noticing: refuse it.
        architectures = self.model.config.architectures or []
        if not any(name.endswith("ForSequenceClassification") for name in architectures):
            raise ConfigError(
                f"{self.SETTING}: {folder} is no cross-encoder (its architectures are {architectures or 'not given'}, "
                "with no ...ForSequenceClassification head); point it at a reranker model such as "
                "cross-encoder/ms-marco-MiniLM-L-6-v2, or leave it unset"
            )

    def score(self, question: str, passages: list[str]) -> list[float]:
        """Relevance of each passage to the question."""
        return [float(s) for s in self.model.predict([(question, p) for p in passages], show_progress_bar=False)]


@dataclass
class Retrieval:
    """Passages, best first, and how long finding them took."""

    passages: list[Passage]
    query: str
    retrieve_ms: float
    indexes: list[SearchIndex] = field(default_factory=list)
    """The indexes searched, so that what else needs them (the answerability check) does not fetch them again."""
    indexing: dict[str, int] = field(default_factory=dict)
    """Per collection searched, the files still being embedded: found by keyword search only until they are."""


def fuse_rrf(rankings: Iterable[list[tuple[Any, float]]], k: int) -> dict[Any, float]:
    """Reciprocal rank fusion of several rankings of chunk ids."""
    fused: dict[Any, float] = {}
    for ranking in rankings:
        for rank, (chunk_id, _) in enumerate(ranking):
            fused[chunk_id] = fused.get(chunk_id, 0.0) + 1.0 / (k + rank + 1)
    return fused


def fuse_weighted(
    dense: list[tuple[Any, float]], bm25: list[tuple[Any, float]], dense_weight: float
) -> dict[Any, float]:
    """Weighted sum of min-max normalised scores."""
    fused: dict[Any, float] = {}
    for ranking, weight in ((dense, dense_weight), (bm25, 1.0 - dense_weight)):
        if not ranking:
            continue
        scores = [s for _, s in ranking]
        lo, hi = min(scores), max(scores)
        for chunk_id, s in ranking:
            norm = (s - lo) / (hi - lo) if hi > lo else 1.0
            fused[chunk_id] = fused.get(chunk_id, 0.0) + weight * norm
    return fused


def summed_term_counts(indexes: list[SearchIndex]) -> TermCounts:
    """Chunk and term counts over all of ``indexes``, as if they were one."""
    def counts(terms: list[str]) -> tuple[int, list[int]]:
        found = [index.term_counts(terms) for index in indexes]
        return sum(n for n, _ in found), [sum(column) for column in zip(*(c for _, c in found), strict=True)]
    return counts


def citation_unit(chunk: StoredChunk) -> tuple[Any, ...]:
    """What a user cites: a page of a paged document, else the passage itself."""
    if chunk.page is None:
        return (chunk.collection, chunk.file, "chunk", chunk.id)
    return (chunk.collection, chunk.file, chunk.page)


def best_per_unit(ranking: list[tuple[int, float]], chunks: dict[int, StoredChunk]) -> list[tuple[Any, float]]:
    """A ranking of chunks turned into a ranking of citation units, each at its best chunk."""
    seen: dict[Any, float] = {}
    for i, score in ranking:
        seen.setdefault(citation_unit(chunks[i]), score)
    return list(seen.items())


def knows_term(indexes: list[SearchIndex]) -> Callable[[str], bool]:
    """Whether a word stem occurs in any of ``indexes``."""
    return lambda term: any(index.has_term(term) for index in indexes)


def question_parts(question: str) -> list[str]:
    """The questions a compound question asks ("How does X work, and what does Y cost?"); [] for one question."""
    parts = [part.strip(" ,") for part in PART_BREAK.split(question)]
    parts = [part for part in parts if len(tokenize(part)) >= 2 and ASKS.search(part)]
    return parts if len(parts) > 1 else []


def interleave(rankings: list[list[Passage]], k: int) -> list[Passage]:
    """The rankings' passages taken in turn, best first, each citation unit once, ``k`` in all."""
    taken: dict[Any, Passage] = {}
    for passage in itertools.chain.from_iterable(itertools.zip_longest(*rankings)):
        if passage is not None:
            taken.setdefault(citation_unit(passage.chunk), passage)
    return list(taken.values())[:k]


class Retriever:
    """Finds the passages that best answer a question within the allowed collections."""

    def __init__(self, corpus: Corpus, settings: RetrievalSettings, reranker: Reranker | None = None) -> None:
        self.corpus = corpus
        self.settings = settings
        self.reranker = reranker

    def retrieve(self, query: str, collections: list[str] | None = None, top_k: int | None = None) -> Retrieval:
        """The ``top_k`` passages for ``query`` from ``collections`` (all when None), one per page.

        The query searched (``Retrieval.query``) has its misspelt words corrected. Each part of a
        compound question is searched too, and the parts' best passages take turns with the whole
        question's, so that no part is left without evidence.
        """
        started = time.perf_counter()
        k = top_k or self.settings.top_k
        readable = self._readable(collections)  # listed once a question: the indexes and what is still embedding
        indexes = [self.corpus.index(cid) for cid in readable]
        if not indexes:
            return Retrieval([], query, (time.perf_counter() - started) * 1000, indexes)
        indexing = self._waiting(readable)
        known = knows_term(indexes)
        if self.settings.expand_acronyms:
            query = expand_acronyms(query, known, lambda asked: self._nearest_texts(asked, indexes),
                                    lambda sentence: bool(ASKS.search(sentence)))
        if self.settings.correct_spelling:
            query = correct(query, known)
        queries = [query, *(question_parts(query) if self.settings.split_questions else [])]
        vectors = self.corpus.embedder.embed_queries(queries)  # one pass for all parts
        hits = [self._search(q, v, indexes) for q, v in zip(queries, vectors, strict=True)]
        chunks = self.corpus.store.chunks_by_id(list(dict.fromkeys(
            i for dense, bm25 in hits for i, _ in dense + bm25)))  # one query for all parts
        counts = summed_term_counts(indexes)
        # A part ("If it is not useful, say why") rarely repeats the names the whole question gives.
        rankings = [self._ranked(q, *found, chunks, k, counts, query) for q, found in zip(queries, hits, strict=True)]
        return Retrieval(interleave(rankings, k), query, (time.perf_counter() - started) * 1000, indexes, indexing)

    def warm_up(self, spelling: bool = True) -> None:
        """Load what the first question would otherwise wait for.

        The embedding model and the indexes take about 5 s on two cores; the spelling dictionary
        (with ``spelling``) about 2 s more, and only a question with a misspelt word needs it.
        """
        self.corpus.embedder.embed_queries(["warm up"])  # the first pass through the model is the slowest
        self.indexes(None)
        if spelling and self.settings.correct_spelling:
            dictionary()

    def still_indexing(self, collections: list[str] | None) -> dict[str, int]:
        """Of ``collections`` (all when None), those with files still being embedded, and how many files."""
        return self._waiting(self._readable(collections))

    def indexes(self, collections: list[str] | None) -> list[SearchIndex]:
        """The indexes of ``collections`` (all when None): all that a search may read."""
        return [self.corpus.index(cid) for cid in self._readable(collections)]

    def _readable(self, collections: list[str] | None) -> dict[int, str]:
        """The ids and names of ``collections`` that exist (all when None)."""
        names = self.corpus.store.collections()
        return {cid: name for cid, name in names.items() if collections is None or name in collections}

    def _waiting(self, readable: dict[int, str]) -> dict[str, int]:
        waiting = self.corpus.store.files_waiting()
        return {readable[cid]: n for cid, n in waiting.items() if cid in readable}

    def _ranked(
        self, query: str, dense: list[tuple[int, float]], bm25: list[tuple[int, float]],
        chunks: dict[int, StoredChunk], k: int, term_counts: TermCounts, question: str,
    ) -> list[Passage]:
        """The best ``k`` pages' passages for one query's hits (``question``: the whole, for the names it uses)."""
        dense = [hit for hit in dense if hit[0] in chunks]  # ids the database lacks are never returned
        bm25 = [hit for hit in bm25 if hit[0] in chunks]
        n = self.settings.candidates if self.reranker else k
        passages = self._by_page(query, dense, bm25, chunks, n, term_counts, question)
        if self.reranker and passages:
            passages = self._rerank(query, passages)
        return passages[:k]

    def _dense_weight(self, query: str, bm25: list[tuple[int, float]], chunks: dict[int, StoredChunk],
                      term_counts: TermCounts) -> tuple[float, float]:
        """The dense ranking's weight for this question, and the best BM25 passage's lexical coverage."""
        if self.settings.fusion != "adaptive":
            return self.settings.dense_weight, 0.0
        if not bm25:
            return 1.0, 0.0
        best = chunks[bm25[0][0]]
        coverage = lexical_coverage(
            sorted(set(tokenize(query))), set(tokenize(searchable_text(best.file, best.heading, best.text))),
            term_counts,
        )
        return 1.0 - self.settings.lexical_weight * coverage, coverage

    def _fuse(self, dense: list[tuple[Any, float]], bm25: list[tuple[Any, float]], weight: float) -> dict[Any, float]:
        if self.settings.fusion == "rrf":
            return fuse_rrf([dense, bm25], self.settings.rrf_k)
        return fuse_weighted(dense, bm25, weight)

    def _by_page(
        self, query: str, dense: list[tuple[int, float]], bm25: list[tuple[int, float]],
        chunks: dict[int, StoredChunk], n: int, term_counts: TermCounts, question: str,
    ) -> list[Passage]:
        """Fuse evidence per page (the unit a user cites), then show each page's best chunk.

        A page's dense and BM25 scores are its best chunk's in each ranking, so two chunks of
        one page that match different words of the question both count for it. With adaptive
        fusion, pages of the documents the question names are lifted, the more so the less the
        BM25 ranking covers the question.
        """
        weight, coverage = self._dense_weight(query, bm25, chunks, term_counts)
        page_dense, page_bm25 = best_per_unit(dense, chunks), best_per_unit(bm25, chunks)
        pages = self._fuse(page_dense, page_bm25, weight)
        lift = self.settings.name_boost * (1.0 - coverage) if self.settings.fusion == "adaptive" else 0.0
        if lift > 0:
            named = named_documents(question, {u[1] for u in pages}, term_counts)
            pages = {u: score + lift * named.get(u[1], 0.0) for u, score in pages.items()}
        by_chunk = self._fuse(dense, bm25, weight)
        best: dict[Any, int] = {}
        for i in sorted(by_chunk, key=by_chunk.__getitem__, reverse=True):
            best.setdefault(citation_unit(chunks[i]), i)
        dense_of, bm25_of = dict(page_dense), dict(page_bm25)
        order = sorted(pages, key=pages.__getitem__, reverse=True)[:n]
        return [Passage(chunks[best[u]], pages[u], dense_of.get(u), bm25_of.get(u)) for u in order]

    def _nearest_texts(self, query: str, indexes: list[SearchIndex]) -> list[str]:
        """The texts of the passages nearest ``query`` by embedding alone (where acronyms are spelled out)."""
        hits = self._dense(self.corpus.embedder.embed_queries([query])[0], indexes, ACRONYM_PASSAGES)
        chunks = self.corpus.store.chunks_by_id([i for i, _ in hits])
        return [chunks[i].text for i, _ in hits if i in chunks]

    def _search(
        self, query: str, vector: np.ndarray, indexes: list[SearchIndex]
    ) -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:
        n = self.settings.candidates
        bm25 = [hit for index in indexes for hit in index.search_bm25(query, n)]
        bm25.sort(key=lambda hit: hit[1], reverse=True)
        return self._dense(vector, indexes, n), bm25[:n]

    @staticmethod
    def _dense(vector: np.ndarray, indexes: list[SearchIndex], n: int) -> list[tuple[int, float]]:
        """The ``n`` nearest chunks to ``vector`` over all ``indexes``, best first."""
        dense = [hit for index in indexes for hit in index.search_dense(vector, n)]
        dense.sort(key=lambda hit: hit[1], reverse=True)
        return dense[:n]

    def _rerank(self, query: str, passages: list[Passage]) -> list[Passage]:
        assert self.reranker is not None
        texts = [searchable_text(p.chunk.file, p.chunk.heading, p.chunk.text) for p in passages]
        scores = self.reranker.score(query, texts)
        ranked = sorted(zip(passages, scores, strict=True), key=lambda pair: pair[1], reverse=True)
        return [Passage(p.chunk, p.score, p.dense, p.bm25, s) for p, s in ranked]
