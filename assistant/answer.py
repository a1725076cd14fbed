"""Answer a question from the readable collections: retrieve, decide, generate, cite.

``AnswerService.ask`` yields typed events; the last one is always ``Done`` with the
finished ``Answer``, including when the model failed (then ``error`` says why and the
retrieved sources are still there). When the evidence checks let a question through but the
model wrote nothing usable (nothing, a loop, text that follows no passage, or an error), the
answer quotes the passages' best sentences instead (``Answer.quoted`` says why).
"""

from __future__ import annotations

import re
import time
from collections.abc import Generator, Iterator
from contextlib import closing
from dataclasses import dataclass

from assistant.answerability import judge
from assistant.citations import MARKER_RE, attribute_sentences, clean_markers, grounding
from assistant.corpus import IN_PROCESS, Corpus
from assistant.errors import GenerationError
from assistant.events import (
    Answer,
    Citation,
    Done,
    Event,
    Evidence,
    Sources,
    Stage,
    Status,
    Token,
    indexing_note,
    waiting,
)
from assistant.evidence import quote_evidence, quoted_answer
from assistant.followup import standalone_question
from assistant.generation_queue import GenerationQueue
from assistant.links import LinkGuard, defang_links, own_hosts
from assistant.live_settings import LiveSettings
from assistant.llm.base import ChatMessage, ChatModel, SizedChatModel
from assistant.llm.factory import AnsweringModel, ChosenModel
from assistant.model_output import complete_sentences, repetition
from assistant.retrieval import Passage, Retriever, knows_term
from assistant.settings import Settings
from storage.bm25 import tokenize
from storage.search_index import SearchIndex

# A 270M-parameter model follows an instruction best when it sits right before the question,
# after the passages; a separate system turn made it echo the prompt back.
INSTRUCTION = (
    "Using only the passages above, answer the question in one or two sentences and cite the "
    "passage number in brackets, like [1]. If the passages do not answer it, say: "
    "I could not find this in the documents."
)
REFUSAL_TEXT = "I could not find this in the documents you can read."
REFUSAL_RE = re.compile(
    r"could not find|couldn't find|cannot find|can't find|i don't know|i do not know|not (?:mentioned|"
    r"provided|specified|stated|covered) in the|no information|do(?:es)? not (?:contain|mention|say|provide)",
    re.I,
)
SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s+|\n+")
AT_CAP = 0.95  # of max_tokens: a token ending inside a multi-byte character streams no piece of its own
BOUNDARY = re.compile(r"[.!?\n]")


@dataclass
class Stream:
    """What the model streamed, and why it ended early: ``repeating`` (cut by us) or ``at_cap`` (the length cap)."""

    pieces: list[str]
    repeating: str | None = None
    at_cap: bool = False

    @property
    def text(self) -> str:
        """The streamed text so far."""
        return "".join(self.pieces)


def lean_passage(text: str, question: str, budget_chars: int) -> str:
    """The sentences of a passage that best match the question, within a size budget."""
    if len(text) <= budget_chars:
        return text
    sentences = [s for s in SENTENCE_SPLIT.split(text) if s.strip()]
    wanted = set(tokenize(question))
    scores = [len(wanted & set(tokenize(s))) for s in sentences]
    best = max(range(len(sentences)), key=scores.__getitem__)
    lo = hi = best
    size = len(sentences[best])
    while True:
        grow = [i for i in (lo - 1, hi + 1) if 0 <= i < len(sentences) and size + len(sentences[i]) <= budget_chars]
        if not grow:
            break
        pick = max(grow, key=scores.__getitem__)
        size += len(sentences[pick]) + 1
        lo, hi = min(lo, pick), max(hi, pick)
    return " ".join(sentences[lo : hi + 1])[:budget_chars]


def build_messages(question: str, passages: list[Passage], budget_chars: int) -> list[ChatMessage]:
    """One user turn: the numbered passages (each trimmed to its best sentences), the instruction, the question."""
    lines = [f"[{n}] {lean_passage(p.chunk.text, question, budget_chars)}" for n, p in enumerate(passages, 1)]
    user = "\n\n".join(lines) + f"\n\n{INSTRUCTION}\n\nQuestion: {question}"
    return [{"role": "user", "content": user}]


class AnswerService:
    """Retrieval, the answerability decision, generation and citations for one question."""

    def __init__(self, live: LiveSettings, corpus: Corpus, retriever: Retriever, models: AnsweringModel) -> None:
        self.live = live
        self.corpus = corpus
        self.retriever = retriever
        self.models = models
        self.queue = GenerationQueue(1, live.base.generation.queue_wait_s)
        self.own_hosts = own_hosts(live.base.web.public_url, live.base.web.allowed_hosts)

    @property
    def settings(self) -> Settings:
        """The settings in use now (admins' saved changes included)."""
        return self.live.current()

    def chat_model(self) -> ChatModel:
        """The model that answers under the current settings, chosen on first use and again when they change."""
        return self._chosen().model

    def _chosen(self) -> ChosenModel:
        chosen = self.models.get(self.settings.generation)
        if self.queue.slots != chosen.concurrency:  # the backend says how many answers it writes at once
            self.queue.resize(chosen.concurrency)
        return chosen

    def warm_up(self) -> None:
        """Choose the model that answers now and, when it runs in this process, load it."""
        self.chat_model().load()

    @property
    def chosen_model_name(self) -> str | None:
        """The name of the model that answers, once one has been chosen for the current settings."""
        chosen = self.models.held(self.settings.generation)
        return chosen.model.name if chosen is not None else None

    def ask(
        self, question: str, history: list[ChatMessage] | None = None,
        collections: list[str] | None = None, retrieve_only: bool = False,
    ) -> Iterator[Event]:
        """Stream the answer to ``question`` from ``collections`` (all when None)."""
        started = time.perf_counter()
        yield Status(Stage.RETRIEVING)
        top_k = self.settings.retrieval.top_k  # admins change it while the server runs
        retrieval = self.retriever.retrieve(standalone_question(question, history or []), collections, top_k)
        query, passages = retrieval.query, retrieval.passages  # follow-ups made standalone, typos corrected
        if query != question:
            yield Status(Stage.REWRITING, query)
        indexing = indexing_note(retrieval.indexing, self.settings.retrieval.index_backend == IN_PROCESS)
        if indexing:
            yield Status(Stage.INDEXING, indexing)
        yield Sources(passages)
        answer = Answer(question, query, "", False, "retrieve-only", retrieved=passages, indexing=indexing,
                        timings={"retrieve_ms": retrieval.retrieve_ms, "first_token_ms": None})
        if not retrieve_only:
            yield from self._answer(answer, retrieval.indexes, started)
        answer.timings["total_ms"] = (time.perf_counter() - started) * 1000
        shown = [answer.timings.get(k) for k in ("evidence_ms", "first_token_ms")]
        answer.timings["first_useful_ms"] = min((t for t in shown if t is not None), default=None)
        yield Done(answer)

    def _answer(self, answer: Answer, indexes: list[SearchIndex], started: float) -> Iterator[Event]:
        """Decide, then generate; ``indexes`` are those the passages were retrieved from."""
        yield Status(Stage.DECIDING)
        verdict = judge(answer.query, answer.retrieved, knows_term(indexes), self.settings.answer)
        if verdict.refuse:
            answer.text, answer.refused, answer.refusal_reason = REFUSAL_TEXT, True, verdict.reason
            answer.backend = "none (decided before generation)"
            return
        # The first useful text: the passages' own best sentences, before the model (often seconds away) writes.
        answer.evidence = quote_evidence(answer.query, answer.retrieved)
        if answer.evidence:
            answer.timings["evidence_ms"] = (time.perf_counter() - started) * 1000
            yield Evidence(answer.evidence)
        stream = Stream([])
        try:
            chosen = self._chosen()
            answer.backend = chosen.model.name
            yield from self._wait_turn(answer)
            try:
                if answer.timings["queue_wait_ms"]:
                    yield waiting(0, (answer.timings["queue_wait_ms"] or 0) / 1000)
                yield from self._generate(answer, chosen, stream, started)
            finally:  # finished, failed, or the caller went away: the next in line may start
                self.queue.leave()
        except GenerationError as exc:
            answer.error = str(exc)
            if not self._quote(answer, "the model failed"):
                answer.text = defang_links(stream.text, self.own_hosts)
            return
        self._finish(answer, stream)

    def _wait_turn(self, answer: Answer) -> Iterator[Event]:
        """Wait in line for the model, telling the caller how many requests are ahead; return holding a slot."""
        begun, waited = time.monotonic(), False
        with closing(self.queue.enter()) as places:  # closing it early gives the place up
            for place in places:
                waited = True
                yield waiting(place.ahead, place.waited_s)
        answer.timings["queue_wait_ms"] = (time.monotonic() - begun) * 1000 if waited else 0.0

    def _generate(self, answer: Answer, chosen: ChosenModel, stream: Stream, started: float) -> Iterator[Event]:
        """Stream the model's answer into ``stream``, stopping it when it starts repeating itself."""
        model = chosen.model
        yield Status(Stage.GENERATING, model.name)
        passages, passage_tokens, max_tokens = answer.retrieved, self.settings.answer.passage_tokens, chosen.max_tokens
        if isinstance(model, SizedChatModel):  # the model's context decides; the settings still cap
            budget = model.context_budget(max_passages=len(passages), passage_tokens=passage_tokens)
            passages, passage_tokens = passages[: budget.passages], budget.passage_tokens
            max_tokens = min(max_tokens, budget.answer_tokens)
        messages = build_messages(answer.query, passages, passage_tokens * 4)
        links = LinkGuard(self.own_hosts)  # a document's injected links and images reach nobody's screen live
        temperature = chosen.settings.temperature
        pieces = model.stream(messages, max_tokens=max_tokens, temperature=temperature)
        try:
            for piece in pieces:
                if not stream.pieces:
                    answer.timings["first_token_ms"] = (time.perf_counter() - started) * 1000
                stream.pieces.append(piece)
                shown = links.feed(piece)
                if shown:
                    yield Token(shown)
                if BOUNDARY.search(piece) and (why := repetition(stream.text)):
                    stream.repeating = why
                    break
        finally:  # closing it at once tells the backend to stop generating when we cut it short
            if isinstance(pieces, Generator):
                pieces.close()
        stream.at_cap = not stream.repeating and len(stream.pieces) >= max_tokens * AT_CAP
        rest = links.flush()
        if rest:
            yield Token(rest)

    def _ungrounded(self, text: str, passages: list[str]) -> str | None:
        """Why the answer must be withdrawn, or None: no words at all, or no sentence that follows a passage."""
        if not MARKER_RE.sub("", text).strip():
            return "the model gave no answer"
        floor = self.settings.answer.refuse_ungrounded_below
        grounded = grounding(text, passages, self.corpus.embedder.embed_passages) if floor else None
        if grounded is not None and grounded < floor:
            return f"no sentence of the model's answer follows the passages (best {grounded:.2f}), so it was withdrawn"
        return None

    def _finish(self, answer: Answer, stream: Stream) -> None:
        """Clean markers, decide refusal by the model's verdict, cite and attribute; quote the passages
        instead when the model's answer cannot be used."""
        if stream.repeating:
            self._quote(answer, f"{stream.repeating}, so it was stopped", refuse=True)
            return
        raw = stream.text.strip()
        # Cut by the length cap mid-sentence ("a deductible of $"): keep the sentences it finished.
        text, used = clean_markers(complete_sentences(raw) if stream.at_cap else raw, len(answer.retrieved))
        text = answer.text = defang_links(text, self.own_hosts)
        if self.settings.answer.ask_model_verdict and REFUSAL_RE.search(text) and not used:
            answer.refused, answer.refusal_reason = True, "the model found no answer in the passages"
            return
        embed, passages = self.corpus.embedder.embed_passages, [p.chunk.text for p in answer.retrieved]
        unusable = self._ungrounded(text, passages)
        if unusable:
            self._quote(answer, unusable, refuse=True)
            return
        rules = self.settings.answer
        answer.sentences = attribute_sentences(
            text, passages, embed, rules.attribution_threshold, rules.attribution_anchor_margin
        )
        cited: dict[int, str] = {n: "cited" for n in used}
        for s in answer.sentences:
            if s.status == "attributed":
                cited.setdefault(s.passages[0], "attributed")
        answer.citations = [Citation(n, answer.retrieved[n - 1], kind) for n, kind in cited.items()]

    def _quote(self, answer: Answer, why: str, refuse: bool = False) -> bool:
        """Answer with the passages' sentences that share most words with the question, cited; False when
        none does (then, with ``refuse``, the answer is a refusal for ``why``)."""
        quotes = answer.evidence
        if not quotes:
            if refuse:
                answer.text, answer.refused, answer.refusal_reason = REFUSAL_TEXT, True, why
            return False
        text, answer.sentences = quoted_answer(quotes)
        answer.text = defang_links(text, self.own_hosts)
        answer.quoted = why
        answer.citations = [Citation(n, answer.retrieved[n - 1], "quoted") for n in dict.fromkeys(q.n for q in quotes)]
        return True
