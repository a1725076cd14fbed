"""The answer when the model's answer cannot be used: the passages' own sentences that answer the question, quoted.

Retrieval found the passages and the evidence checks let the question through, so the
documents very likely hold the answer; a model that wrote nothing, looped, strayed from the
passages or failed must not turn that into "I could not find this". The sentences of the top
passages that share the most words with the question are quoted instead, each cited to its
passage (on contoso-hr, three such sentences scored token F1 0.38, the packaged
Gemma 3 270M's own answers 0.34).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass

from assistant.citations import MARKER_RE, SentenceSupport
from assistant.retrieval import Passage
from storage.bm25 import tokenize

QUOTED_HEADING = "Quoted from the documents:"
MOST_QUOTES = 3
FROM_TOP = 3  # passages read for quotes: the best-ranked ones
MIN_QUOTE_WORDS = 5  # shorter pieces are headings ("Routine eye exams") and list numbers, which answer nothing
PASSAGE_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+|\s*[•▪●◦]\s*")


@dataclass(frozen=True)
class Quote:
    """A sentence of passage ``n`` (numbered from 1, as the sources are) quoted as it stands."""

    text: str
    n: int

    @property
    def line(self) -> str:
        """The quote as the answer shows it: in quotation marks, then its citation."""
        return f"\u201c{self.text}\u201d [{self.n}]"


def passage_sentences(text: str) -> list[str]:
    """A passage's sentences and list items of five words or more, without heading marks, bullets or markers."""
    found = []
    for piece in PASSAGE_SENTENCE.split(text):
        piece = " ".join(MARKER_RE.sub("", piece).split()).lstrip("#>*-+ ").strip()
        if len(piece.split()) >= MIN_QUOTE_WORDS:
            found.append(piece)
    return found


def quote_evidence(question: str, passages: list[Passage]) -> list[Quote]:
    """Up to three sentences of the top passages that share the most content words with the question, best first.

    A shared word counts for more the fewer of these sentences hold it ("dental" over "plan").
    After the best sentence, a sentence is quoted only when it brings a question word the quotes
    so far lack and scores at least half the best: "The vision plan covers ..." adds nothing to
    "The dental plan covers ..." for a question about the dental plan. None is returned when no
    sentence shares a word at all (the passages do not answer it).
    """
    wanted = set(tokenize(question))
    candidates = [(n, position, sentence, wanted & set(tokenize(sentence)))
                  for n, passage in enumerate(passages[:FROM_TOP], 1)
                  for position, sentence in enumerate(passage_sentences(passage.chunk.text))]
    held = Counter(word for *_, shared in candidates for word in shared)
    weight = {word: math.log(1 + len(candidates) / count) for word, count in held.items()}
    scored = sorted(((-sum(weight[w] for w in shared), n, position, sentence, shared)
                     for n, position, sentence, shared in candidates if shared), key=lambda c: c[:3])
    if not scored:
        return []
    quotes: dict[str, Quote] = {}
    covered: set[str] = set()
    for negative, n, _, sentence, shared in scored:
        if len(quotes) == MOST_QUOTES or negative > scored[0][0] / 2:
            break
        if sentence.lower() not in quotes and not shared <= covered:
            quotes[sentence.lower()] = Quote(sentence, n)
            covered |= shared
    return list(quotes.values())


def quoted_answer(quotes: list[Quote]) -> tuple[str, list[SentenceSupport]]:
    """The answer text quoting ``quotes``, and its sentences, each ``quoted`` from its passage."""
    lines = [quote.line for quote in quotes]
    sentences = [SentenceSupport(line, "quoted", [quote.n], 1.0) for line, quote in zip(lines, quotes, strict=True)]
    return "\n".join([QUOTED_HEADING, *lines]), sentences
