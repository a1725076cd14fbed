"""Per-question fusion: how far to trust the BM25 ranking, and which documents a question names.

Nothing here is tuned to one corpus. Both signals come from the question and the index:

- **Lexical coverage**: the share of the question's words, weighted by their rarity (IDF), that
  the best BM25 passage contains. A short question whose words a passage holds is a good lexical
  match; a long question with instructions around it ("Answer using the cash flow statement ...")
  or one asked in another language than the documents is not, and then the dense ranking carries it.
- **Named documents**: a question that names a company, product, year or plan by the words of a
  file's name ("FY2018 capital expenditure for 3M" and ``3M_2018_10K.pdf``) is steered to that
  file, each shared word weighted by its rarity in the corpus, so a word every chunk has ("health"
  in a health plan's files) steers nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from functools import lru_cache
from pathlib import PurePosixPath

from storage.bm25 import TOKEN_RE, idf, tokenize

# Letters and digits run together in names and questions ("FY2018", "2023Q4"): their parts count too.
_ALNUM_PART = re.compile(r"[^\W\d_]{2,}|\d{2,}")
_SUFFIX = re.compile(r"\.[A-Za-z0-9]{1,5}$")

TermCounts = Callable[[list[str]], tuple[int, list[int]]]
"""Given tokenized terms: the number of chunks searched, and the chunks each term occurs in."""


def identity_terms(text: str) -> frozenset[str]:
    """The tokenized words of a name or question, with the letter and digit runs of mixed words."""
    words = TOKEN_RE.findall(text)
    parts = [part for word in words if not word.isalpha() and not word.isdigit() for part in _ALNUM_PART.findall(word)]
    return frozenset(tokenize(" ".join([*words, *parts])))


@lru_cache(maxsize=4096)
def name_terms(path: str) -> frozenset[str]:
    """The identity words of a file's name, without its folder and extension."""
    return identity_terms(_SUFFIX.sub("", PurePosixPath(path).name).replace("_", " ").replace("-", " "))


def lexical_coverage(question_terms: list[str], passage_terms: set[str], term_counts: TermCounts) -> float:
    """The IDF-weighted share of the question's indexed words that a passage contains (0 to 1)."""
    chunks, counts = term_counts(question_terms)
    weights = {t: float(idf(chunks, c)) for t, c in zip(question_terms, counts, strict=True) if c > 0}
    total = sum(weights.values())
    return sum(w for t, w in weights.items() if t in passage_terms) / total if total else 0.0


def named_documents(question: str, files: Iterable[str], term_counts: TermCounts) -> dict[str, float]:
    """Files whose name shares rare words with the question, scored 0 to 1 (1 for the best named).

    Each shared word counts by its IDF over the chunks searched, so a company's name in a filing
    (found only in that filing's chunks) steers strongly and a word of every chunk hardly at all.
    """
    asked = identity_terms(question)
    shared = {f: sorted(asked & name_terms(f)) for f in files}
    terms = sorted({t for ts in shared.values() for t in ts})
    if not terms:
        return {}
    chunks, counts = term_counts(terms)
    weight = {t: float(idf(chunks, c)) for t, c in zip(terms, counts, strict=True)}
    scores = {f: sum(weight[t] for t in ts) for f, ts in shared.items() if ts}
    best = max(scores.values())
    return {f: s / best for f, s in scores.items()}
