"""Follow-up questions searched as questions that stand alone."""

from __future__ import annotations

from assistant.followup import standalone_question
from assistant.llm.base import ChatMessage


def _after(question: str) -> list[ChatMessage]:
    return [ChatMessage(role="user", content=question), ChatMessage(role="assistant", content="An answer [1].")]


def test_a_follow_up_naming_another_plan_asks_the_same_of_it() -> None:
    history = _after("What is the deductible for Northwind Health Plus?")
    assert standalone_question("And for Northwind Standard?", history) == (
        "What is the deductible for Northwind Standard?")
    assert standalone_question("What about Northwind Standard?", history) == (
        "What is the deductible for Northwind Standard?")


def test_the_name_sharing_words_with_the_follow_up_is_the_one_replaced() -> None:
    history = _after("Does Northwind Health Plus cover more than Contoso Basic?")
    assert standalone_question("And Northwind Standard?", history) == (
        "Does Northwind Standard cover more than Contoso Basic?")


def test_a_follow_up_naming_another_year_asks_the_same_for_it() -> None:
    history = _after("What was the revenue of Contoso in FY2018?")
    assert standalone_question("and in 2019?", history) == "What was the revenue of Contoso in 2019?"


def test_other_follow_ups_keep_the_previous_question_as_context() -> None:
    history = _after("What is the deductible for Northwind Health Plus?")
    assert standalone_question("What about dental?", history) == (
        "What is the deductible for Northwind Health Plus: dental?")
    assert standalone_question("How do I apply for parental leave at Contoso?", history) == (
        "How do I apply for parental leave at Contoso?")
    assert standalone_question("And Contoso?", []) == "And Contoso?"
