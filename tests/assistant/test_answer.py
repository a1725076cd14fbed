"""Answering end to end over a real Ollama-protocol server: citations, attribution, refusals, errors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from assistant.events import Answer, Done, Evidence, Sources, Token
from assistant.evidence import QUOTED_HEADING
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
def services(make_services: Any, ollama: FakeOllama, tmp_path: Path, index_backend: str) -> Any:
    """On each index backend (``index_backend``)."""
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


def test_an_answer_that_follows_no_passage_is_replaced_by_quotes_and_the_sources_stay(
    services: Any, ollama: FakeOllama
) -> None:
    ollama.script.reply = ("Domestic partners become eligible after registering with the county clerk [1]. "
                           "The enrollment window closes every November.")
    answer, events = _ask(services, "Are domestic partners covered by the dental plan?")
    assert not answer.refused and "follows the passages" in (answer.quoted or "")
    assert "county clerk" not in answer.text
    _assert_quoted_from(answer, "benefits/dental.md")
    assert any(p.chunk.file == "benefits/dental.md" for p in answer.retrieved)
    assert any(isinstance(e, Token) for e in events), "the tokens streamed before the check"

    ollama.script.reply = "[1] [2]"
    empty, _ = _ask(services, "How many dental cleanings per year?")
    assert not empty.refused and empty.quoted == "the model gave no answer"
    _assert_quoted_from(empty, "benefits/dental.md")
    assert "two cleanings per year" in empty.text


def _assert_quoted_from(answer: Answer, file: str) -> None:
    """The answer quotes sentences of ``file``'s passage word for word, each cited to that passage."""
    assert answer.text.startswith(QUOTED_HEADING) and answer.sentences, answer.text
    for sentence in answer.sentences:
        [n] = sentence.passages
        quote = sentence.text.rsplit(" [", 1)[0].strip("\u201c\u201d")
        assert sentence.status == "quoted" and sentence.text in answer.text
        assert answer.retrieved[n - 1].chunk.file == file and quote in answer.retrieved[n - 1].chunk.text, answer.text
    assert {(c.passage.chunk.file, c.kind) for c in answer.citations} == {(file, "quoted")}


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
    assert not answer.refused and answer.quoted == "the model failed", "the evidence answers instead"
    _assert_quoted_from(answer, "benefits/dental.md")


def test_follow_up_is_rewritten_with_the_history(services: Any) -> None:
    history = [
        {"role": "user", "content": "What does the dental plan cover for children?"},
        {"role": "assistant", "content": "Orthodontics for children under 18 [1]."},
    ]
    answer, _ = _ask(services, "and what about vision?", history=history, retrieve_only=True)
    assert "dental" in answer.query and "vision" in answer.query
    assert "benefits/vision.md" in [p.chunk.file for p in answer.retrieved[:2]]


def test_list_numbers_the_model_writes_are_not_citations(services: Any, ollama: FakeOllama) -> None:
    question = "What does the dental plan cover?"
    retrieved = _ask(services, question, retrieve_only=True)[0].retrieved
    dental = _n_of(_ask(services, question, retrieve_only=True)[0], "benefits/dental.md")
    other = next(n for n in range(1, len(retrieved) + 1) if n != dental)
    assert len(retrieved) >= 3
    lists = {
        "numbered": "[1] Two cleanings per year.\n[2] Orthodontics for children under 18.\n[3] Crowns at 50 percent.",
        "one marker on every line": f"[{other}] Two cleanings per year.\n[{other}] Orthodontics for children "
                                    f"under 18.\n[{other}] Crowns at 50 percent.",
        "numbers past the passages": "[7] Two cleanings per year.\n[8] Orthodontics for children under 18.",
    }
    for name, reply in lists.items():
        ollama.script.reply = reply
        answer, _ = _ask(services, question)
        assert not [c for c in answer.citations if c.kind == "cited"], name
        assert {c.passage.chunk.file for c in answer.citations} == {"benefits/dental.md"}, name
        assert ("Two cleanings per year" in answer.text and "Crowns at 50 percent" in answer.text) or "[7]" in reply

    ollama.script.reply = f"Two cleanings per year [{dental}].\nCrowns are covered at 50 percent [{dental}]."
    cited, _ = _ask(services, question)
    assert [(c.n, c.kind) for c in cited.citations] == [(dental, "cited")], "a marker after a claim still cites"


def test_a_model_repeating_itself_is_stopped_and_the_evidence_quoted(services: Any, ollama: FakeOllama) -> None:
    question = "Does the dental plan cover crowns?"
    ollama.script.reply = "The dental plan does not cover eye exams. " * 18
    answer, events = _ask(services, question)
    streamed = "".join(e.text for e in events if isinstance(e, Token))
    assert streamed.count("eye exams") <= 2, "the stream was stopped at the first repeat"
    assert not answer.refused and "repeated" in (answer.quoted or "") and "eye exams" not in answer.text
    _assert_quoted_from(answer, "benefits/dental.md")
    assert "Crowns are covered at 50 percent" in answer.text

    ollama.script.reply = "".join(f"The dental plan does not cover {thing}. " for thing in
                                  ("eye exams", "hearing aids", "glasses", "massages", "flights", "taxis"))
    pattern, events = _ask(services, question)
    assert "repeated" in (pattern.quoted or "") and "massages" not in pattern.text
    _assert_quoted_from(pattern, "benefits/dental.md")


def test_an_answer_cut_by_the_length_cap_ends_at_its_last_full_sentence(
    make_services: Any, services: Any, ollama: FakeOllama
) -> None:
    capped = make_services(data_dir=services.settings.data_dir, generation={
        "backend": "ollama", "ollama": {"hosts": [ollama.url], "max_tokens": 16}})
    question = "How much are crowns covered?"
    n = _n_of(_ask(capped, question, retrieve_only=True)[0], "benefits/dental.md")
    ollama.script.reply = (f"Crowns are covered at 50 percent after the deductible [{n}]. The plan has "
                           "a calendar year deductible of $ 50 for each member of the family.")
    answer, _ = _ask(capped, question)
    assert ollama.chat_requests()[-1].body["options"]["num_predict"] == 16
    assert answer.text == f"Crowns are covered at 50 percent after the deductible [{n}]."
    assert not answer.refused and answer.quoted is None and [c.n for c in answer.citations] == [n]

    ollama.script.reply = "The plan has a calendar year deductible of $ 50 for each member of the family " * 2
    nothing_whole, _ = _ask(capped, question)
    assert "deductible of $" not in nothing_whole.text and nothing_whole.quoted == "the model gave no answer"
    _assert_quoted_from(nothing_whole, "benefits/dental.md")


def test_a_model_failing_mid_answer_gives_the_quoted_evidence(services: Any, ollama: FakeOllama) -> None:
    ollama.script.reply = "The dental plan covers two cleanings per year and orthodontics for children."
    ollama.script.error_after_tokens = 3
    answer, _ = _ask(services, "How many dental cleanings per year?")
    assert answer.error and "stopped the answer" in answer.error
    assert not answer.refused and answer.quoted == "the model failed"
    _assert_quoted_from(answer, "benefits/dental.md")
    assert answer.as_json()["quoted"] == "the model failed"


def test_the_documents_best_sentences_come_before_a_slow_model_writes(services: Any, ollama: FakeOllama) -> None:
    ollama.script.initial_delay_s = 1.5  # a model still reading the passages
    ollama.script.reply = "Two cleanings a year are covered."
    answer, events = _ask(services, "How many dental cleanings per year?")
    kinds = [type(e).__name__ for e in events if isinstance(e, (Sources, Evidence, Token))]
    assert kinds[:3] == ["Sources", "Evidence", "Token"]
    [evidence] = [e for e in events if isinstance(e, Evidence)]
    best = evidence.quotes[0]
    assert "two cleanings per year" in best.text and answer.retrieved[best.n - 1].chunk.file == "benefits/dental.md"
    timings = answer.timings
    assert timings["evidence_ms"] is not None and timings["first_token_ms"] is not None
    assert timings["first_useful_ms"] == timings["evidence_ms"] <= timings["first_token_ms"] - 1000
    shown = answer.as_json()["evidence"]
    assert shown[0] == {"text": best.text, "n": best.n} and not answer.quoted


def test_a_question_refused_from_the_evidence_shows_no_evidence(services: Any, ollama: FakeOllama) -> None:
    answer, events = _ask(services, "What is the quarterly revenue target for the Singapore office?")
    assert answer.refused and not any(isinstance(e, Evidence) for e in events)
    assert answer.as_json()["evidence"] == [] and answer.timings["first_useful_ms"] is None
