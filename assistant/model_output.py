"""Checks on the text a model writes, cheap enough to run on the stream: repetition and cut-off endings."""

from __future__ import annotations

import re
from difflib import SequenceMatcher

from assistant.citations import MARKER_RE, split_sentences

NEAR_SAME = 0.85  # word-sequence similarity above which two sentences say the same thing
PATTERN_RUN = 4  # sentences opening with the same words before a list counts as one pattern repeated
PATTERN_WORDS = 4
SENTENCE_END = re.compile(r"[.!?][\"')\]]*(?:\s*\[[\d,; ]+\])*\s*$")
LAST_BOUNDARY = re.compile(r"[.!?][\"')\]]*(?:\s*\[[\d,; ]+\])*(?=\s)|\n")


def _words(sentence: str) -> list[str]:
    return re.findall(r"\w+", MARKER_RE.sub("", sentence).lower())


def finished_sentences(text: str) -> list[str]:
    """The sentences of ``text`` that are complete: all but a last one still being written."""
    sentences = split_sentences(text)
    if sentences and not SENTENCE_END.search(text) and not text.endswith("\n"):
        sentences.pop()
    return sentences


def repetition(text: str) -> str | None:
    """Why ``text`` is degenerate, or None: a sentence said again (or nearly), or one opening repeated.

    A model that loops ("X does not cover eye exams." eighteen times) or fills a list with one
    template from unrelated passages has stopped answering; nothing after that point helps.
    """
    seen: list[list[str]] = []
    openings: dict[tuple[str, ...], int] = {}
    for sentence in finished_sentences(text):
        words = _words(sentence)
        if len(words) < 3:
            continue
        for earlier in seen:
            if earlier == words or (len(words) >= 5 and SequenceMatcher(None, earlier, words).ratio() >= NEAR_SAME):
                return "the model repeated itself"
        seen.append(words)
        if len(words) > PATTERN_WORDS:
            opening = tuple(words[:PATTERN_WORDS])
            openings[opening] = openings.get(opening, 0) + 1
            if openings[opening] >= PATTERN_RUN:
                return "the model repeated one sentence pattern"
    return None


def complete_sentences(text: str) -> str:
    """``text`` up to the end of its last complete sentence (or list item); all of it when it ends one."""
    text = text.rstrip()
    if not text or SENTENCE_END.search(text):
        return text
    ends = [m.end() for m in LAST_BOUNDARY.finditer(text)]
    return text[: ends[-1]].rstrip() if ends else ""
