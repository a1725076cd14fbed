"""Fusion per question: how far BM25 is trusted, which documents a question names, and the ranking helpers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from assistant.fusion import identity_terms, lexical_coverage, name_terms, named_documents
from assistant.retrieval import (
    Passage,
    best_per_unit,
    fuse_rrf,
    fuse_weighted,
    interleave,
    question_parts,
)
from storage.bm25 import tokenize
from storage.documents import StoredChunk


def _counts(df: dict[str, int], chunks: int = 1000) -> Any:
    """Term counts as an index reports them: chunks searched, chunks holding each term."""
    return lambda terms: (chunks, [df.get(t, 0) for t in terms])


def _chunk(i: int, file: str, page: int | None) -> StoredChunk:
    return StoredChunk(i, "c", 1, file, page, "", f"text {i}", 0, 6)


def test_identity_words_include_the_parts_of_mixed_words() -> None:
    assert {"fy2018", "fy", "2018"} <= identity_terms("FY2018 capital expenditure")
    assert name_terms("filings/3M_2018_10K.pdf") == {"3m", "2018", "10k", "10"}
    assert name_terms("AMCOR_2023Q4_EARNINGS.pdf") >= {"amcor", "2023q4", "2023", "earn"}


def test_coverage_is_the_rare_words_share_the_passage_holds() -> None:
    question = sorted(set(tokenize("capital expenditure of Fabrikam")))
    counts = _counts({"capit": 400, "expenditur": 300, "fabrikam": 5})
    assert lexical_coverage(question, set(tokenize("Fabrikam capital expenditure")), counts) == pytest.approx(1.0)
    assert lexical_coverage(question, set(tokenize("an unrelated sentence")), counts) == 0.0
    rare = lexical_coverage(question, set(tokenize("Fabrikam")), counts)
    common = lexical_coverage(question, set(tokenize("capital")), counts)
    assert rare > 0.5 > common, "the company's name weighs more than a word of many chunks"
    assert lexical_coverage(["unknown"], {"unknown"}, counts) == 0.0  # words no chunk has weigh nothing


def test_a_question_naming_a_document_steers_to_it_by_its_rare_words() -> None:
    files = ["FABRIKAM_2019_10K.pdf", "FABRIKAM_2018_10K.pdf", "CONTOSO_2019_10K.pdf", "handbook.pdf"]
    counts = _counts({"fabrikam": 40, "contoso": 40, "2019": 90, "2018": 60, "10k": 160})
    named = named_documents("What was Fabrikam's FY2019 capital expenditure?", files, counts)
    assert max(named, key=named.__getitem__) == "FABRIKAM_2019_10K.pdf"
    assert named["FABRIKAM_2019_10K.pdf"] == 1.0
    assert named["FABRIKAM_2018_10K.pdf"] > named["CONTOSO_2019_10K.pdf"], "the company weighs more than the year"
    assert "handbook.pdf" not in named
    assert named_documents("How many days of leave do I get?", files, counts) == {}


def test_a_name_word_that_every_chunk_has_steers_almost_nothing() -> None:
    files = ["Northwind_Health_Plus.pdf", "Northwind_Standard.pdf"]
    counts = _counts({"northwind": 700, "health": 900, "plus": 30, "standard": 30})
    named = named_documents("What does Northwind Health cover for mental health?", files, counts)
    assert named["Northwind_Standard.pdf"] > 0.5, "'health' must not decide between the two plans"


def test_instructions_and_definitions_after_a_question_are_not_searched_alone() -> None:
    assert question_parts("What is the FY2018 capital expenditure for 3M? Answer in USD millions.") == []
    assert question_parts("What is the ROA for Coca Cola? ROA is defined as net income / total assets.") == []
    assert question_parts("Does Corning have positive working capital? If it is not useful, say why.") == []
    assert question_parts("What is the yearly deductible? How do I file a claim?") == [
        "What is the yearly deductible?", "How do I file a claim?"]


def test_ranking_helpers() -> None:
    dense, bm25 = [("a", 0.9), ("b", 0.5), ("c", 0.1)], [("c", 12.0), ("a", 2.0)]
    assert fuse_weighted(dense, bm25, 1.0) == pytest.approx({"a": 1.0, "b": 0.5, "c": 0.0})
    mixed = fuse_weighted(dense, bm25, 0.4)
    assert mixed == pytest.approx({"a": 0.4, "b": 0.2, "c": 0.6})  # each ranking min-max normalised, then weighed
    rrf = fuse_rrf([dense, bm25], 60)
    assert rrf["a"] == pytest.approx(1 / 61 + 1 / 62) and rrf["b"] == pytest.approx(1 / 62)
    chunks = {1: _chunk(1, "x.pdf", 3), 2: _chunk(2, "x.pdf", 3), 3: _chunk(3, "x.pdf", 4), 4: _chunk(4, "y.md", None)}
    assert best_per_unit([(2, 0.9), (1, 0.8), (3, 0.7), (4, 0.6)], chunks) == [
        (("c", "x.pdf", 3), 0.9), (("c", "x.pdf", 4), 0.7), (("c", "y.md", "chunk", 4), 0.6)]
    first = [Passage(chunks[1], 1.0), Passage(chunks[3], 0.5)]
    second = [Passage(chunks[2], 1.0), Passage(chunks[4], 0.5)]
    assert [p.chunk.id for p in interleave([first, second], 3)] == [1, 3, 4], "in turn, one passage a page"


STATEMENT = (
    "Consolidated Statement of Cash Flows. Net income {a}. Depreciation and amortization {b}. "
    "Purchases of property, plant and equipment ({c}). Net cash provided by operating activities {d}. "
    "The accompanying notes are an integral part of this statement."
)
NOTES = (
    "Notes to the statements. Analysts relying on the details shown in the cash flow statement should "
    "give a response in USD millions to any question about the amount of capital expenditure."
)


@pytest.fixture
def filings(make_services: Any, tmp_path: Path, index_backend: str) -> Any:
    """On each index backend (``index_backend``)."""
    share = tmp_path / "filings"
    share.mkdir()
    for n, company in enumerate(["FABRIKAM", "NORTHWIND", "TAILSPIN", "LITWARE", "ADVENTUREWORKS"]):
        for year in (2018, 2019):
            numbers = {k: 1000 + 97 * n + year + i for i, k in enumerate("abcd")}
            notes = f"\n\n# Notes\n\n{NOTES}\n"
            (share / f"{company}_{year}_10K.md").write_text(
                f"# Cash flows\n\n{STATEMENT.format(**numbers)}{notes}", encoding="utf-8")
    built = make_services()
    built.ingest.ingest(share, collection="filings")
    return built


@pytest.mark.slow
def test_a_question_naming_a_company_and_year_finds_that_filing(filings: Any) -> None:
    question = "What were the purchases of property, plant and equipment of Tailspin in FY2019?"
    passages = filings.retriever.retrieve(question, top_k=3).passages
    assert passages[0].chunk.file == "TAILSPIN_2019_10K.md"
    assert passages[0].chunk.heading == "Cash flows"


@pytest.mark.slow
def test_a_question_in_the_documents_words_still_follows_bm25(
    make_services: Any, tmp_path: Path, index_backend: str,
) -> None:
    share = tmp_path / "manuals"
    share.mkdir()
    models = {"XR-7731": "Das Gerät XR-7731 wird mit 24 Volt betrieben.",
              "XR-7740": "Das Gerät XR-7740 wird mit 12 Volt betrieben.",
              "XR-7755": "Das Gerät XR-7755 wird mit 48 Volt betrieben."}
    for name, text in models.items():
        (share / f"{name}.md").write_text(f"# Technische Daten\n\n{text}\n", encoding="utf-8")
    built = make_services()
    built.ingest.ingest(share, collection="manuals")
    passages = built.retriever.retrieve("Betriebsspannung XR 7740", top_k=1).passages
    assert passages[0].chunk.file == "XR-7740.md"
