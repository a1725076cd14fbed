"""Citation markers in model output, and attribution of uncited sentences to passages."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

MARKER_RE = re.compile(r"\[\s*(\d{1,3}(?:\s*[,;]\s*\d{1,3})*)\s*\]")
SENTENCE_RE = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])|\n{2,}|\n(?=\s*[-*•]|\s*\d+[.)]\s)")


@dataclass
class SentenceSupport:
    """One answer sentence and what backs it.

    ``status`` is ``cited`` (the model put a valid marker on it), ``attributed`` (no marker,
    but passage ``passages[0]`` supports it above the threshold) or ``unsupported``.
    """

    text: str
    status: str
    passages: list[int]
    support: float | None = None


def clean_markers(text: str, passage_count: int) -> tuple[str, list[int]]:
    """Drop markers that point at no passage; returns the text and valid numbers in order of first use."""

    def keep(match: re.Match[str]) -> str:
        numbers = [int(n) for n in re.split(r"\s*[,;]\s*", match.group(1))]
        valid = [n for n in numbers if 1 <= n <= passage_count]
        return "".join(f"[{n}]" for n in dict.fromkeys(valid))

    cleaned, previous = text, None
    while cleaned != previous:  # dropping "[9]" from "[0[9]]" leaves a new marker "[0]": clean that too
        previous, cleaned = cleaned, MARKER_RE.sub(keep, cleaned)
    cleaned = re.sub(r"[ \t]+([.,;:!?])", r"\1", cleaned)
    return cleaned, markers_in(cleaned)


def split_sentences(text: str) -> list[str]:
    """Answer text cut into sentences (and list items)."""
    return [s.strip() for s in SENTENCE_RE.split(text) if s and s.strip()]


def markers_in(sentence: str) -> list[int]:
    """The passage numbers a sentence cites."""
    found: list[int] = []
    for match in MARKER_RE.finditer(sentence):
        found += [int(n) for n in re.split(r"\s*[,;]\s*", match.group(1))]
    return list(dict.fromkeys(found))


def attribute_sentences(
    answer: str,
    passage_texts: list[str],
    embed: Callable[[list[str]], np.ndarray],
    threshold: float,
) -> list[SentenceSupport]:
    """Classify each sentence as cited, attributed to its best-supporting passage, or unsupported."""
    sentences = split_sentences(answer)
    if not sentences:
        return []
    uncited = [i for i, s in enumerate(sentences) if not markers_in(s)]
    similarity = np.zeros((0, 0))
    if uncited and passage_texts:
        bare = [MARKER_RE.sub("", sentences[i]) for i in uncited]
        vectors = embed(bare + passage_texts)
        similarity = vectors[: len(bare)] @ vectors[len(bare) :].T
    result: list[SentenceSupport] = []
    row = 0
    for _i, sentence in enumerate(sentences):
        cited = markers_in(sentence)
        if cited:
            result.append(SentenceSupport(sentence, "cited", cited))
            continue
        best = int(np.argmax(similarity[row])) if similarity.size else -1
        score = float(similarity[row, best]) if best >= 0 else 0.0
        row += 1
        if best >= 0 and score >= threshold:
            result.append(SentenceSupport(sentence, "attributed", [best + 1], round(score, 3)))
        else:
            result.append(SentenceSupport(sentence, "unsupported", [], round(score, 3)))
    return result


PIECE_BREAK = re.compile(r"(?<=[.!?])\s+|\s*[•▪●◦]\s*|\n\s*\n|\n(?=\s*(?:[-*]|\d+[.)])\s)")
MIN_SENTENCE_CHARS = 16  # shorter pieces ("Yes.", list numbers) say nothing about grounding


def pieces(text: str) -> list[str]:
    """Sentences and list items of a text, whitespace made single, markers and short pieces dropped."""
    found = (" ".join(MARKER_RE.sub("", piece).split()) for piece in PIECE_BREAK.split(text))
    return [piece for piece in found if len(piece) >= MIN_SENTENCE_CHARS]


def grounding(answer: str, passage_texts: list[str], embed: Callable[[list[str]], np.ndarray]) -> float | None:
    """How closely the answer follows the passages: the best cosine between any of its sentences and
    any one passage sentence; None when it has no sentence long enough to tell ("Economy class [1].").

    A model answering from the passages restates at least one of their sentences or list items;
    one answering from elsewhere, or repeating itself, restates none. Single unsupported
    sentences in a grounded answer are flagged by ``attribute_sentences`` instead.
    """
    sentences = pieces(answer)
    evidence = [piece for text in passage_texts for piece in pieces(text)]
    if not sentences or not evidence:
        return None
    vectors = embed(sentences + evidence)
    return float((vectors[: len(sentences)] @ vectors[len(sentences) :].T).max())
