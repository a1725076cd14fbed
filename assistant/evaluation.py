"""Retrieval and answer quality on any QA set in the shared format (docs/ + qa.jsonl)."""

from __future__ import annotations

import json
import re
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.errors import EnclaveError
from assistant.events import Answer, Done

if TYPE_CHECKING:  # assistant.services reads the advice (assistant.advice), which scores with this module
    from assistant.services import Services

WORD_RE = re.compile(r"\w+")


@dataclass
class QAItem:
    """One question of a QA set."""

    id: str
    question: str
    answer: str | None
    sources: list[tuple[str, int | None]]
    answerable: bool
    type: str


def load_qa(folder: Path) -> list[QAItem]:
    """Read ``qa.jsonl``; a malformed line is an error that names the line."""
    path = folder / "qa.jsonl"
    if not path.is_file() or not (folder / "docs").is_dir():
        raise EnclaveError(f"{folder} is not a QA set: it needs docs/ and qa.jsonl")
    items = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            sources = [(s["file"], s.get("page")) for s in raw.get("sources") or []]
            items.append(QAItem(str(raw.get("id", n)), raw["question"], raw.get("answer"), sources,
                                bool(raw.get("answerable", True)), raw.get("type") or "all"))
        except (ValueError, KeyError, TypeError) as exc:
            raise EnclaveError(f"{path}:{n} is not a valid QA line: {exc}") from exc
    return items


def _tokens(text: str) -> list[str]:
    return WORD_RE.findall(text.lower())


def token_f1(prediction: str, reference: str) -> float:
    """SQuAD-style token F1."""
    pred, ref = _tokens(prediction), _tokens(reference)
    common = sum((Counter(pred) & Counter(ref)).values())
    if not pred or not ref or not common:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def containment(prediction: str, reference: str) -> float:
    """Share of the reference's distinct words that the answer contains."""
    ref = set(_tokens(reference))
    return len(ref & set(_tokens(prediction))) / len(ref) if ref else 0.0


def _hit(file: str, page: int | None, gold: list[tuple[str, int | None]], by_page: bool) -> bool:
    return any(file == gf and (not by_page or gp is None or page == gp) for gf, gp in gold)


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _mean(values: Iterable[float]) -> float | None:
    values = list(values)
    return round(statistics.fmean(values), 4) if values else None


@dataclass
class Record:
    """What one question produced."""

    item: QAItem
    ranked: list[tuple[str, int | None]]
    retrieve_ms: float
    answer: Answer | None = None
    first_token_ms: float | None = None
    first_useful_ms: float | None = None


@dataclass
class Evaluation:
    """Runs a QA set through the services and computes the report."""

    services: Services
    retrieve_only: bool = False
    records: list[Record] = field(default_factory=list)

    def run(self, items: list[QAItem], progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
        """Ask every question; returns the JSON report."""
        for i, item in enumerate(items, 1):
            self.records.append(self._one(item))
            if progress:
                progress(i, len(items))
        return self.report()

    def _one(self, item: QAItem) -> Record:
        retrieval = self.services.retriever.retrieve(item.question, top_k=10)
        ranked = [(p.chunk.file, p.chunk.page) for p in retrieval.passages]
        record = Record(item, ranked, retrieval.retrieve_ms)
        if not self.retrieve_only:
            for event in self.services.answers.ask(item.question):
                if isinstance(event, Done):
                    record.answer = event.answer
                    record.first_token_ms = event.answer.timings.get("first_token_ms")
                    record.first_useful_ms = event.answer.timings.get("first_useful_ms")
        return record

    def report(self) -> dict[str, Any]:
        """Overall and per-type figures."""
        return Scorecard(self.records, self.retrieve_only).report()


@dataclass
class Scorecard:
    """The report's figures from records, however they were made (benchmarks score other retrievers' rankings)."""

    records: list[Record]
    retrieve_only: bool = False

    def report(self) -> dict[str, Any]:
        """Overall and per-type figures."""
        by_type: dict[str, list[Record]] = defaultdict(list)
        for r in self.records:
            by_type[r.item.type].append(r)
        overall = self._figures(self.records)
        overall["by_type"] = {t: self._figures(rs) for t, rs in sorted(by_type.items())}
        return overall

    def _figures(self, records: list[Record]) -> dict[str, Any]:
        answerable = [r for r in records if r.item.answerable and r.item.sources]
        paged = [r for r in answerable if any(p is not None for _, p in r.item.sources)]
        retrieval = {
            f"file_recall@{k}": _mean(any(_hit(f, p, r.item.sources, False) for f, p in r.ranked[:k])
                                       for r in answerable) for k in (1, 5, 10)
        }
        retrieval["page_recall@5"] = _mean(any(_hit(f, p, r.item.sources, True) for f, p in r.ranked[:5])
                                           for r in paged)
        retrieval["mrr@10"] = _mean(self._rr(r) for r in answerable)
        report: dict[str, Any] = {"questions": len(records), "retrieval": retrieval}
        report["answers"] = self._answer_figures(records) if not self.retrieve_only else {}
        report["latency_ms"] = {
            "retrieve_p50": _pct([r.retrieve_ms for r in records], 0.5),
            "retrieve_p95": _pct([r.retrieve_ms for r in records], 0.95),
            "first_token_p50": _pct([r.first_token_ms for r in records if r.first_token_ms], 0.5),
            "first_token_p95": _pct([r.first_token_ms for r in records if r.first_token_ms], 0.95),
            "first_useful_p50": _pct([r.first_useful_ms for r in records if r.first_useful_ms], 0.5),
            "first_useful_p95": _pct([r.first_useful_ms for r in records if r.first_useful_ms], 0.95),
        }
        return report

    @staticmethod
    def _rr(r: Record) -> float:
        by_page = any(p is not None for _, p in r.item.sources)
        for rank, (f, p) in enumerate(r.ranked[:10], 1):
            if _hit(f, p, r.item.sources, by_page):
                return 1.0 / rank
        return 0.0

    def _answer_figures(self, records: list[Record]) -> dict[str, Any]:
        done = [r for r in records if r.answer is not None]
        answerable = [r for r in done if r.item.answerable]
        unanswerable = [r for r in done if not r.item.answerable]
        answered = [r for r in answerable if r.answer and not r.answer.refused and r.item.answer]
        citations = [
            _hit(c.passage.chunk.file, c.passage.chunk.page, r.item.sources, True)
            for r in answered if r.answer for c in r.answer.citations
        ]
        return {
            "token_f1": _mean(token_f1(r.answer.text, r.item.answer or "") for r in answered if r.answer),
            "containment": _mean(containment(r.answer.text, r.item.answer or "") for r in answered if r.answer),
            "citation_precision": _mean(float(c) for c in citations),
            "refusal_accuracy": _mean(float(bool(r.answer and r.answer.refused)) for r in unanswerable),
            "false_refusal_rate": _mean(float(bool(r.answer and r.answer.refused)) for r in answerable),
            "errors": sum(1 for r in done if r.answer and r.answer.error),
            "refusals_by_reason": self._reasons(done),
        }

    @staticmethod
    def _reasons(records: list[Record]) -> dict[str, dict[str, int]]:
        """Which decision step refused, split by whether the question was answerable: what each step buys."""
        out: dict[str, dict[str, int]] = defaultdict(lambda: {"unanswerable": 0, "answerable": 0})
        for r in records:
            if r.answer and r.answer.refused:
                step = (r.answer.refusal_reason or "").split(":")[0].split("(")[0].strip()
                out[step]["answerable" if r.item.answerable else "unanswerable"] += 1
        return dict(out)
