"""The quality loop: refused and marked-down questions listed with their sources, expected answers, the QA export."""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from assistant.audit import SYSTEM, Principal
from assistant.audit_events import ExpectedAnswerSaved
from assistant.chats import Saved
from assistant.errors import InvalidInput, NotFoundError, PermissionDenied
from assistant.evaluation import load_qa
from assistant.quality import ALL, CollectionFigures
from assistant.stored_answer import ShownMessage
from tests.fake_ollama import FakeOllama, FakeOllamaScript
from tests.worlds import make_pdf, services_answered_by

PASSWORD = "correct horse battery"
FLIGHTS = "Which class do employees fly on flights under six hours?"
NOT_THERE = "Who is the CEO of Contoso Electronics?"


@pytest.fixture(scope="module")
def world(embedder: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """hr (a two-page travel PDF and a leave note) and payroll, both read by alice; an Ollama stand-in answers."""
    root = tmp_path_factory.mktemp("quality")
    (root / "hr").mkdir()
    (root / "payroll").mkdir()
    make_pdf(root / "hr" / "travel.pdf", ["Travel policy overview and booking rules.",
                                          "Employees fly economy class on flights under six hours."])
    (root / "hr" / "leave.md").write_text("# Leave\n\nEmployees accrue 1.5 days of paid leave per month.\n")
    (root / "payroll" / "salaries.md").write_text(
        "# Salaries\n\nThe salary bands for engineers range from level one to level seven.\n")
    with FakeOllama(FakeOllamaScript(reply="Employees fly economy class on short flights [1].")) as fake:
        services = services_answered_by(fake, root, embedder, ("hr", "payroll"))
        web = services.web
        web.accounts.create_user(SYSTEM, "alice", PASSWORD)
        web.access.create_group(SYSTEM, "staff")
        web.access.set_member(SYSTEM, "alice", "staff")
        for name in ("hr", "payroll"):
            web.access.set_grant(SYSTEM, "staff", name)
        yield {"services": services, "web": web, "root": root, "alice": web.accounts.sign_in("alice", PASSWORD)[0]}
        services.close()


def _ask(world: dict[str, Any], question: str, collection: str) -> ShownMessage:
    saved = list(world["web"].chats.ask(world["alice"], None, question, [collection]))[-1]
    assert isinstance(saved, Saved)
    return saved.message


def _figures(world: dict[str, Any], name: str) -> CollectionFigures:
    report = world["web"].quality.report(SYSTEM)
    return report.overall if name == ALL else next(f for f in report.collections if f.collection == name)


@pytest.fixture(scope="module")
def listed(world: dict[str, Any]) -> dict[str, ShownMessage]:
    """A question the documents cannot answer (refused), one answered but rated down, one rated up."""
    web, alice = world["web"], world["alice"]
    refused, down = _ask(world, NOT_THERE, "hr"), _ask(world, FLIGHTS, "hr")
    up = _ask(world, "What are the salary bands for engineers?", "payroll")
    web.chats.feedback(alice, down.id, False, "it leaves out the business class rule")
    web.chats.feedback(alice, up.id, True)
    assert refused.refused and not down.refused and not up.refused
    return {"refused": refused, "down": down, "up": up}


def test_refused_and_marked_down_questions_are_listed_with_their_sources(
    world: dict[str, Any], listed: dict[str, ShownMessage]
) -> None:
    hr, payroll, overall = (_figures(world, n) for n in ("hr", "payroll", ALL))
    assert (hr.asked, hr.refused, hr.up, hr.down) == (2, 1, 0, 1)
    assert (payroll.asked, payroll.refused, payroll.up, payroll.down) == (1, 0, 1, 0)
    assert overall.asked == 3 and overall.refusal_rate == pytest.approx(1 / 3)
    today = overall.days[-1]
    assert len(overall.days) == 30 and today.day == datetime.now(UTC).date() and today.asked == 3

    problems = {p.message_id: p for p in world["web"].quality.problems(SYSTEM, "hr")}
    refused, down = problems[listed["refused"].id], problems[listed["down"].id]
    assert refused.refused and refused.origin == "refused" and refused.question == NOT_THERE
    assert refused.sources and {s.file for s in refused.sources} <= {"travel.pdf", "leave.md"}
    assert down.origin == "marked_down" and down.marked_down == 1
    assert down.comment == "it leaves out the business class rule"
    assert "travel.pdf p. 1" in [s.label for s in down.sources], "its pages are offered as they were cited"
    assert listed["up"].id not in problems
    assert world["web"].quality.problems(SYSTEM, "payroll") == []
    newer = _ask(world, NOT_THERE, "payroll")
    assert [p.message_id for p in world["web"].quality.problems(SYSTEM, limit=1)] == [newer.id]
    assert [p.message_id for p in world["web"].quality.problems(SYSTEM, "hr", limit=1)] == [listed["down"].id], (
        "a collection's newest, though newer ones of other collections come first")


def test_an_admins_expected_answer_is_stored_and_exported_as_a_qa_set(
    world: dict[str, Any], listed: dict[str, ShownMessage], tmp_path: Path
) -> None:
    quality = world["web"].quality
    quality.save_expected(SYSTEM, listed["down"].id, "Business class.", "travel.pdf p. 1")  # one of its sources
    saved = quality.save_expected(SYSTEM, listed["down"].id, "Economy class, on flights under six hours.",
                                  "travel.pdf p. 2")  # typed: the page the sources did not show
    quality.save_expected(SYSTEM, listed["refused"].id, "", "", not_in_documents=True)
    assert (saved.collection, saved.file, saved.page, saved.answerable) == ("hr", "travel.pdf", 2, True)
    shown = {p.message_id: p.expected for p in quality.problems(SYSTEM)}
    assert shown[listed["down"].id] is not None and shown[listed["down"].id].answer.startswith("Economy")
    assert len(quality.expected(SYSTEM, "hr")) == 2, "writing again replaces the first answer"
    logged = world["web"].audit.events(SYSTEM, 1, "expected_answer_saved")[0].event
    assert logged == ExpectedAnswerSaved(listed["refused"].id, "hr", answerable=False)

    summary = quality.export(SYSTEM, tmp_path / "qa", "hr")
    items = {i.question: i for i in load_qa(tmp_path / "qa")}
    assert (summary.questions, summary.unanswerable, summary.documents) == (2, 1, 2)
    answered, missing = items[FLIGHTS], items[NOT_THERE]
    assert answered.answer == "Economy class, on flights under six hours."
    assert answered.sources == [("hr/travel.pdf", 2)] and answered.answerable and answered.type == "marked_down"
    assert missing.answer is None and not missing.answerable and missing.type == "refused"
    docs = tmp_path / "qa" / "docs"
    assert (docs / "hr" / "travel.pdf").read_bytes() == (world["root"] / "hr" / "travel.pdf").read_bytes()
    assert sorted(p.relative_to(docs).as_posix() for p in docs.rglob("*") if p.is_file()) == [
        "hr/leave.md", "hr/travel.pdf"], "the collection's corpus, not another collection's"
    with pytest.raises(InvalidInput, match="not an empty folder"):
        quality.export(SYSTEM, tmp_path / "qa", "hr")

    archive, _ = quality.export_zip(SYSTEM, "hr")
    with zipfile.ZipFile(archive) as zipped:
        assert {"enclave-qa-hr/qa.jsonl", "enclave-qa-hr/docs/hr/travel.pdf"} <= set(zipped.namelist())


def test_a_typed_page_must_name_a_document_of_the_questions_collections(
    world: dict[str, Any], listed: dict[str, ShownMessage]
) -> None:
    quality, down = world["web"].quality, listed["down"].id
    typed = quality.save_expected(SYSTEM, down, "Economy class.", "leave.md")
    assert (typed.file, typed.page) == ("leave.md", None)
    for page, error in (("travel.pdf p. 0", "not a page number"), ("salaries.md p. 1", "no document matches"),
                        ("", "choose one of the question's sources")):
        with pytest.raises(InvalidInput, match=error):
            quality.save_expected(SYSTEM, down, "Economy class.", page)
    with pytest.raises(InvalidInput, match="write the expected answer"):
        quality.save_expected(SYSTEM, down, "  ", "travel.pdf p. 2")
    with pytest.raises(NotFoundError):
        quality.save_expected(SYSTEM, listed["up"].id, "Level one to seven.", "salaries.md")
    quality.save_expected(SYSTEM, down, "Economy class, on flights under six hours.", "travel.pdf p. 2")


def test_a_plain_user_is_refused_the_quality_service(
    world: dict[str, Any], listed: dict[str, ShownMessage], tmp_path: Path
) -> None:
    quality, alice = world["web"].quality, world["alice"]
    assert isinstance(alice, Principal) and not alice.is_admin
    for attempt in (lambda: quality.report(alice), lambda: quality.problems(alice), lambda: quality.expected(alice),
                    lambda: quality.save_expected(alice, listed["down"].id, "Business class.", "travel.pdf p. 2"),
                    lambda: quality.export(alice, tmp_path / "qa"), lambda: quality.export_zip(alice)):
        with pytest.raises(PermissionDenied):
            attempt()
    assert not (tmp_path / "qa").exists()
    assert all(e.answer != "Business class." for e in quality.expected(SYSTEM))
