"""Source cards show whole words and sentences around the passage; cited passages yield the sentences that back it."""

from __future__ import annotations

from assistant.excerpts import ELLIPSIS, clip, context_after, context_before, supporting_sentences

PAGE = ("Claims are paid within thirty days of receipt. For questions about a claim, contact our customer "
        "service team. The plan covers vision exams once a year. Glasses are covered up to two hundred dollars "
        "every second year, and contact lenses instead of glasses up to the same amount. Out-of-network providers "
        "are reimbursed at sixty percent.")


def test_context_cut_mid_word_starts_and_ends_on_word_boundaries() -> None:
    start = PAGE.index("The plan covers")
    assert context_before(PAGE, start, start - PAGE.index("mer service")) == "…service team. "  # not "mer service"
    for chars in range(1, 150):  # wherever the cut lands, the context begins and ends at a whole word
        before = context_before(PAGE, start, chars)
        shown = before.removeprefix(ELLIPSIS)
        assert PAGE[:start].endswith(shown), "the context is the text right before the passage"
        begins = start - len(shown)
        assert not shown or not PAGE[begins - 1].isalnum(), f"{chars}: {before!r} starts mid-word"
        assert before.startswith(ELLIPSIS) or begins == 0 or PAGE[begins - 2] == ".", "cut text is marked"
        after = context_after(PAGE, start, chars)
        shown = after.removesuffix(ELLIPSIS)
        assert PAGE[start:].startswith(shown)
        assert not shown or not PAGE[start + len(shown)].isalnum(), f"{chars}: {after!r} ends mid-word"
        assert after.endswith((ELLIPSIS, ".")) or not after, "cut text is marked"


def test_context_prefers_sentence_boundaries_and_keeps_uncut_text_whole() -> None:
    glasses = PAGE.index("Glasses are covered")
    assert context_before(PAGE, glasses, 100) == "The plan covers vision exams once a year. "
    assert context_after(PAGE, PAGE.index(" For questions"), 120) == (
        " For questions about a claim, contact our customer service team. The plan covers vision exams once a year.")
    assert context_after(PAGE, glasses, 60) == "Glasses are covered up to two hundred dollars every second…"
    assert context_before(PAGE, 20, 500) == PAGE[:20]  # the page's start: nothing was cut
    assert context_after(PAGE, len(PAGE) - 10, 500) == PAGE[-10:]


def test_clip_cuts_long_sentences_at_a_word() -> None:
    assert clip("short sentence", 50) == "short sentence"
    clipped = clip("word " * 100, 42)
    assert clipped.endswith(ELLIPSIS) and len(clipped) <= 43 and clipped.removesuffix(ELLIPSIS).endswith("word")


def test_supporting_sentences_are_the_passage_sentences_sharing_the_answers_and_questions_words() -> None:
    support = supporting_sentences(PAGE, "Does the plan cover glasses?", "Glasses are covered up to $200 [1].")
    assert support == ["Glasses are covered up to two hundred dollars every second year, and contact lenses instead "
                       "of glasses up to the same amount."]
    both = supporting_sentences(PAGE, "Are vision exams and glasses covered?", "Yes, vision exams and glasses [1].")
    assert both == ["The plan covers vision exams once a year.", both[1]] and both[1].startswith("Glasses")
    assert supporting_sentences(PAGE, "Who is the CEO?", "Nobody [1].") == []


def test_a_line_break_inside_a_sentence_is_not_a_sentence_start() -> None:
    page = ("PerksPlus covers gym memberships and classes.\n• Virtual fitness programs\nIn addition, the program "
            "also covers a variety \nof lessons and experiences that promote health and wellness.")
    start = page.index("that promote")
    assert context_before(page, start, 40) == "…a variety \nof lessons and experiences "
    after_a_sentence = start - page.index("sses.")  # the window begins inside "classes."
    assert context_before(page, start, after_a_sentence) == (
        "• Virtual fitness programs\nIn addition, the program also covers a variety \nof lessons and experiences ")
