"""Conversations and documents per user: grants decide what is retrieved, shown, continued and opened."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event

from assistant.audit import SYSTEM, Principal
from assistant.chats import Saved, SourcesReady
from assistant.errors import NotFoundError, PermissionDenied
from assistant.events import Token
from assistant.stored_answer import StoredAnswer
from tests.fake_ollama import FakeOllama, FakeOllamaScript
from tests.worlds import services_answered_by
from ui.render import transcript_html

PASSWORD = "correct horse battery"
TRAVEL = "# Travel\n\nEmployees fly economy class on flights under six hours. Longer flights allow business class.\n"
SALARIES = "# Salaries\n\nThe salary bands for engineers range from level one to level seven, reviewed each March.\n"


@pytest.fixture(scope="module")
def world(embedder: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Two collections, hr (granted to staff) and payroll (granted to nobody), and an Ollama stand-in."""
    root = tmp_path_factory.mktemp("chats")
    for name, text in (("hr", TRAVEL), ("payroll", SALARIES)):
        (root / name).mkdir()
        (root / name / f"{name}.md").write_text(text, encoding="utf-8")
    with FakeOllama(FakeOllamaScript(reply="Employees fly economy class on short flights [1].")) as fake:
        services = services_answered_by(fake, root, embedder, ("hr", "payroll"))
        web = services.web
        for name in ("alice", "bob"):
            web.accounts.create_user(SYSTEM, name, PASSWORD)
        web.access.create_group(SYSTEM, "staff")
        web.access.set_member(SYSTEM, "alice", "staff")
        web.access.set_grant(SYSTEM, "staff", "hr")
        yield {"services": services, "web": web, "fake": fake,
               "alice": web.accounts.sign_in("alice", PASSWORD)[0], "bob": web.accounts.sign_in("bob", PASSWORD)[0]}
        services.close()


def _ask(web: Any, who: Principal, question: str, chat_id: int | None = None,
         collections: list[str] | None = None) -> tuple[list[Any], Saved]:
    events = list(web.chats.ask(who, chat_id, question, collections))
    saved = events[-1]
    assert isinstance(saved, Saved)
    return events, saved


def test_answer_streams_and_is_saved_with_citations_and_backend(world: dict[str, Any]) -> None:
    web, alice = world["web"], world["alice"]
    events, saved = _ask(web, alice, "Which class do employees fly on flights under six hours?")

    assert any(isinstance(e, Token) for e in events)
    sources = next(e for e in events if isinstance(e, SourcesReady)).sources
    assert {s.collection for s in sources} == {"hr"}
    message = saved.message
    assert message.citations[0].file == "hr.md" and message.citations[0].kind == "cited"
    assert "economy class" in message.citations[0].text
    assert message.backend.startswith("Ollama gemma3:270m")
    assert next(c.id for c in web.chats.chats(alice)) == saved.chat_id
    asked = web.audit.events(SYSTEM, action="question_asked")[0]
    assert asked.user == "alice" and asked.detail["collections"] == ["hr"]


def test_follow_up_questions_carry_the_conversation(world: dict[str, Any]) -> None:
    web, alice, fake = world["web"], world["alice"], world["fake"]
    _, first = _ask(web, alice, "Which class do employees fly on flights under six hours?")
    before = len(fake.chat_requests())
    _, second = _ask(web, alice, "And on longer flights, which class do employees fly?", first.chat_id)

    assert second.chat_id == first.chat_id
    assert [m.question for m in web.chats.messages(alice, first.chat_id)][-1].startswith("And on longer")
    assert len(fake.chat_requests()) > before


def test_a_corrected_question_shows_what_was_searched_now_and_later(world: dict[str, Any]) -> None:
    web, alice = world["web"], world["alice"]
    _, saved = _ask(web, alice, "Which clas do employes fly on flihgts under six hours?")
    assert saved.message.searched == "Which class do employees fly on flights under six hours?"
    stored = web.chats.messages(alice, saved.chat_id)[-1]
    assert stored.question == "Which clas do employes fly on flihgts under six hours?"
    assert "Searched for: Which class do employees fly on flights" in transcript_html([stored])
    _, plain = _ask(web, alice, "Which class do employees fly on flights under six hours?")
    assert plain.message.searched is None and "Searched for" not in transcript_html([plain.message])


def test_a_user_without_a_grant_retrieves_nothing_from_other_collections(world: dict[str, Any]) -> None:
    web, alice, bob = world["web"], world["alice"], world["bob"]
    with pytest.raises(PermissionDenied):
        list(web.chats.ask(alice, None, "What are the salary bands for engineers?", ["payroll"]))
    events, _ = _ask(web, alice, "What are the salary bands for engineers?")
    sources = next(e for e in events if isinstance(e, SourcesReady)).sources
    assert all(s.collection == "hr" for s in sources)
    events, saved = _ask(web, bob, "What are the salary bands for engineers?")
    assert next(e for e in events if isinstance(e, SourcesReady)).sources == []
    assert saved.message.citations == []


def test_chats_are_private_and_can_be_renamed_and_deleted(world: dict[str, Any]) -> None:
    web, alice, bob = world["web"], world["alice"], world["bob"]
    _, saved = _ask(web, alice, "Which class do employees fly on flights under six hours?")
    for attempt in (lambda: web.chats.messages(bob, saved.chat_id),
                    lambda: web.chats.rename(bob, saved.chat_id, "mine"),
                    lambda: web.chats.delete(bob, saved.chat_id),
                    lambda: web.chats.feedback(bob, saved.message.id, True),
                    lambda: list(web.chats.ask(bob, saved.chat_id, "Which class?"))):
        with pytest.raises(NotFoundError):
            attempt()
    web.chats.rename(alice, saved.chat_id, "Flights")
    assert web.chats.chat(alice, saved.chat_id).title == "Flights"
    web.chats.delete(alice, saved.chat_id)
    assert saved.chat_id not in [c.id for c in web.chats.chats(alice)]


def test_feedback_is_stored_with_question_answer_citations_and_backend(world: dict[str, Any]) -> None:
    web, alice = world["web"], world["alice"]
    _, saved = _ask(web, alice, "Which class do employees fly on flights under six hours?")
    web.chats.feedback(alice, saved.message.id, False, "missing the long-haul rule")

    rating = web.chats.feedback_log(SYSTEM)[0]
    assert rating["helpful"] is False and rating["comment"] == "missing the long-haul rule"
    assert rating["question"].startswith("Which class") and "economy" in rating["answer"]
    assert rating["citations"][0]["file"] == "hr.md" and rating["backend"].startswith("Ollama")


def test_answers_from_a_revoked_collection_are_withheld(world: dict[str, Any]) -> None:
    web, alice = world["web"], world["alice"]
    _, saved = _ask(web, alice, "Which class do employees fly on flights under six hours?")
    web.access.set_grant(SYSTEM, "staff", "hr", False)
    try:
        shown = web.chats.messages(alice, saved.chat_id)[-1]
        assert shown.withheld and shown.sources == [] and "economy" not in shown.answer
        with pytest.raises(NotFoundError):
            web.library.chunk_page(alice, saved.message.citations[0].chunk_id)
    finally:
        web.access.set_grant(SYSTEM, "staff", "hr", True)


def test_cited_page_opens_for_readers_only(world: dict[str, Any]) -> None:
    web, alice, bob = world["web"], world["alice"], world["bob"]
    _, saved = _ask(web, alice, "Which class do employees fly on flights under six hours?")
    citation = saved.message.citations[0]
    page = web.library.chunk_page(alice, citation.chunk_id)
    start, end = page.highlight
    assert "economy class" in page.text[start:end]
    assert web.library.original_file(alice, page.document.id).name == "hr.md"
    for attempt in (lambda: web.library.chunk_page(bob, citation.chunk_id),
                    lambda: web.library.page(bob, page.document.id, 0),
                    lambda: web.library.original_file(bob, page.document.id),
                    lambda: web.library.chunk_page(alice, 10**9)):
        with pytest.raises(NotFoundError, match="no such document, or you may not read it"):
            attempt()


def test_ingest_jobs_only_read_allowed_folders(world: dict[str, Any], tmp_path: Path) -> None:
    web = world["web"]
    with pytest.raises(PermissionDenied, match="not under a folder admins may ingest from"):
        web.jobs.start_folder(SYSTEM, str(tmp_path), "hr")
    with pytest.raises(PermissionDenied):
        web.jobs.start_folder(SYSTEM, str(world["services"].settings.data_dir / "uploads" / ".." / ".."), "hr")


def test_uploads_are_checked_by_content_and_size_and_stored_under_their_own_names(
    world: dict[str, Any], tmp_path: Path
) -> None:
    web = world["web"]
    fake_pdf = tmp_path / "report.pdf"
    fake_pdf.write_bytes(b"MZ\x90\x00 not a pdf at all")
    big = tmp_path / "big.txt"
    big.write_bytes(b"a" * (int(world["services"].settings.web.max_upload_mb * 2**20) + 1))
    refused = web.jobs.start_upload(SYSTEM, [(fake_pdf, "report.pdf"), (big, "big.txt")], "uploads")
    reasons = dict(refused.refused)
    assert refused.job_id is None and reasons["report.pdf"] == "content is an EXE executable, not a PDF"
    assert reasons["big.txt"].endswith("upload limit (web.max_upload_mb)")
    note = tmp_path / "note.md"
    note.write_text("# Canteen\n\nThe canteen opens at half past eleven on weekdays.\n")
    result = web.jobs.start_upload(SYSTEM, [(note, "../../etc/evil\x00name.md")], "uploads")
    assert result.job_id is not None
    web.jobs.wait(result.job_id, timeout=60)

    shown = web.jobs.job(SYSTEM, result.job_id)
    assert shown.state == "done" and shown.summary["added"] == 1
    assert [d.path for d in web.library.documents(SYSTEM, "uploads")] == ["evilname.md"]
    assert not list((world["services"].settings.data_dir / "uploads" / "uploads").glob("*report*"))


class Statements:
    """The SQL the real engine runs, recorded with SQLAlchemy's ``before_cursor_execute`` hook."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.seen: list[str] = []

    def __enter__(self) -> Statements:
        event.listen(self.engine, "before_cursor_execute", self._record)
        return self

    def __exit__(self, *exc: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self._record)

    def _record(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self.seen.append(" ".join(statement.split()))

    def count(self, pattern: str) -> int:
        return sum(1 for s in self.seen if re.search(pattern, s))


MESSAGES_READ = r"^SELECT chat_messages\.id, .* FROM chat_messages WHERE chat_messages\.chat_id"
GRANTS_READ = r"JOIN collection_grants"
COLLECTIONS_LISTED = r"^SELECT collections\.id, collections\.name FROM collections$"


@pytest.mark.parametrize("page", [True, False], ids=["web page", "API with chat_id"])
def test_a_follow_up_reads_its_chat_and_the_readable_collections_once(world: dict[str, Any], page: bool) -> None:
    web, alice = world["web"], world["alice"]
    _, first = _ask(web, alice, "Which class do employees fly on flights under six hours?")
    follow_up = "And on longer flights, which class do employees fly?"
    with Statements(web.chats.store.db.engine) as sql:
        # The page reads the conversation to show it, then asks within it; the API asks with the chat's id.
        chat = web.chats.conversation(alice, first.chat_id) if page else first.chat_id
        saved = list(web.chats.ask(alice, chat, follow_up))[-1]

    assert isinstance(saved, Saved)
    assert sql.count(MESSAGES_READ) == 1, "the chat's messages are loaded once"
    assert sql.count(GRANTS_READ) == 1, "the user's readable collections are looked up once"
    # Once for what alice may read, once for the indexes searched (the answerability check reuses them).
    assert sql.count(COLLECTIONS_LISTED) == 2
    assert [m.question for m in saved.conversation.messages] == [first.message.question, follow_up]
    assert saved.conversation.messages == web.chats.messages(alice, first.chat_id), "what the page shows is stored"


def test_an_answer_stored_in_the_untyped_shape_reads_back(world: dict[str, Any]) -> None:
    web, alice = world["web"], world["alice"]
    _, saved = _ask(web, alice, "Which class do employees fly on flights under six hours?")
    cited = {"n": 1, "file": "hr.md", "page": None, "heading": "Travel", "text": "Employees fly economy class.",
             "score": 0.8123, "span": [0, 28], "collection": "hr", "chunk_id": saved.message.sources[0].chunk_id,
             "document_id": 1, "kind": "cited", "before": "", "marked": "Employees fly economy class.", "after": "",
             "support": ["Employees fly economy class."]}
    retrieved = {**cited, "n": 2, "kind": None}
    del retrieved["support"]  # sources the answer left out had no "support" key
    payload = {  # a row as ChatService stored it before answers were typed
        "sources": [cited, retrieved], "citations": [cited],
        "sentences": [{"text": "Economy class [1].", "status": "cited", "passages": [1]}],
        "refused": False, "refusal_reason": None, "error": None, "quoted": None,
        "timings": {"retrieve_ms": 12.3, "first_token_ms": None, "total_ms": 99.0}, "searched": None,
    }
    web.chats.store.add_message(saved.chat_id, "Which class?", "Economy class [1].", "Ollama gemma3:270m", payload)

    shown = web.chats.messages(alice, saved.chat_id)[-1]
    assert shown.answer == "Economy class [1]." and not shown.withheld
    assert [s.n for s in shown.citations] == [1] and shown.citations[0].support == ["Employees fly economy class."]
    assert shown.sources[1].support == [] and shown.sentences[0].status == "cited"
    assert 'href="#src-' in transcript_html([shown])
    stored = StoredAnswer.model_validate(payload).model_dump(mode="json")
    assert stored["citations"] == [{**cited, "rerank": None}], "a row written now keeps the shape older code reads"
    assert StoredAnswer.model_validate(stored) == StoredAnswer.model_validate(payload)
