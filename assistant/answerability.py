"""Decide before generation whether the documents can answer a question at all.

Two cheap signals settle the clear cases without calling the model: the best dense
score (nothing related was found), and key question terms that appear in no document
of the readable collections (the question is about something the corpus never names,
e.g. a plan tier that does not exist). Typos are forgiven: a term one edit away from an
indexed term counts as present. Everything else goes to the model, whose own "I don't
know" is the last check.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable
from dataclasses import dataclass, field

from assistant.retrieval import Passage
from assistant.settings import AnswerSettings
from storage.bm25 import tokenize

LETTERS = string.ascii_lowercase + string.digits


@dataclass
class Verdict:
    """``refuse`` is decided here; ``reason`` says why, for the user and for eval."""

    refuse: bool
    reason: str
    top_dense: float = 0.0
    missing_terms: list[str] = field(default_factory=list)


def _one_edit(word: str) -> set[str]:
    splits = [(word[:i], word[i:]) for i in range(len(word) + 1)]
    deletes = {a + b[1:] for a, b in splits if b}
    swaps = {a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1}
    replaces = {a + c + b[1:] for a, b in splits if b for c in LETTERS}
    inserts = {a + c + b for a, b in splits for c in LETTERS}
    return deletes | swaps | replaces | inserts


def key_terms(question: str) -> list[str]:
    """Names in the question: capitalised words past the first (a plan tier, a state, a product).

    Only these are checked for absence; ordinary words are phrased many ways and a missing
    one says little about whether the documents answer the question.
    """
    words = re.findall(r"[^\W_]+", question)
    names = [w for w in words[1:] if w[0].isupper() and w != "I"]
    return list(dict.fromkeys(t for w in names for t in tokenize(w)))


def missing_terms(question: str, known: Callable[[str], bool]) -> list[str]:
    """Key terms of the question (stemmed) that no readable document contains, typos forgiven."""
    missing = []
    for term in key_terms(question):
        if known(term) or term.isdigit():
            continue
        if len(term) >= 5 and any(known(v) for v in _one_edit(term)):
            continue
        missing.append(term)
    return missing


def judge(
    question: str, passages: list[Passage], known: Callable[[str], bool], settings: AnswerSettings
) -> Verdict:
    """Refuse early where the evidence is clear; otherwise leave the decision to the model."""
    top = max((p.dense for p in passages if p.dense is not None), default=0.0)
    if not passages:
        return Verdict(True, "no passage was found in the collections you can read", top)
    if top < settings.refuse_below_dense:
        return Verdict(True, f"no passage is close enough to the question (best {top:.2f})", top)
    if settings.refuse_missing_terms:
        absent = missing_terms(question, known)
        if absent:
            return Verdict(True, f"the documents never mention: {', '.join(absent)}", top, absent)
    return Verdict(False, "passages found", top)
