"""``run.py copy-index``: fill one index backend from the database, then check it ranks as the other does.

The database is the source of truth (chunk rows carry their embeddings), so copying an
index is rebuilding it in the other backend from those rows, with no re-embedding. The
check asks both backends a sample of questions (the opening words of chunks spread over
each collection) and compares their dense and BM25 rankings.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from assistant.corpus import IN_PROCESS, POSTGRESQL, Corpus
from assistant.errors import InvalidInput
from storage.search_index import IndexBackend

BACKENDS = (IN_PROCESS, POSTGRESQL)
QUESTION_WORDS = 12
AGREEMENT_NEEDED = 0.95  # share of sampled questions whose best passage both backends agree on


@dataclass
class RankingAgreement:
    """How alike two backends rank one kind of search over the sampled questions."""

    questions: int = 0
    same_top: int = 0
    overlap_sum: float = 0.0

    @property
    def top_share(self) -> float:
        """Share of questions with the same best chunk (or an equally scored one)."""
        return self.same_top / self.questions if self.questions else 1.0

    @property
    def overlap(self) -> float:
        """Mean share of the top ``k`` chunks both backends return."""
        return self.overlap_sum / self.questions if self.questions else 1.0

    def add(self, left: list[tuple[int, float]], right: list[tuple[int, float]], k: int) -> None:
        """Count one question's two rankings."""
        self.questions += 1
        if not left and not right:
            self.same_top += 1
            self.overlap_sum += 1.0
            return
        if left and right and (left[0][0] == right[0][0] or abs(left[0][1] - right[0][1]) < 1e-4):
            self.same_top += 1
        self.overlap_sum += len({i for i, _ in left[:k]} & {i for i, _ in right[:k]}) / max(1, min(k, len(left)))


@dataclass
class IndexCopyReport:
    """What `copy-index` copied and how alike the two backends answered."""

    source: str
    target: str
    collections: int = 0
    chunks: int = 0
    k: int = 10
    dense: RankingAgreement = field(default_factory=RankingAgreement)
    bm25: RankingAgreement = field(default_factory=RankingAgreement)

    @property
    def agrees(self) -> bool:
        """Whether both rankings agree on the best chunk for nearly every sampled question."""
        return min(self.dense.top_share, self.bm25.top_share) >= AGREEMENT_NEEDED

    def as_json(self) -> dict[str, object]:
        """The report as the CLI's ``--json`` prints it."""
        return {
            "source": self.source, "target": self.target, "collections": self.collections, "chunks": self.chunks,
            "questions": self.dense.questions, "k": self.k, "agrees": self.agrees,
            "dense": {"same_top": round(self.dense.top_share, 4), "overlap": round(self.dense.overlap, 4)},
            "bm25": {"same_top": round(self.bm25.top_share, 4), "overlap": round(self.bm25.overlap, 4)},
        }


def copy_index(
    corpus: Corpus, target: str, sample: int = 50, k: int = 10,
    progress: Callable[[str, int], None] | None = None,
) -> IndexCopyReport:
    """Rebuild every collection's index in ``target`` from the database, then compare it with the other backend.

    Args:
        corpus: The install's corpus (its database and embedding model).
        target: ``"postgresql"`` or ``"in-process"``.
        sample: Questions asked of each collection for the check.
        k: How many top chunks the check compares.
        progress: Called with each collection's name and chunk count once copied.
    """
    if target not in BACKENDS:
        raise InvalidInput(f"--to must be one of {', '.join(BACKENDS)}, not {target!r}")
    source = IN_PROCESS if target == POSTGRESQL else POSTGRESQL
    report = IndexCopyReport(source, target, k=k)
    into, beside = corpus.open_backend(target), corpus.open_backend(source)
    for cid, name in corpus.store.collections().items():
        into.drop(cid)
        into.reconcile(cid)
        into.save(cid)
        chunks = len(corpus.store.chunk_ids(cid))
        report.collections += 1
        report.chunks += chunks
        if progress:
            progress(name, chunks)
        _compare(corpus, cid, beside, into, sample, report)
    return report


def _compare(corpus: Corpus, cid: int, source: IndexBackend, target: IndexBackend, sample: int,
             report: IndexCopyReport) -> None:
    """Ask both backends the opening words of ``sample`` chunks of a collection, spread over it."""
    ids = corpus.store.chunk_ids(cid)
    if not len(ids):
        return
    picked = ids[:: max(1, len(ids) // sample)][:sample].tolist()
    questions = [" ".join(text.split()[:QUESTION_WORDS]) for _, _, texts in corpus.store.iter_chunk_payloads(picked)
                 for text in texts]
    vectors = corpus.embedder.embed_queries(questions)
    left, right = source.get(cid), target.get(cid)
    k = report.k
    for question, vector in zip(questions, vectors, strict=True):
        report.dense.add(left.search_dense(vector, k), right.search_dense(vector, k), k)
        report.bm25.add(left.search_bm25(question, k), right.search_bm25(question, k), k)
