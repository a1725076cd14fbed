"""Each model is prompted its own way, and what it is given follows its context length."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from assistant.events import Done
from assistant.llm.embedded import packaged_gguf
from assistant.models.entry import ModelEntry
from assistant.models.prompting import BASE_ANSWER_CUE, build_prompt, context_budget

TURNS = [{"role": "user", "content": "[1] Staff fly economy class.\n\nQuestion: Which class may employees fly?"}]


def entry(chat_template: bool | None, context: int | None = 32768) -> ModelEntry:
    return ModelEntry("model.gguf", "data-dir", "/models/model.gguf", context_length=context,
                      has_chat_template=chat_template)


def test_a_model_with_a_chat_template_gets_the_chat_turns() -> None:
    prompt = build_prompt(entry(chat_template=True), TURNS)

    assert prompt.messages == TURNS and prompt.text is None


def test_a_base_model_gets_a_document_that_ends_where_the_cited_answer_starts() -> None:
    prompt = build_prompt(entry(chat_template=False), TURNS)

    assert prompt.messages is None and prompt.text is not None
    assert prompt.text.endswith("Question: Which class may employees fly?\n" + BASE_ANSWER_CUE)
    assert "[1] Staff fly economy class." in prompt.text
    assert "\nQuestion:" in prompt.stop  # it does not go on to write the next question


def test_the_answer_length_and_passages_follow_the_context_window() -> None:
    small = context_budget(entry(chat_template=True), max_context=1024)
    usual = context_budget(entry(chat_template=True), max_context=4096)
    large = context_budget(entry(chat_template=True), max_context=8192)

    assert small.answer_tokens < usual.answer_tokens < large.answer_tokens
    assert small.passages * small.passage_tokens < usual.passages * usual.passage_tokens
    assert (usual.passages, usual.passage_tokens) == (5, 110)


def test_a_short_trained_context_limits_the_budget_whatever_n_ctx_allows() -> None:
    short = context_budget(entry(chat_template=True, context=2048), max_context=8192)

    assert short.context_tokens == 2048
    assert short.answer_tokens + short.passages * short.passage_tokens < 2048


@pytest.mark.slow
def test_the_packaged_base_gemma_answers_a_passage_question_cited(make_services: Any, tmp_path: Path) -> None:
    gguf = packaged_gguf(Path.home() / ".cache" / "enclave-test-models")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "travel.md").write_text(
        "# Travel policy\n\nEmployees fly economy class on every flight shorter than six hours. "
        "Flights longer than six hours may be booked in premium economy.\n", encoding="utf-8")
    services = make_services(generation={"backend": "embedded", "embedded": {"gguf_path": str(gguf), "n_ctx": 2048}})
    services.ingest.ingest(docs)

    done = [e for e in services.answers.ask("Which class do employees fly on short flights?") if isinstance(e, Done)]

    answer = done[0].answer
    assert not answer.refused and answer.error is None
    assert "economy" in answer.text.lower() and "Question:" not in answer.text
    assert [c.passage.chunk.file for c in answer.citations] == ["travel.md"]
