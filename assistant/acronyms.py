"""Acronyms the documents never use, searched as the phrase the documents spell out.

Employees ask "How much PTO do I get?" of a handbook that only ever says "paid time off".
BM25 cannot match "PTO", and the spelling step, which corrects words no document contains,
must never turn an acronym into another word ("PTO" into "TO" lost the answer). So before
the spelling step, each all-capitals word the documents lack is looked up in the passages
that a dense search for the question finds: where a phrase whose initials spell it occurs
there at least ``MIN_OCCURRENCES`` times ("paid time off", "cost of goods sold"), the question
is searched with that phrase in its place, and the question as searched says so. An acronym
with no such phrase is left to the spelling step as before.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable

ACRONYM_RE = re.compile(r"\b([A-Z]{3,6})(s?)\b")  # two letters ("FY", "CT") name too many phrases to guess
SENTENCE_BREAK = re.compile(r"(?<=[.?!])\s+")
WORD_RE = re.compile(r"[A-Za-z][A-Za-z'-]*|&")
# Words a spelled-out phrase may hold without a letter of its own ("earnings before interest and taxes").
FILLERS = frozenset({"and", "&", "of", "the", "for", "to", "in", "on"})
MIN_OCCURRENCES = 2  # one chance match of three initials in a few pages of text is not rare; two are
MAX_EXTRA_WORDS = 2  # filler words a phrase may add beyond one word a letter


def unknown_acronyms(question: str, known: Callable[[str], bool]) -> list[str]:
    """The all-capitals words of ``question`` (3 to 6 letters, plural "s" allowed) no document contains."""
    from storage.bm25 import tokenize

    found: list[str] = []
    for match in ACRONYM_RE.finditer(question):
        word = match.group(1)
        stems = tokenize(word)
        if stems and not all(known(stem) for stem in stems) and word not in found:
            found.append(word)
    return found


def _phrase_at(words: list[str], position: int, letters: str, extra: int = 0) -> list[str] | None:
    """The words from ``position`` whose initials spell ``letters``, fillers allowed between; None if none.

    A filler is first tried as a word between letters ("depreciation and amortization"), then as
    the bearer of its own letter ("cost of goods sold").
    """
    if not letters:
        return []
    if position >= len(words):
        return None
    word = words[position]
    lower = word.lower()
    if lower in FILLERS:
        if extra < MAX_EXTRA_WORDS and (rest := _phrase_at(words, position + 1, letters, extra + 1)) is not None:
            return [lower, *rest]
        if lower[0] == letters[0] and (rest := _phrase_at(words, position + 1, letters[1:], extra)) is not None:
            return [lower, *rest]
        return None
    if lower[0] != letters[0] or len(word) < 2 or word.isupper():  # another acronym is no spelling-out
        return None
    rest = _phrase_at(words, position + 1, letters[1:], extra)
    return None if rest is None else [lower, *rest]


def spelled_out(acronym: str, texts: Iterable[str]) -> str | None:
    """The phrase ``texts`` spell ``acronym`` with most often, when it occurs ``MIN_OCCURRENCES`` times."""
    letters = acronym.lower()
    counts: Counter[str] = Counter()
    for text in texts:
        words = WORD_RE.findall(text)
        for start, word in enumerate(words):
            if word[0].lower() == letters[0] and word.lower() not in FILLERS:
                found = _phrase_at(words, start, letters)
                if found:
                    counts[" ".join(found)] += 1
    if not counts:
        return None
    phrase, seen = counts.most_common(1)[0]
    return phrase if seen >= MIN_OCCURRENCES else None


def expand(
    question: str, known: Callable[[str], bool], passages_for: Callable[[str], list[str]],
    asking: Callable[[str], bool],
) -> str:
    """``question`` with each unknown acronym replaced by the phrase the passages found for it spell out.

    Only acronyms in sentences that ask (``asking``) are expanded: an analyst's question followed by
    "CCC is defined as: DIO + DSO - DPO ... COGS" names its subject in the question, and a generic
    phrase put in for a term of a definition ("cost of goods sold") pulls in every company's filing;
    nor is one the question spells out itself ("free cash flow (FCF)"), which would only repeat it.
    ``passages_for(question)`` returns the texts of the passages a dense search for the question
    finds; it is called only when an asking sentence has an acronym no document contains.
    """
    asked = " ".join(sentence for sentence in SENTENCE_BREAK.split(question) if asking(sentence))
    acronyms = unknown_acronyms(asked, known)
    if not acronyms:
        return question
    texts = passages_for(question)
    spelled = " ".join(WORD_RE.findall(question.lower()))  # "free cash flow (FCF)": the asker spelled it out
    for acronym in acronyms:
        phrase = spelled_out(acronym, texts)
        if phrase and phrase not in spelled:
            question = re.sub(rf"\b{acronym}s?\b", phrase, question)
    return question
