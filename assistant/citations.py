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
    but passage ``passages[0]`` supports it above the threshold, or a copy of it is cited),
    ``quoted`` (the sentence is passage ``passages[0]``'s own, quoted when the model's answer
    could not be used) or ``unsupported``.
    """

    text: str
    status: str
    passages: list[int]
    support: float | None = None


LINE_START_MARKER = re.compile(r"^([ \t]*(?:[-*•][ \t]*)?)\[\s*(\d{1,3})\s*\][ \t]*(?=\S)", re.M)


def unnumber_lists(text: str) -> str:
    """Turn a list the model numbered "[1] ... [2] ... [3]" (or bulleted "[1] ... [1] ...") into a plain list.

    A marker that opens a line and is followed by text precedes a claim instead of following
    one; when two or more lines open that way and their numbers run 1, 2, 3 or repeat one
    number, they are the model's list numbers, not citations of passages 1, 2 and 3. A single
    opening marker ("[2] • Two cleanings • Crowns") still names the passage the list is from.
    """
    found = list(LINE_START_MARKER.finditer(text))
    numbers = [int(m.group(2)) for m in found]
    if len(numbers) < 2:
        return text
    if numbers == list(range(1, len(numbers) + 1)):
        return LINE_START_MARKER.sub(lambda m: f"{m.group(1)}{m.group(2)}. ", text)
    if len(set(numbers)) == 1:
        return LINE_START_MARKER.sub(lambda m: m.group(1) or "- ", text)
    return text


def clean_markers(text: str, passage_count: int) -> tuple[str, list[int]]:
    """Drop list numbers and markers that point at no passage; returns the text and the valid numbers
    in order of first use."""

    def keep(match: re.Match[str]) -> str:
        numbers = [int(n) for n in re.split(r"\s*[,;]\s*", match.group(1))]
        valid = [n for n in numbers if 1 <= n <= passage_count]
        return "".join(f"[{n}]" for n in dict.fromkeys(valid))

    cleaned, previous = unnumber_lists(text), None
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


def plain(text: str) -> str:
    """Text as compared for copying: markers dropped, lower case, words only."""
    return " ".join(re.findall(r"\w+", MARKER_RE.sub("", text).lower()))


def attribute_sentences(
    answer: str,
    passage_texts: list[str],
    embed: Callable[[list[str]], np.ndarray],
    threshold: float,
    anchor_margin: float = 0.0,
) -> list[SentenceSupport]:
    """Classify each sentence as cited, attributed to its best-supporting passage, or unsupported.

    A sentence copied word for word from a passage is attributed to it outright; others are
    compared with each passage and each of its sentences (a long passage's own vector is a blend
    of all it says). Identical sentences get one verdict: the first citation any copy carries,
    else one support score, computed once. With ``anchor_margin``, the sentences go to the one
    passage that supports them best together unless another supports a sentence better by more
    than the margin (see ``_support``).
    """
    sentences = split_sentences(answer)
    cited_as: dict[str, list[int]] = {}
    for sentence in sentences:
        if markers_in(sentence):
            cited_as.setdefault(plain(sentence), markers_in(sentence))
    uncited = list(dict.fromkeys(plain(s) for s in sentences if plain(s) not in cited_as and plain(s)))
    support = _support(uncited, passage_texts, embed, anchor_margin)
    result: list[SentenceSupport] = []
    for sentence in sentences:
        key = plain(sentence)
        if markers_in(sentence):
            result.append(SentenceSupport(sentence, "cited", markers_in(sentence)))
        elif key in cited_as:
            result.append(SentenceSupport(sentence, "attributed", cited_as[key], 1.0))
        else:
            best, score = support.get(key, (-1, 0.0))
            if best >= 0 and score >= threshold:
                result.append(SentenceSupport(sentence, "attributed", [best + 1], round(score, 3)))
            else:
                result.append(SentenceSupport(sentence, "unsupported", [], round(score, 3)))
    return result


def _support(
    sentences: list[str], passage_texts: list[str], embed: Callable[[list[str]], np.ndarray], anchor_margin: float
) -> dict[str, tuple[int, float]]:
    """For each (plain) sentence: the index of the passage that supports it, and how well (1.0: copied).

    The passage is the sentence's best, or, with ``anchor_margin``, the answer's anchor: the
    passage with the best mean support over all the sentences (the earlier-ranked on a tie),
    wherever the sentence's support from it is within the margin of its best. An answer's
    sentences mostly restate one section, and neighbouring pages that repeat a phrase would
    otherwise each take a sentence; measured on contoso-hr's reference answers, this cites the
    labelled page 0.72 of the time against 0.57 for each sentence's best (docs/benchmarks.md).
    """
    passages = [plain(text) for text in passage_texts]
    found: dict[str, tuple[int, float]] = {}
    for sentence in sentences:
        copied = [i for i, text in enumerate(passages)
                  if len(sentence) >= MIN_SENTENCE_CHARS and f" {sentence} " in f" {text} "]
        if copied:
            found[sentence] = (copied[0], 1.0)
    rest = [s for s in sentences if s not in found]
    if not rest or not passage_texts:
        return found
    owners = [(i, piece) for i, text in enumerate(passage_texts) for piece in [text, *pieces(text)]]
    vectors = embed(rest + [piece for _, piece in owners])
    similarity = vectors[: len(rest)] @ vectors[len(rest) :].T
    per_passage = np.full((len(rest), len(passage_texts)), -1.0)
    for column, (i, _) in enumerate(owners):
        per_passage[:, i] = np.maximum(per_passage[:, i], similarity[:, column])
    anchor = int(np.argmax(per_passage.mean(axis=0)))
    for row, sentence in enumerate(rest):
        scores = per_passage[row]
        best = int(np.argmax(scores))
        if anchor_margin > 0 and scores[anchor] >= scores[best] - anchor_margin:
            best = anchor
        found[sentence] = (best, float(scores[best]))
    return found


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
