"""The quality loop: how questions fare per collection, the ones the documents failed, and the answers admins expect.

Admins only. A question counts for every collection its conversation searches. A refused
question or one rated down is listed with its sources, so that an admin sees what the
documents are missing; from it an admin writes the expected answer and its page (or marks it
"not in the documents"), and those form the install's own QA set (``assistant.quality_export``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path, PurePosixPath

from assistant.audit import AuditLog, Principal, require_admin
from assistant.audit_events import ExpectedAnswerSaved
from assistant.errors import InvalidInput, NotFoundError
from assistant.quality_export import QAExport, QAExporter
from assistant.stored_answer import StoredAnswer
from storage.library import LibraryStore
from storage.quality import ExpectedRecord, NewExpected, ProblemRecord, QualityStore

ALL = "all collections"
MAX_ANSWER = 4000


@dataclass(frozen=True)
class DayFigures:
    """One day's questions, refusals and ratings."""

    day: date
    asked: int = 0
    refused: int = 0
    up: int = 0
    down: int = 0


@dataclass(frozen=True)
class CollectionFigures:
    """A collection's (or every collection's) figures over the window, day by day, oldest day first."""

    collection: str
    days: list[DayFigures]

    @property
    def asked(self) -> int:
        """Questions asked in the window."""
        return sum(d.asked for d in self.days)

    @property
    def refused(self) -> int:
        """Questions refused in the window."""
        return sum(d.refused for d in self.days)

    @property
    def up(self) -> int:
        """Thumbs up given in the window."""
        return sum(d.up for d in self.days)

    @property
    def down(self) -> int:
        """Thumbs down given in the window."""
        return sum(d.down for d in self.days)

    @property
    def refusal_rate(self) -> float | None:
        """Refused questions per question asked; None when none was asked."""
        return self.refused / self.asked if self.asked else None


@dataclass(frozen=True)
class QualityReport:
    """The figures of the last ``len(overall.days)`` days, overall and per collection (by name)."""

    overall: CollectionFigures
    collections: list[CollectionFigures]


@dataclass(frozen=True)
class SourcePage:
    """A page a question's answer was drawn from (or could have been): document, file and 1-based page."""

    collection: str
    document_id: int | None
    file: str
    page: int | None

    @property
    def label(self) -> str:
        """How the page is named on screen and typed back: ``file`` or ``file p. N``."""
        return f"{self.file} p. {self.page}" if self.page is not None else self.file


@dataclass(frozen=True)
class ProblemQuestion:
    """A question that was refused or marked down, with its sources and the expected answer, if written."""

    message_id: int
    at: datetime
    question: str
    answer: str
    collections: list[str]
    refused: bool
    refusal_reason: str | None
    marked_down: int
    comment: str
    sources: list[SourcePage] = field(default_factory=list)
    expected: ExpectedRecord | None = None

    @property
    def origin(self) -> str:
        """Why the question is listed: ``refused`` or ``marked_down``."""
        return "refused" if self.refused else "marked_down"


def _problem(record: ProblemRecord, expected: ExpectedRecord | None) -> ProblemQuestion:
    stored = StoredAnswer.model_validate(record.payload)
    sources: list[SourcePage] = []
    for s in stored.sources:
        page = SourcePage(s.collection, s.document_id, s.file, s.page)
        if page not in sources:
            sources.append(page)
    return ProblemQuestion(record.message_id, record.at, record.question, record.answer, record.collections,
                           stored.refused, stored.refusal_reason, record.marked_down, record.comment, sources,
                           expected)


class QualityService:
    """Figures, problem questions and expected answers for the admin Quality tab and ``run.py quality``."""

    def __init__(self, store: QualityStore, library: LibraryStore, audit: AuditLog) -> None:
        self.store = store
        self.library = library
        self.audit = audit
        self.exporter = QAExporter(store, library, audit)

    def export(self, actor: Principal, folder: Path, collection: str | None = None) -> QAExport:
        """Write the expected answers (of one collection, or all) as a QA set in the shared format into ``folder``."""
        return self.exporter.export(actor, folder, collection)

    def export_zip(self, actor: Principal, collection: str | None = None) -> tuple[Path, QAExport]:
        """The same QA set as one zip file in a new temporary folder, for download."""
        return self.exporter.export_zip(actor, collection)

    def report(self, actor: Principal, days: int = 30, today: date | None = None) -> QualityReport:
        """Questions, refusals and ratings per day over the last ``days`` days (today included)."""
        require_admin(actor)
        last = today or datetime.now(UTC).date()
        first = last - timedelta(days=days - 1)
        since = datetime(first.year, first.month, first.day, tzinfo=UTC)
        counts: dict[str, Counter[tuple[date, str]]] = {}

        def count(collections: list[str], at: datetime, what: str) -> None:
            day = at.astimezone(UTC).date() if at.tzinfo else at.date()
            for name in {ALL, *collections}:
                counts.setdefault(name, Counter())[(day, what)] += 1

        for asked in self.store.asked(since):
            count(asked.collections, asked.at, "asked")
            if asked.refused:
                count(asked.collections, asked.at, "refused")
        for rating in self.store.ratings(since):
            count(rating.collections, rating.at, "up" if rating.helpful else "down")
        window = [first + timedelta(days=n) for n in range(days)]

        def figures(name: str) -> CollectionFigures:
            c = counts.get(name, Counter())
            return CollectionFigures(name, [DayFigures(d, c[(d, "asked")], c[(d, "refused")], c[(d, "up")],
                                                       c[(d, "down")]) for d in window])

        return QualityReport(figures(ALL), [figures(n) for n in sorted(counts) if n != ALL])

    def problems(self, actor: Principal, collection: str | None = None, limit: int = 200) -> list[ProblemQuestion]:
        """The newest questions that were refused or marked down (of one collection, or all), with their sources."""
        require_admin(actor)
        expected = {e.message_id: e for e in self.store.expected() if e.message_id is not None}
        found: list[ProblemQuestion] = []
        offset = 0
        while len(found) < limit:  # a collection's questions may lie further back than the newest of all
            batch = self.store.problems(limit, offset=offset)
            found += [_problem(r, expected.get(r.message_id)) for r in batch
                      if collection is None or collection in r.collections]
            if len(batch) < limit:
                break
            offset += limit
        return found[:limit]

    def expected(self, actor: Principal, collection: str | None = None) -> list[ExpectedRecord]:
        """The expected answers written so far (of one collection, or all)."""
        require_admin(actor)
        return self.store.expected(collection)

    def save_expected(self, actor: Principal, message_id: int, answer: str, page: str,
                      not_in_documents: bool = False) -> ExpectedRecord:
        """Store the answer an admin expects to a listed question, with its page, in one step.

        Args:
            actor: An admin.
            message_id: The question, as ``problems`` lists it.
            answer: The expected answer; ignored with ``not_in_documents``.
            page: ``file p. N`` (or ``file``) as the question's sources are labelled, or typed: a document of the
                question's collections named by its path or file name, then the page number.
            not_in_documents: The documents do not hold the answer: the question is unanswerable.

        Returns:
            The expected answer as stored.
        """
        require_admin(actor)
        found = self.store.problems(1, message_id)
        if not found:
            raise NotFoundError("there is no such refused or marked-down question")
        problem = _problem(found[0], None)
        answer = answer.strip()
        if not_in_documents:
            source = None
        elif not answer or len(answer) > MAX_ANSWER:
            raise InvalidInput(f"write the expected answer (1 to {MAX_ANSWER} characters), or mark the question "
                               "as not in the documents")
        else:
            source = self._page(problem, page)
        searched = [*problem.collections, *(s.collection for s in problem.sources)]
        collection = source.collection if source else (searched or [""])[0]
        if not collection:
            raise InvalidInput("the question searched no collection, so its answer would belong to none")
        new = NewExpected(collection, message_id, problem.question, None if source is None else answer,
                          source is not None, problem.origin, source.document_id if source else None,
                          source.file if source else None, source.page if source else None, actor.id)
        saved = self.store.save_expected(new)
        self.audit.record(actor, ExpectedAnswerSaved(message_id, collection, new.answerable))
        return next(e for e in self.store.expected(collection) if e.id == saved)

    def _page(self, problem: ProblemQuestion, typed: str) -> SourcePage:
        """The source page an admin chose from the question's sources, or typed as ``file p. N``."""
        typed = typed.strip()
        chosen = next((s for s in problem.sources if s.label == typed), None)
        if chosen is not None:
            return chosen
        name, _, number = typed.rpartition(" p. ") if " p. " in typed else (typed, "", "")
        if not name:
            raise InvalidInput("choose one of the question's sources, or type the document and page as "
                               "'file p. N'")
        if number and not (number.isdigit() and int(number) >= 1):
            raise InvalidInput(f"{number!r} is not a page number (pages are counted from 1)")
        matches = [d for c in problem.collections for d in self.library.documents(c)
                   if d.path == name or PurePosixPath(d.path).name == name]
        if len(matches) != 1:
            where = ", ".join(problem.collections) or "no collection"
            found = "several documents match" if matches else "no document matches"
            raise InvalidInput(f"{found} {name!r} in {where}: type the document's path as the Documents tab shows it")
        doc = matches[0]
        return SourcePage(doc.collection, doc.id, doc.path, int(number) if number else None)
