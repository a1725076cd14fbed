"""Questions as users type them: misspelt words, and several questions in one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from assistant.events import Stage, Status
from assistant.retrieval import Retriever, question_parts
from assistant.spelling import correct
from storage.bm25 import tokenize

DOC_WORDS = set(tokenize("Northwind Health covers hearing services, mental health care and clinical trials. "
                         "Contoso employees choose a plan."))


def _known(term: str) -> bool:
    return term in DOC_WORDS


def test_misspelt_words_become_the_documents_words() -> None:
    assert correct("Wht servises does Northwind Helth cover?", _known) == "What services does Northwind Health cover?"
    assert correct("What about HEARIN and clnical trials?", _known) == "What about HEARING and clinical trials?"


def test_names_the_documents_use_and_real_words_they_lack_stay_as_typed() -> None:
    """"Contoso" is no English word but the documents use it; "postnatal yoga" is English they never use."""
    question = "Does Contoso cover postnatal yoga or acupuncture?"
    assert correct(question, _known) == question


def test_an_acronym_is_spelled_out_only_as_the_passages_spell_it_often_enough() -> None:
    from assistant.acronyms import spelled_out

    texts = ["Staff take paid time off in half days. Paid time off is approved by the manager.",
             "Cost of goods sold rose 4%; cost of goods sold includes freight.",
             "Earnings before interest, taxes, depreciation and amortization (twice): earnings before interest, "
             "taxes, depreciation and amortization.",
             "Pension trustees oversee the plan."]  # "pension trustees oversee": P, T, O once only
    assert spelled_out("PTO", texts) == "paid time off"
    assert spelled_out("COGS", texts) == "cost of goods sold"
    assert spelled_out("EBITDA", texts) == "earnings before interest taxes depreciation and amortization"
    assert spelled_out("DPO", texts) is None  # no phrase: left to the spelling step
    assert spelled_out("PTO", texts[3:] * 1) is None  # one chance match of three initials is not enough


def test_only_the_asking_sentence_acronyms_the_asker_did_not_spell_out_are_expanded() -> None:
    from assistant.acronyms import expand
    from assistant.retrieval import ASKS

    texts = ["Cost of goods sold rose; cost of goods sold fell.", "Paid time off: paid time off is booked ahead.",
             "Free cash flow grew. Free cash flow fell."]

    def asked(question: str) -> str:
        return expand(question, lambda term: False, lambda _: texts, lambda sentence: bool(ASKS.search(sentence)))

    assert asked("How much PTO do I get?") == "How much paid time off do I get?"
    definition = "What is the cash conversion cycle for Acme? DIO is defined as: inventory / COGS."
    assert asked(definition) == definition  # COGS is a term of a definition, not what is asked about
    spelled = "What is the FY2020 free cash flow (FCF) for Acme? FCF is cash from operations less capex."
    assert asked(spelled) == spelled


def test_compound_questions_are_split_into_their_parts() -> None:
    assert question_parts("How does the dental plan work, and what does it cost per year?") == [
        "How does the dental plan work", "what does it cost per year?"]
    assert question_parts("What is the yearly deductible? How do I file a claim?") == [
        "What is the yearly deductible?", "How do I file a claim?"]
    assert question_parts("Are salt and pepper provided in the kitchen?") == []
    assert question_parts("What is covered, and why?") == []  # a part without a subject of its own


DENTAL = [
    "New employees get dental cleanings twice a year; the dental plan covers their cost from day one.",
    "Dental crowns cost new employees 50 percent after the dental deductible, paid within 30 days.",
    "Orthodontics costs for children of employees are covered by the dental plan after 90 days.",
    "Dental x-rays are covered once a year; new employees pay no dental costs for them.",
    "The dental plan covers fillings; employees pay a 20 dollar copay, the plan covers other costs.",
]


@pytest.fixture
def services(make_services: Any, tmp_path: Path, index_backend: str) -> Any:
    """On each index backend (``index_backend``)."""
    share = tmp_path / "share"
    share.mkdir()
    for n, text in enumerate(DENTAL):
        (share / f"dental-{n}.md").write_text(f"# Dental {n}\n\n{text}\n", encoding="utf-8")
    (share / "leave.md").write_text("# Leave\n\nStaff accrue 20 paid days off a year.\n", encoding="utf-8")
    (share / "time-off.md").write_text(
        "# Time away\n\nPaid time off is booked in the HR portal a week ahead. Unused paid time off "
        "carries over to March.\n", encoding="utf-8")
    (share / "hearing.md").write_text(
        "# Hearing\n\nHearing aids are reimbursed up to 1,500 dollars per ear every three years.\n", encoding="utf-8")
    built = make_services()
    built.ingest.ingest(share, collection="hr")
    return built


def _files(retriever: Retriever, question: str, k: int) -> list[str]:
    return [p.chunk.file for p in retriever.retrieve(question, top_k=k).passages]


def test_a_misspelt_question_finds_the_passage_its_words_meant(services: Any) -> None:
    question = "How much are hearin ayds reimbursd?"
    retrieval = services.retriever.retrieve(question, top_k=1)
    assert retrieval.query == "How much are hearing aids reimbursed?"
    assert [p.chunk.file for p in retrieval.passages] == ["hearing.md"]
    as_typed = Retriever(services.corpus, services.settings.retrieval.model_copy(update={"correct_spelling": False}))
    assert as_typed.retrieve(question, top_k=1).query == question


def test_an_acronym_the_documents_never_use_is_searched_as_the_phrase_they_spell(services: Any) -> None:
    """ "PTO" is in no document: it must not become "TO" (a stop word: the question would lose its subject)."""
    retrieval = services.retriever.retrieve("How do I book PTO?", top_k=1)
    assert retrieval.query == "How do I book paid time off?"
    assert [p.chunk.file for p in retrieval.passages] == ["time-off.md"]
    unexpanded = Retriever(services.corpus, services.settings.retrieval.model_copy(update={"expand_acronyms": False}))
    assert unexpanded.retrieve("How do I book PTO?", top_k=1).query == "How do I book TO?"  # what users got


def test_every_part_of_a_compound_question_gets_its_own_passages(services: Any) -> None:
    question = ("Which dental costs does the dental plan cover for new employees, "
                "and how many paid days off do they get?")
    files = _files(services.retriever, question, 3)
    assert "leave.md" in files
    assert any(f.startswith("dental-") for f in files)
    whole_only = Retriever(services.corpus, services.settings.retrieval.model_copy(update={"split_questions": False}))
    assert "leave.md" not in _files(whole_only, question, 3), "the dental part crowds the other out unsplit"


def test_a_corrected_question_is_what_the_answer_reports(services: Any) -> None:
    events = list(services.answers.ask("How much are hearin ayds reimbursd?", retrieve_only=True))
    answer = events[-1].answer
    assert answer.question == "How much are hearin ayds reimbursd?"
    assert answer.query == "How much are hearing aids reimbursed?"
    assert any(isinstance(e, Status) and e.stage is Stage.REWRITING and e.detail == answer.query for e in events)
