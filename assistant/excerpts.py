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
# Where a sentence ends: . ! ? (and a closing quote or bracket) before a space, a blank line, or the line
# before a list item. A single line break is not one: PDF text breaks its lines inside sentences.
SENTENCE_END_RE = re.compile(r"[.!?][\"')\]]?(?=\s)|\n[ \t\r]*\n|\n(?=[ \t]*(?:[-*•▪●]|\d+[.)])\s)")
SPACE_RE = re.compile(r"\s")
SENTENCE_SPLIT_RE = re.compile(r"(?<=[.!?])[\"')\]]?\s+|\s*\n\s*\n\s*|\n(?=\s*(?:[-*•▪●]|\d+[.)])\s)")
MIN_SENTENCE_CHARS = 16  # shorter pieces ("Yes.", a list number) back nothing
SUPPORT_CHARS = 320  # a sentence longer than this (a table flattened into one line) is shown cut


def context_before(text: str, start: int, chars: int) -> str:
    """Up to ``chars`` characters of ``text`` before ``start``, beginning at a sentence start or a whole word.

    Cut inside a sentence, the context begins at its first whole word, after an ellipsis; the
    text at ``start`` (the highlighted passage, whose offsets the viewer uses) is never moved.
    """
    cut = max(0, start - chars)
    if cut == 0:
        return text[:start]
    ends = (match.end() for match in SENTENCE_END_RE.finditer(text, max(0, cut - 2), start + 1))
    sentence = next((end for end in ends if end >= cut and text[end:start].strip()), None)
    if sentence is not None:
        return text[sentence:start].lstrip()
    if not text[cut - 1].isspace():  # the window begins inside a word: drop what is there of it
        space = SPACE_RE.search(text, cut, start)
        cut = space.end() if space else start
    rest = text[cut:start].lstrip()
    return ELLIPSIS + rest if rest else ""


def context_after(text: str, end: int, chars: int) -> str:
    """Up to ``chars`` characters of ``text`` after ``end``, ending at a sentence end, else a whole word and "…"."""
    stop = min(len(text), end + chars)
    if stop == len(text):
        return text[end:]
    ends = [match.end() for match in SENTENCE_END_RE.finditer(text, end, stop + 1) if match.end() <= stop]
    sentence = next((last for last in reversed(ends) if text[end:last].strip()), None)
    if sentence is not None:
        return text[end:sentence].rstrip()
    if not text[stop].isspace():  # the window ends inside a word: drop what is there of it
        stop = max(end, *(text.rfind(space, end, stop) for space in " \n\t"))
    shown = text[end:stop].rstrip()
    return shown + ELLIPSIS if shown.strip() else ""


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
