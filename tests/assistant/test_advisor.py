"""The model-size advisor: the choice rule, and a real run (packaged Gemma) that resumes without recomputing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from assistant.advice import ModelReport, choose
from assistant.advisor import ADVICE, PLOT, RESULTS, advise
from assistant.errors import EnclaveError
from assistant.models.catalogue import list_models
from assistant.models.entry import ModelEntry
from assistant.settings import load_settings
from tests.gguf_files import write_gguf

DOCS = {
    "travel.md": "# Travel policy\n\nEmployees book economy class for flights under six hours. Flights longer "
                 "than six hours may be booked in premium economy. Hotel stays are reimbursed up to 180 euros "
                 "a night.\n",
    "leave.md": "# Leave policy\n\nEvery employee has 25 days of paid annual leave. Unused leave of up to five "
                "days carries over to the next year. Parental leave is sixteen weeks at full pay.\n",
    "it.md": "# IT rules\n\nLaptops are replaced every four years. Passwords are at least fourteen characters "
             "long and are never shared.\n",
}
QUESTIONS = [
    {"id": "q1", "question": "How many days of paid annual leave does an employee have?",
     "answer": "25 days of paid annual leave", "sources": [{"file": "leave.md"}], "answerable": True},
    {"id": "q2", "question": "Which class do employees book for flights under six hours?",
     "answer": "economy class", "sources": [{"file": "travel.md"}], "answerable": True},
    {"id": "q3", "question": "What is the price of a Stanley cup on the second-hand market?",
     "answer": None, "sources": [], "answerable": False},
    {"id": "q4", "question": "How often are laptops replaced?",
     "answer": "every four years", "sources": [{"file": "it.md"}], "answerable": True},
]


def report(name: str, size: int, quality: float) -> ModelReport:
    """A model's figures where every quality figure is ``quality``."""
    return ModelReport(ModelEntry(name, "data-dir", f"/{name}", size_bytes=size), 10, quality, quality, quality,
                       quality, 1 - quality, 0, 900.0, 1500.0, 20.0, 300.0)


def test_the_smallest_model_within_the_tolerance_of_the_best_is_advised() -> None:
    large, medium, small = report("large", 4_000, 0.70), report("medium", 1_000, 0.68), report("small", 300, 0.60)

    chosen, reason = choose([large, medium, small], tolerance=0.03)

    assert chosen is medium
    assert "within 0.03 of the best, large" in reason


def test_the_best_model_is_advised_when_no_smaller_one_comes_close() -> None:
    large, small = report("large", 4_000, 0.70), report("small", 300, 0.50)

    chosen, reason = choose([small, large], tolerance=0.03)

    assert chosen is large and "best quality" in reason


def test_advise_needs_a_model(tmp_path: Path) -> None:
    with pytest.raises(EnclaveError, match="at least one model"):
        advise(tmp_path, [], None, tmp_path / "out", settings=load_settings(data_dir=tmp_path / "data"))


@pytest.fixture
def qa_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "tiny-qa"
    (folder / "docs").mkdir(parents=True)
    for name, text in DOCS.items():
        (folder / "docs" / name).write_text(text, encoding="utf-8")
    (folder / "qa.jsonl").write_text("".join(json.dumps(q) + "\n" for q in QUESTIONS), encoding="utf-8")
    return folder


@pytest.mark.slow
def test_advise_measures_the_packaged_model_and_resumes_without_recomputing(
    qa_folder: Path, tmp_path: Path, embedder: Any
) -> None:
    short = {"ollama": {"hosts": []}, "embedded": {"n_ctx": 2048, "max_tokens": 48}}  # these cores are shared
    settings = load_settings(data_dir=tmp_path / "install", generation=short)
    gemma = next(m for m in list_models(settings, checksums=False).models if m.source == "packaged")
    out = tmp_path / "advice"
    seen: list[tuple[str, int, int]] = []

    first = advise(qa_folder, [gemma], 3, out, lambda *step: seen.append(step), settings=settings,
                   embedder=embedder)

    results = (out / RESULTS).read_text()
    saved = json.loads((out / ADVICE).read_text())
    assert [json.loads(line)["question_id"] for line in results.splitlines()] == ["q1", "q2", "q3"]
    assert seen == [(gemma.name, 1, 3), (gemma.name, 2, 3), (gemma.name, 3, 3)]
    assert saved["chosen"] == gemma.name and saved["questions"] == 3 and "smallest model" in saved["rule"]
    figures = saved["models"][0]
    for key in ("token_f1", "containment", "citation_precision", "refusal_accuracy", "false_refusal_rate",
                "first_token_p50_ms", "first_token_p95_ms", "tokens_per_s", "peak_memory_mb", "size_bytes"):
        assert key in figures
    assert figures["size_bytes"] == gemma.size_bytes and figures["questions"] == 3
    assert figures["peak_memory_mb"] is None or figures["peak_memory_mb"] > 0
    assert (out / PLOT).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    seen.clear()
    again = advise(qa_folder, [gemma], 3, out, lambda *step: seen.append(step), settings=settings,
                   embedder=embedder)

    assert (out / RESULTS).read_text() == results  # nothing was asked again
    assert seen == []
    assert again.to_json() == first.to_json()

    lines = results.splitlines(keepends=True)
    (out / RESULTS).write_text("".join(lines[:2]) + lines[2][:40])  # interrupted while writing the third
    advise(qa_folder, [gemma], 3, out, lambda *step: seen.append(step), settings=settings, embedder=embedder)

    assert seen == [(gemma.name, 3, 3)]  # only the lost question was asked again
    assert [json.loads(line)["question_id"] for line in (out / RESULTS).read_text().splitlines()] == ["q1", "q2", "q3"]


@pytest.mark.slow
def test_a_model_that_cannot_load_is_noted_and_not_advised(qa_folder: Path, tmp_path: Path, embedder: Any) -> None:
    settings = load_settings(data_dir=tmp_path / "install", generation={"ollama": {"hosts": []}})
    write_gguf(tmp_path / "install" / "models" / "hollow.gguf")  # a header, but no weights llama.cpp can run
    hollow = list_models(settings, checksums=False).find("hollow.gguf")
    assert hollow is not None

    advice = advise(qa_folder, [hollow], 1, tmp_path / "out", settings=settings, embedder=embedder)

    assert advice.chosen is None
    assert any(note.startswith("hollow.gguf was not measured") for note in advice.notes)
    assert json.loads((tmp_path / "out" / ADVICE).read_text())["chosen"] is None
