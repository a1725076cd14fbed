"""Turn a follow-up question into one that stands alone, using the conversation so far."""

from __future__ import annotations

import re

from assistant.llm.base import ChatMessage

LEAD_IN = re.compile(r"^\s*(and|or|but|also|so|then|what about|how about|and what about|and how about)\b[\s,]*", re.I)
PREPOSITION = re.compile(r"^(for|in|at|on|with|under|about|of|from|to|during)\s+", re.I)
YEAR = re.compile(r"\b(?:FY\s?)?(?:19|20)\d{2}\b")
NAME = re.compile(r"\b[A-Z][\w&.-]*(?:\s+[A-Z][\w&.-]*)*")  # a run of capitalised words: a plan, a company
PRONOUNS = re.compile(r"\b(it|its|they|them|their|that|this|those|these|he|she|there)\b", re.I)


def looks_like_followup(question: str) -> bool:
    """Short, starts with a lead-in like "and what about", or leans on a pronoun."""
    words = question.split()
    return bool(LEAD_IN.match(question)) or len(words) <= 4 or (bool(PRONOUNS.search(question)) and len(words) <= 9)


def standalone_question(question: str, history: list[ChatMessage]) -> str:
    """The question with the previous question's context folded in when it is a follow-up.

    A small local model rewrites poorly, so this is deterministic: the previous user
    question supplies the subject, the follow-up supplies what changed.
    """
    previous = [m["content"] for m in history if m.get("role") == "user"]
    if not previous or not looks_like_followup(question):
        return question
    rest = LEAD_IN.sub("", question).strip().rstrip("?").strip()
    if not rest:
        return previous[-1]
    return swapped(previous[-1], rest) or f"{previous[-1].strip().rstrip('?')}: {rest}?"


def swapped(previous: str, rest: str) -> str | None:
    """The previous question with the name or year the follow-up gives in place of its own.

    "What is the deductible for Northwind Health Plus?" then "And for Northwind Standard?" asks
    "What is the deductible for Northwind Standard?"; "... in 2018?" then "and in 2019?" the same.
    None when the follow-up is no bare name or year, or the previous question has none to replace.
    """
    core = PREPOSITION.sub("", rest).strip()
    if YEAR.fullmatch(core):
        found = list(YEAR.finditer(previous))
    elif NAME.fullmatch(core):
        first = re.match(r"\s*\S+", previous)
        found = list(NAME.finditer(previous, first.end() if first else 0))  # past the capital of "What"
        shared = [m for m in found if set(m.group(0).lower().split()) & set(core.lower().split())]
        found = shared or found
    else:
        return None
    if len(found) != 1:
        return None
    span = found[0]
    return f"{previous[: span.start()]}{core}{previous[span.end():]}"
