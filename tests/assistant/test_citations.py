"""The citation parser and sentence attribution."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from assistant.citations import attribute_sentences, clean_markers, markers_in, split_sentences


def test_markers_outside_the_passages_are_dropped() -> None:
    text, used = clean_markers("Two cleanings [2]. Crowns [7]. Both [1, 9][3].", passage_count=3)
    assert text == "Two cleanings [2]. Crowns. Both [1][3]."
    assert used == [2, 1, 3]


def test_sentences_and_their_markers() -> None:
    sentences = split_sentences("Flights under six hours are economy [1]. Business needs approval [2].\n- Taxis [3]")
    assert [markers_in(s) for s in sentences] == [[1], [2], [3]]


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab [],;0123456789.\n")), max_size=80), st.integers(0, 12))
def test_any_text_yields_only_valid_markers(text: str, count: int) -> None:
    cleaned, used = clean_markers(text, count)
    assert all(1 <= n <= count for n in used)
    assert all(1 <= n <= count for n in markers_in(cleaned))


def test_attribution_uses_the_real_embedding_model(embedder: Any) -> None:
    passages = ["Economy class is booked for flights under six hours.", "The gym opens at six in the morning."]
    answer = "You fly economy when the flight is shorter than six hours. Lasagna is served on Thursdays. Gyms [2]."
    result = attribute_sentences(answer, passages, embedder.embed_passages, threshold=0.55)
    assert [(s.status, s.passages) for s in result] == [("attributed", [1]), ("unsupported", []), ("cited", [2])]


def test_list_numbers_at_line_starts_are_not_markers() -> None:
    numbered = "[1] Two cleanings per year\n[2] Orthodontics for children\n[3] Crowns at 50 percent"
    assert clean_markers(numbered, 5) == ("1. Two cleanings per year\n2. Orthodontics for children\n"
                                          "3. Crowns at 50 percent", [])
    bulleted = "- [2] Two cleanings per year\n- [2] Orthodontics for children"
    assert clean_markers(bulleted, 5) == ("- Two cleanings per year\n- Orthodontics for children", [])
    assert clean_markers("[2] • Two cleanings • Crowns at 50 percent", 5)[1] == [2], "one opening marker cites"
    assert clean_markers("Two cleanings [1].\nCrowns at 50 percent [2].", 5)[1] == [1, 2]


def test_text_copied_from_a_passage_is_supported_and_repeats_get_one_verdict(embedder: Any) -> None:
    long_passage = " ".join([
        "Employees accrue paid time off from their first day of work.",
        "The cafeteria on the third floor opens at seven and serves breakfast until ten.",
        "Visitors must sign in at the front desk and wear a badge at all times.",
        "Laptops are replaced every four years, or sooner when they fail.",
        "The fire assembly point is the north parking lot beside the loading dock.",
        "Expense reports are due within thirty days of the purchase.",
        "Bring your own mug.",
        "The quarterly all-hands meeting is streamed to every regional office.",
    ])
    passages = [long_passage, "The gym opens at six in the morning."]
    result = attribute_sentences("Bring your own mug. Lasagna is served on Thursdays [2]. "
                                 "Lasagna is served on Thursdays.", passages, embedder.embed_passages, 0.55)
    assert [(s.status, s.passages) for s in result] == [("attributed", [1]), ("cited", [2]), ("attributed", [2])]
    twice = attribute_sentences("Lasagna is served on Thursdays. Lasagna is served on Thursdays.", passages,
                                embedder.embed_passages, threshold=0.55)
    assert twice[0].status == twice[1].status and twice[0].support == twice[1].support


def test_an_answer_is_attributed_to_the_section_it_restates_not_a_page_that_repeats_a_phrase(embedder: Any) -> None:
    """A summary page that repeats one phrase must not take a sentence from the section the answer restates;
    a sentence only another passage supports still goes to that passage."""
    section = ("Prior authorization. Some services need prior authorization from Northwind Health Plus before you "
               "receive them. Your doctor submits the request to Northwind Health Plus. A decision on the request "
               "is made within fourteen days.")
    passages = [section, "Decisions on requests take up to 14 days.", "The Contoso gym opens at six in the morning."]
    answer = ("Your doctor asks Northwind Health Plus for prior authorization before the service. "
              "Decisions take up to 14 days. The gym opens at six.")
    each_best = attribute_sentences(answer, passages, embedder.embed_passages, 0.55)
    assert [s.passages for s in each_best] == [[1], [2], [3]], "without the anchor the summary page takes one"
    anchored = attribute_sentences(answer, passages, embedder.embed_passages, 0.55, anchor_margin=0.2)
    assert [(s.status, s.passages) for s in anchored] == [("attributed", [1]), ("attributed", [1]),
                                                          ("attributed", [3])]
