"""The ranking and decision functions on inputs built here: no model, no index, no server.

The end-to-end tests (test_fusion, test_answer, test_llm) show these working together;
these pin each one down: order, which passage or page wins, ties, empty input, and which
server a request goes to after a failure.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from assistant.answer import lean_passage
from assistant.answerability import judge
from assistant.errors import BackendUnavailable, GenerationError
from assistant.followup import standalone_question
from assistant.llm.base import ChatMessage
from assistant.llm.rotation import HostRotation, all_failed, stream_in_turn
from assistant.retrieval import Passage, best_per_unit, fuse_rrf, fuse_weighted, interleave
from assistant.settings import AnswerSettings
from storage.bm25 import tokenize
from storage.documents import StoredChunk


def chunk(i: int, file: str = "handbook.pdf", page: int | None = 1, collection: str = "hr") -> StoredChunk:
    return StoredChunk(i, collection, 1, file, page, "", f"text {i}", 0, 6)


def best_first(scores: dict[str, float]) -> list[str]:
    """The fused ids in the order the retriever ranks them (a stable sort: ties keep first-seen order)."""
    return sorted(scores, key=scores.__getitem__, reverse=True)


# --- fuse_rrf -------------------------------------------------------------------------------


def test_rrf_ranks_by_position_and_rewards_agreement() -> None:
    dense = [("a", 0.9), ("b", 0.5), ("c", 0.1)]
    bm25 = [("c", 12.0), ("a", 2.0)]
    fused = fuse_rrf([dense, bm25], 60)
    assert fused == pytest.approx({"a": 1 / 61 + 1 / 62, "b": 1 / 62, "c": 1 / 63 + 1 / 61})
    assert best_first(fused) == ["a", "c", "b"], "found by both rankings beats found by one"


def test_rrf_ignores_the_scores_themselves() -> None:
    assert fuse_rrf([[("a", 100.0), ("b", 0.001)]], 60) == fuse_rrf([[("a", -3.0), ("b", -2.0)]], 60)


def test_rrf_ties_keep_the_order_first_seen_and_k_sets_the_gap() -> None:
    fused = fuse_rrf([[("a", 1.0)], [("b", 1.0)]], 60)
    assert fused["a"] == fused["b"]
    assert best_first(fused) == ["a", "b"]
    assert fuse_rrf([[("a", 1.0), ("b", 0.5)]], 0) == {"a": 1.0, "b": 0.5}


def test_rrf_of_nothing_is_nothing() -> None:
    assert fuse_rrf([], 60) == {}
    assert fuse_rrf([[], []], 60) == {}
    assert fuse_rrf([[], [("a", 1.0)]], 60) == {"a": pytest.approx(1 / 61)}


# --- fuse_weighted --------------------------------------------------------------------------


def test_weighted_normalises_each_ranking_before_weighing() -> None:
    dense = [("a", 0.9), ("b", 0.5), ("c", 0.1)]
    bm25 = [("c", 12.0), ("a", 2.0)]
    assert fuse_weighted(dense, bm25, 0.4) == pytest.approx({"a": 0.4, "b": 0.2, "c": 0.6})
    assert best_first(fuse_weighted(dense, bm25, 0.4)) == ["c", "a", "b"], "BM25 leads at weight 0.4"
    assert best_first(fuse_weighted(dense, bm25, 0.9)) == ["a", "b", "c"], "dense leads at weight 0.9"


def test_weighted_at_full_dense_weight_keeps_bm25_only_chunks_at_zero() -> None:
    fused = fuse_weighted([("a", 0.8), ("b", 0.2)], [("z", 30.0)], 1.0)
    assert fused == pytest.approx({"a": 1.0, "b": 0.0, "z": 0.0})


def test_weighted_equal_scores_all_count_fully() -> None:
    assert fuse_weighted([("a", 0.5), ("b", 0.5)], [], 0.7) == pytest.approx({"a": 0.7, "b": 0.7})


def test_weighted_with_one_ranking_empty_uses_the_other() -> None:
    assert fuse_weighted([], [("a", 3.0), ("b", 1.0)], 0.7) == pytest.approx({"a": 0.3, "b": 0.0})
    assert fuse_weighted([], [], 0.5) == {}


# --- best_per_unit --------------------------------------------------------------------------


def test_a_page_is_ranked_once_at_its_best_chunk() -> None:
    chunks = {1: chunk(1, page=3), 2: chunk(2, page=3), 3: chunk(3, page=4)}
    assert best_per_unit([(2, 0.9), (3, 0.8), (1, 0.7)], chunks) == [
        (("hr", "handbook.pdf", 3), 0.9), (("hr", "handbook.pdf", 4), 0.8)]


def test_chunks_without_pages_are_units_of_their_own() -> None:
    chunks = {1: chunk(1, "notes.md", None), 2: chunk(2, "notes.md", None)}
    assert [score for _, score in best_per_unit([(1, 0.6), (2, 0.5)], chunks)] == [0.6, 0.5]


def test_the_same_page_number_in_other_files_or_collections_is_another_unit() -> None:
    chunks = {1: chunk(1), 2: chunk(2, file="policy.pdf"), 3: chunk(3, collection="legal")}
    assert len(best_per_unit([(1, 0.9), (2, 0.8), (3, 0.7)], chunks)) == 3


def test_best_per_unit_of_nothing_is_nothing() -> None:
    assert best_per_unit([], {}) == []


# --- interleave -----------------------------------------------------------------------------


def test_rankings_take_turns_best_first() -> None:
    whole = [Passage(chunk(1, page=1), 0.9), Passage(chunk(2, page=2), 0.8), Passage(chunk(3, page=3), 0.7)]
    part = [Passage(chunk(4, page=9), 0.6), Passage(chunk(5, page=8), 0.5)]
    assert [p.chunk.id for p in interleave([whole, part], 10)] == [1, 4, 2, 5, 3]
    assert [p.chunk.id for p in interleave([whole, part], 3)] == [1, 4, 2]


def test_a_page_both_rankings_found_is_taken_once_from_the_earlier_turn() -> None:
    whole = [Passage(chunk(1, page=1), 0.9), Passage(chunk(2, page=2), 0.8)]
    part = [Passage(chunk(3, page=1), 0.99), Passage(chunk(4, page=5), 0.5)]
    taken = interleave([whole, part], 10)
    assert [p.chunk.id for p in taken] == [1, 2, 4], "page 1 comes from the whole question's ranking"


def test_interleave_of_nothing_is_nothing() -> None:
    assert interleave([], 5) == []
    assert interleave([[], []], 5) == []
    only = [Passage(chunk(1), 0.5)]
    assert interleave([[], only], 5) == only


# --- lean_passage ---------------------------------------------------------------------------

POLICY = ("Intro about the company history. Badges must be worn inside the office. "
          "Lost badges go to security. Parking is on level two.")


def test_a_passage_within_budget_is_kept_whole() -> None:
    assert lean_passage(POLICY, "Where do lost badges go?", len(POLICY)) == POLICY


def test_the_best_sentence_is_kept_with_the_neighbour_that_matches_more() -> None:
    lean = lean_passage(POLICY, "Where do lost badges go?", 70)
    assert lean == "Badges must be worn inside the office. Lost badges go to security."


def test_a_neighbour_that_does_not_fit_is_passed_over_for_one_that_does() -> None:
    lean = lean_passage(POLICY, "Where do lost badges go?", 60)
    assert lean == "Lost badges go to security. Parking is on level two."


def test_with_no_word_in_common_the_passage_starts_at_the_beginning() -> None:
    assert lean_passage(POLICY, "What about weather?", 40) == "Intro about the company history."


def test_one_sentence_longer_than_the_budget_is_cut_to_it() -> None:
    long = "Lost badges " + "really " * 20 + "go to security. Short one."
    lean = lean_passage(long, "lost badges", 50)
    assert len(lean) == 50 and lean.startswith("Lost badges really")


# --- judge ----------------------------------------------------------------------------------

SETTINGS = AnswerSettings(refuse_below_dense=0.4, refuse_missing_terms=True)  # type: ignore[call-arg]
INDEXED = set(tokenize("Northwind Health Plus and Northwind Standard cover dental care in 2024"))


def known(term: str) -> bool:
    return term in INDEXED


def found(*dense: float | None) -> list[Passage]:
    return [Passage(chunk(i), 0.5, dense=d) for i, d in enumerate(dense)]


def test_no_passage_is_refused() -> None:
    verdict = judge("What does Northwind Standard cover?", [], known, SETTINGS)
    assert verdict.refuse and verdict.reason == "no passage was found in the collections you can read"


def test_the_best_dense_score_decides_closeness() -> None:
    verdict = judge("What does Northwind Standard cover?", found(0.2, 0.35), known, SETTINGS)
    assert verdict.refuse and verdict.top_dense == 0.35
    assert verdict.reason == "no passage is close enough to the question (best 0.35)"
    assert not judge("What does Northwind Standard cover?", found(0.2, 0.4), known, SETTINGS).refuse


def test_passages_found_by_bm25_alone_count_as_not_close() -> None:
    assert judge("What does Northwind Standard cover?", found(None, None), known, SETTINGS).refuse


def test_a_name_no_document_holds_is_refused_and_named() -> None:
    verdict = judge("What does Northwind Platinum cover?", found(0.8), known, SETTINGS)
    assert verdict.refuse and verdict.missing_terms == ["platinum"]
    assert verdict.reason == "the documents never mention: platinum"


def test_typos_years_and_ordinary_words_are_not_missing_names() -> None:
    for question in ("What does Northwnd Standard cover?", "What did Northwind Standard cover in 2031?",
                     "what does the cheapest plan cover for eyeglasses?"):
        verdict = judge(question, found(0.8), known, SETTINGS)
        assert (verdict.refuse, verdict.reason) == (False, "passages found"), question


def test_the_missing_name_check_can_be_turned_off() -> None:
    lenient = SETTINGS.model_copy(update={"refuse_missing_terms": False})
    assert not judge("What does Northwind Platinum cover?", found(0.8), known, lenient).refuse


# --- standalone_question --------------------------------------------------------------------


def chat(*turns: str) -> list[ChatMessage]:
    """Alternating user and assistant turns, the user first."""
    return [ChatMessage(role="user" if n % 2 == 0 else "assistant", content=t) for n, t in enumerate(turns)]


def test_a_first_question_or_a_full_question_is_searched_as_asked() -> None:
    assert standalone_question("And for Northwind Standard?", []) == "And for Northwind Standard?"
    full = "How many days of paid leave do new employees accrue in their first year?"
    assert standalone_question(full, chat("What is the deductible for Northwind Health Plus?", "It is $500.")) == full


def test_the_latest_user_question_is_the_subject_not_the_answer() -> None:
    history = chat("What is the deductible for Northwind Health Plus?", "It is $500 [1].",
                   "What is the copay for Northwind Health Plus?", "It is $20 for Northwind Standard [2].")
    assert standalone_question("And for Northwind Standard?", history) == "What is the copay for Northwind Standard?"


def test_a_bare_lead_in_repeats_the_previous_question() -> None:
    assert standalone_question("And?", chat("What is the 2019 revenue of Contoso?", "$12M.")) == (
        "What is the 2019 revenue of Contoso?")


def test_a_year_is_swapped_for_the_year_asked_before() -> None:
    history = chat("What was Contoso's capital expenditure in FY2018?", "$1.2B.")
    assert standalone_question("and in 2019?", history) == "What was Contoso's capital expenditure in 2019?"


def test_a_follow_up_with_no_name_to_swap_is_added_as_context() -> None:
    history = chat("What is the deductible for Northwind Health Plus?", "$500.")
    assert standalone_question("what about vision care", history) == (
        "What is the deductible for Northwind Health Plus: vision care?")


# --- host rotation --------------------------------------------------------------------------


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_requests_start_at_each_host_in_turn() -> None:
    rotation = HostRotation(["a", "b", "c"], 30.0)
    assert [rotation.in_turn() for _ in range(4)] == [
        ["a", "b", "c"], ["b", "c", "a"], ["c", "a", "b"], ["a", "b", "c"]]


def test_a_host_cooling_down_is_tried_last_until_its_time_is_up() -> None:
    clock = Clock()
    rotation = HostRotation(["a", "b", "c"], 30.0, clock)
    rotation.cool_down("a")
    assert rotation.is_down("a") and rotation.in_turn() == ["b", "c", "a"]
    assert rotation.in_turn() == ["b", "c", "a"]
    clock.now += 30.0
    assert not rotation.is_down("a") and rotation.in_turn() == ["c", "a", "b"]


def test_a_host_that_answers_is_back_in_turn_at_once() -> None:
    rotation = HostRotation(["a", "b"], 30.0, Clock())
    rotation.cool_down("a")
    rotation.mark_up("a")
    assert not rotation.is_down("a") and rotation.in_turn() == ["a", "b"]


class Hosts:
    """Hosts that answer with their own name, or fail as told; records which were asked."""

    def __init__(self, failing: dict[str, GenerationError], fail_after_first_piece: frozenset[str] = frozenset()):
        self.failing = failing
        self.fail_after_first_piece = fail_after_first_piece
        self.asked: list[str] = []

    def attempt(self, host: str) -> Iterator[str]:
        self.asked.append(host)
        if host in self.fail_after_first_piece:
            yield f"{host} starts"
            raise BackendUnavailable(f"{host} stopped")
        if host in self.failing:
            raise self.failing[host]
        yield f"answer from {host}"


def always(error: GenerationError) -> bool:
    return True


def test_a_failed_host_sends_the_request_to_the_next_and_is_passed_over_after() -> None:
    rotation = HostRotation(["a", "b", "c"], 30.0, Clock())
    hosts = Hosts({"a": BackendUnavailable("a is down")})
    assert list(stream_in_turn(rotation, hosts.attempt, always, "Ollama host")) == ["answer from b"]
    assert hosts.asked == ["a", "b"] and rotation.is_down("a")
    assert list(stream_in_turn(rotation, hosts.attempt, always, "Ollama host")) == ["answer from b"]
    assert hosts.asked[2:] == ["b"], "the next request starts at b, and a waits at the end"


def test_a_model_error_does_not_cool_the_host_down() -> None:
    rotation = HostRotation(["a", "b"], 30.0, Clock())
    hosts = Hosts({"a": GenerationError("a lacks the model")})
    assert list(stream_in_turn(rotation, hosts.attempt, always, "Ollama host")) == ["answer from b"]
    assert not rotation.is_down("a")


def test_no_fail_over_once_text_has_been_streamed() -> None:
    rotation = HostRotation(["a", "b"], 30.0, Clock())
    hosts = Hosts({}, fail_after_first_piece=frozenset({"a"}))
    stream = stream_in_turn(rotation, hosts.attempt, always, "Ollama host")
    assert next(stream) == "a starts"
    with pytest.raises(BackendUnavailable, match="a stopped"):
        next(stream)
    assert hosts.asked == ["a"]


def test_an_error_not_worth_another_host_is_raised_at_once() -> None:
    rotation = HostRotation(["a", "b"], 30.0, Clock())
    hosts = Hosts({"a": GenerationError("prompt too long")})
    with pytest.raises(GenerationError, match="prompt too long"):
        list(stream_in_turn(rotation, hosts.attempt, lambda error: False, "Ollama host"))
    assert hosts.asked == ["a"]


def test_when_every_host_fails_each_is_named() -> None:
    rotation = HostRotation(["a", "b"], 30.0, Clock())
    hosts = Hosts({"a": BackendUnavailable("a is down"), "b": BackendUnavailable("b is down")})
    with pytest.raises(BackendUnavailable, match=r"^no Ollama host could answer: a is down; b is down$"):
        list(stream_in_turn(rotation, hosts.attempt, always, "Ollama host"))


def test_all_failed_keeps_a_single_error_and_its_kind() -> None:
    only = GenerationError("model missing")
    assert all_failed([only], "server") is only
    mixed = all_failed([BackendUnavailable("a is down"), GenerationError("b lacks the model")], "server")
    assert type(mixed) is GenerationError and str(mixed) == "no server could answer: a is down; b lacks the model"


# --- quote_evidence ---------------------------------------------------------------------------


def test_evidence_quotes_sentences_that_answer_never_a_bare_heading() -> None:
    from dataclasses import replace

    from assistant.evidence import quote_evidence

    sentence = "The Chief Executive Officer (CEO) will be responsible for strategic direction."
    passage = Passage(replace(chunk(1), text=f"Contoso Electronics\n{sentence}"), 1.0)
    quotes = quote_evidence("Who is the CEO of Contoso Electronics?", [passage])
    assert [q.text for q in quotes] == [sentence], "the heading answers nothing"
