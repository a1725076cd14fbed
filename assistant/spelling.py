"""Misspelt question words corrected to words the documents use, before retrieval.

Users type "Wht servises does Northwind Helth cover?". BM25 matches exact word stems and the
embedding model sees unfamiliar word pieces, so both miss such words. A word is corrected
only when no readable document contains it and it is no English word either (SymSpell's
frequency dictionary, shipped inside the package), and only to a word within two edits that
the documents contain, or to a stop word ("Wht" to "What"). Real words the documents lack
("postnatal") stay as typed, so the refusal check still sees them.
"""

from __future__ import annotations

import functools
import importlib.resources
import re
import threading
from collections.abc import Callable

from symspellpy import SymSpell, Verbosity

from assistant.errors import ConfigError
from storage.bm25 import STOPWORDS, tokenize

WORD_RE = re.compile(r"[^\W\d_]+")
MAX_EDITS = 2
SHORT_WORD = 4  # words this short get one edit at most: two edits turn "abc" into too many words
_LOADING = threading.Lock()


@functools.cache
def _load_dictionary() -> SymSpell:
    speller = SymSpell(max_dictionary_edit_distance=MAX_EDITS)
    words = importlib.resources.files("symspellpy") / "frequency_dictionary_en_82_765.txt"
    if not speller.load_dictionary(str(words), term_index=0, count_index=1, encoding="utf-8"):
        raise ConfigError(f"symspellpy's English dictionary is missing ({words}): reinstall symspellpy")
    return speller


def dictionary() -> SymSpell:
    """The English dictionary, loaded once per process (about 2 s) on the first word that needs it."""
    with _LOADING:
        return _load_dictionary()


def _in_documents(word: str, known: Callable[[str], bool]) -> bool:
    stems = tokenize(word)
    return bool(stems) and all(known(stem) for stem in stems)


def _same_case(typed: str, word: str) -> str:
    if len(typed) > 1 and typed.isupper():
        return word.upper()
    return word.capitalize() if typed[0].isupper() else word


def correct_word(word: str, known: Callable[[str], bool]) -> str:
    """``word``, or the likeliest word within two edits that the documents contain when it is misspelt."""
    lower = word.lower()
    if len(lower) < 3 or lower in STOPWORDS or _in_documents(lower, known):
        return word
    speller = dictionary()
    if lower in speller.words:
        return word
    edits = 1 if len(lower) <= SHORT_WORD else MAX_EDITS
    for suggestion in speller.lookup(lower, Verbosity.ALL, max_edit_distance=edits):  # nearest, then commonest
        if suggestion.term in STOPWORDS or _in_documents(suggestion.term, known):
            return _same_case(word, suggestion.term)
    return word


def correct(question: str, known: Callable[[str], bool]) -> str:
    """``question`` with its misspelt words corrected; ``known`` says whether a stem is in a readable document."""
    return WORD_RE.sub(lambda match: correct_word(match.group(0), known), question)
