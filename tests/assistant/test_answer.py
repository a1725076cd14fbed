"""Answering end to end over a real Ollama-protocol server: citations, attribution, refusals, errors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from assistant.events import Answer, Done, Sources, Token
from tests.fake_ollama import FakeOllama, closed_port_url

DOCS = {
    "benefits/dental.md": "# Dental\n\nThe dental plan covers two cleanings per year and orthodontics for "
    "children under 18. Crowns are covered at 50 percent after the deductible.\n",
    "benefits/vision.md": "# Vision\n\nThe vision plan covers one eye exam per year and 150 dollars "
    "toward frames or contact lenses every two years.\n",
    "travel.md": "# Travel\n\nEconomy class is booked for flights under six hours. Business class "
    "needs approval from a vice president.\n",
}


@pytest.fixture
def ollama() -> Iterator[FakeOllama]:
    with FakeOllama() as server:
        yield server


@pytest.fixture
def services(make_services: Any, ollama: FakeOllama, tmp_path: Path) -> Any:
    share = tmp_path / "share"
    for rel, text in DOCS.items():
        (share / rel).parent.mkdir(parents=True, exist_ok=True)
        (share / rel).write_text(text, encoding="utf-8")
    built = make_services(generation={"backend": "ollama", "ollama": {"hosts": [ollama.url]}})
    built.ingest.ingest(share, collection="hr")
    eng = tmp_path / "eng"
    eng.mkdir()
    (eng / "deploy.md").write_text("# Deploys\n\nProduction deploys happen on Tuesdays.\n", "utf-8")
    built.ingest.ingest(eng, collection="eng")
    return built


def _ask(services: Any, question: str, **kwargs: Any) -> tuple[Answer, list[Any]]:
    events = list(services.answers.ask(question, **kwargs))
    assert isinstance(events[-1], Done)
    return events[-1].answer, events


def _n_of(answer: Answer, file: str) -> int:
    return next(i for i, p in enumerate(answer.retrieved, 1) if p.chunk.file == file)


def test_markers_become_citations_and_markers_to_nowhere_are_dropped(services: Any, ollama: FakeOllama) -> None:
    probe, _ = _ask(services, "How many dental cleanings per year?", retrieve_only=True)
    n = _n_of(probe, "benefits/dental.md")
    ollama.script.reply = f"The plan covers two cleanings per year [{n}]. Crowns are covered too [9]."
    answer, events = _ask(services, "How many dental cleanings per year?")
    assert [type(e).__name__ for e in events if isinstance(e, (Sources, Token))][:2] == ["Sources", "Token"]
    assert "[9]" not in answer.text and f"[{n}]" in answer.text
    [citation] = [c for c in answer.citations if c.kind == "cited"]
    assert (citation.n, citation.passage.chunk.file) == (n, "benefits/dental.md")
    cited = citation.as_json()
    assert cited["text"] and cited["span"][1] > cited["span"][0] and cited["score"] > 0
    assert answer.backend.startswith("Ollama") and not answer.refused


def test_uncited_sentences_are_attributed_or_flagged_unsupported(services: Any, ollama: FakeOllama) -> None:
    ollama.script.reply = (
        "Economy class is booked for flights under six hours. "
        "The cafeteria serves lasagna every Thursday at noon."
    )
    answer, _ = _ask(services, "Which class are flights booked in?")
    statuses = [s.status for s in answer.sentences]
    assert statuses == ["attributed", "unsupported"]
    travel = _n_of(answer, "travel.md")
    assert answer.sentences[0].passages == [travel]
    assert [(c.n, c.kind) for c in answer.citations] == [(travel, "attributed")]


def test_question_the_documents_never_cover_is_refused_without_calling_the_model(
    services: Any, ollama: FakeOllama
) -> None:
    answer, _ = _ask(services, "What is the quarterly revenue target for the Singapore office?")
    assert answer.refused and answer.refusal_reason
    assert ollama.chat_requests() == []


def test_model_saying_it_does_not_know_is_a_refusal(services: Any, ollama: FakeOllama) -> None:
    ollama.script.reply = "I could not find this in the documents."
    answer, _ = _ask(services, "Does the dental plan cover crowns?")
    assert answer.refused and answer.citations == []


def test_an_answer_that_follows_no_passage_is_withdrawn_and_the_sources_stay(
    services: Any, ollama: FakeOllama
) -> None:
    ollama.script.reply = ("Domestic partners become eligible after registering with the county clerk [1]. "
                           "The enrollment window closes every November.")
    answer, events = _ask(services, "Are domestic partners covered by the dental plan?")
    assert answer.refused and "follows the passages" in (answer.refusal_reason or "")
    assert "county clerk" not in answer.text and answer.citations == []
    assert any(p.chunk.file == "benefits/dental.md" for p in answer.retrieved)
    assert any(isinstance(e, Token) for e in events), "the tokens streamed before the check"

    ollama.script.reply = "[1] [2]"
    empty, _ = _ask(services, "How many dental cleanings per year?")
    assert empty.refused and empty.refusal_reason == "the model gave no answer"


def test_a_short_or_grounded_answer_is_kept(services: Any, ollama: FakeOllama) -> None:
    n = _n_of(_ask(services, "How many dental cleanings per year?", retrieve_only=True)[0], "benefits/dental.md")
    for reply in (f"Two [{n}].", f"The dental plan covers two cleanings per year [{n}]. Call HR to book them.",
                  f"[{n}] • Two cleanings per year • Orthodontics for children under 18 • Crowns at 50 percent"):
        ollama.script.reply = reply
        answer, _ = _ask(services, "How many dental cleanings per year?")
        assert not answer.refused and [c.n for c in answer.citations if c.kind == "cited"] == [n]


def test_only_readable_collections_reach_the_prompt(services: Any, ollama: FakeOllama) -> None:
    ollama.script.reply = "Deploys happen on Tuesdays [1]."
    answer, _ = _ask(services, "When do production deploys happen?", collections=["hr"])
    assert all(p.chunk.collection == "hr" for p in answer.retrieved)
    for request in ollama.chat_requests():
        assert "Tuesdays" not in str(request.body)
    nothing, _ = _ask(services, "When do production deploys happen?", collections=[])
    assert nothing.refused and nothing.retrieved == []


def test_ollama_down_gives_a_clear_message_and_keeps_the_sources(make_services: Any, services: Any) -> None:
    down = make_services(
        data_dir=services.settings.data_dir,
        generation={"backend": "ollama", "ollama": {"hosts": [closed_port_url()], "connect_timeout_s": 0.5}},
    )
    answer, _ = _ask(down, "How many dental cleanings per year?")
    assert answer.error and "ollama serve" in answer.error
    assert any(p.chunk.file == "benefits/dental.md" for p in answer.retrieved)


def test_follow_up_is_rewritten_with_the_history(services: Any) -> None:
    history = [
        {"role": "user", "content": "What does the dental plan cover for children?"},
        {"role": "assistant", "content": "Orthodontics for children under 18 [1]."},
    ]
    answer, _ = _ask(services, "and what about vision?", history=history, retrieve_only=True)
    assert "dental" in answer.query and "vision" in answer.query
    assert "benefits/vision.md" in [p.chunk.file for p in answer.retrieved[:2]]
