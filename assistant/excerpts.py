"""What of a document an answer shows: context cut at sentence or word boundaries, and the sentences that back it.

A source card shows a passage inside some of its page's text; the page is cut at a number of
characters, which lands mid-word ("mer service team."). ``context_before`` and
``context_after`` move each cut to the nearest sentence boundary inside the window, else to a
word boundary marked with an ellipsis. ``supporting_sentences`` picks the sentences of a cited
passage that an employee would read to check the answer without opening the document.
"""

from __future__ import annotations

import re

from assistant.citations import MARKER_RE
from storage.bm25 import tokenize

ELLIPSIS = "…"
# Where a sentence ends: . ! ? (and a closing quote or bracket) before a space, or a line break.
SENTENCE_END_RE = re.compile(r"[.!?][\"')\]]?(?=\s)|\n")
SENTENCE_SPLIT_RE = re.compile(r"(?<=[.!?])[\"')\]]?\s+|\s*\n\s*\n\s*|\n(?=\s*(?:[-*•▪●]|\d+[.)])\s)")
MIN_SENTENCE_CHARS = 16  # shorter pieces ("Yes.", a list number) back nothing
SUPPORT_CHARS = 320  # a sentence longer than this (a table flattened into one line) is shown cut


def context_before(text: str, start: int, chars: int) -> str:
    """Up to ``chars`` characters of ``text`` before ``start``, beginning at a sentence start or a whole word.

    Cut inside a sentence, the context begins at its first whole word, after an ellipsis; the
    text at ``start`` (the highlighted passage, whose offsets the viewer uses) is never moved.
    """
    cut = max(0, start - chars)
    window = text[cut:start]
    if cut == 0 or text[cut - 1] == "\n":
        return window
    ends = [m.end() for m in SENTENCE_END_RE.finditer(text[cut - 1 : start + 1])]
    sentence = next((e - 1 for e in ends if window[e - 1 :].strip()), None)
    if sentence is not None:
        return window[sentence:].lstrip()
    if not text[cut - 1].isspace():  # the window begins inside a word: drop what is there of it
        space = re.search(r"\s", window)
        window = window[space.end() :] if space else ""
    window = window.lstrip()
    return ELLIPSIS + window if window else ""


def context_after(text: str, end: int, chars: int) -> str:
    """Up to ``chars`` characters of ``text`` after ``end``, ending at a sentence end, else a whole word and "…"."""
    stop = min(len(text), end + chars)
    window = text[end:stop]
    if stop == len(text):
        return window
    ends = [m.end() for m in SENTENCE_END_RE.finditer(text[end : stop + 1]) if m.end() <= len(window)]
    if ends and window[: ends[-1]].strip():
        return window[: ends[-1]].rstrip()
    if not text[stop].isspace():  # the window ends inside a word: drop what is there of it
        space = max(window.rfind(" "), window.rfind("\n"), window.rfind("\t"))
        window = window[:space] if space > 0 else ""
    window = window.rstrip()
    return window + ELLIPSIS if window else ""


def clip(sentence: str, chars: int) -> str:
    """``sentence`` shortened to at most ``chars`` characters at a word boundary, with an ellipsis when cut."""
    if len(sentence) <= chars:
        return sentence
    head = sentence[:chars]
    space = head.rfind(" ")
    return (head[:space] if space > 0 else head).rstrip(" ,;:") + ELLIPSIS


def passage_sentences(text: str) -> list[str]:
    """A passage's sentences and list items, whitespace made single; fragments too short to back anything dropped.

    A passage that begins inside a sentence (chunks overlap) begins with a fragment; it is kept,
    marked with an ellipsis, since it may be the very words the answer quotes.
    """
    found = []
    for number, piece in enumerate(SENTENCE_SPLIT_RE.split(text)):
        piece = " ".join(piece.split())
        if len(piece) < MIN_SENTENCE_CHARS:
            continue
        if number == 0 and piece[0].islower():
            piece = ELLIPSIS + piece
        found.append(piece)
    return found


def supporting_sentences(passage: str, question: str, answer: str, limit: int = 2) -> list[str]:
    """The one or two sentences of a cited passage that best back the answer to the question, in passage order.

    Sentences are taken greedily by the content words (stemmed, stop words out) of the answer and
    of the question they cover that the sentences already taken do not; ties go to the shorter
    sentence. A second sentence is taken only when it backs answer words the first does not, so
    a sentence that merely repeats the question's words is not shown. Nothing is returned when no
    sentence shares a content word with either.

    Args:
        passage: the cited passage's text.
        question: the question as searched (follow-ups made standalone).
        answer: the answer text; its [n] markers are ignored.
        limit: at most this many sentences.

    Returns:
        The sentences, each at most ``SUPPORT_CHARS`` characters (cut at a word, with an ellipsis).
    """
    sentences = passage_sentences(passage)
    said, asked = set(tokenize(MARKER_RE.sub(" ", answer))), set(tokenize(question))
    words = [set(tokenize(sentence)) for sentence in sentences]
    chosen: list[int] = []
    covered: set[str] = set()

    def gain(index: int) -> tuple[int, int]:
        return len((words[index] & said) - covered) + len((words[index] & asked) - covered), -len(sentences[index])

    for _ in range(limit):
        left = [index for index in range(len(sentences)) if index not in chosen]
        best = max(left, key=gain, default=None)
        if best is None or gain(best)[0] == 0 or (chosen and not (words[best] & said) - covered):
            break
        chosen.append(best)
        covered |= words[best] & (said | asked)
    return [clip(sentences[index], SUPPORT_CHARS) for index in sorted(chosen)]
