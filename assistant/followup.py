"""Turn a follow-up question into one that stands alone, using the conversation so far."""

from __future__ import annotations

import re

from assistant.llm.base import ChatMessage

LEAD_IN = re.compile(r"^\s*(and|or|but|also|so|then|what about|how about|and what about|and how about)\b[\s,]*", re.I)
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
    return f"{previous[-1].strip().rstrip('?')}: {rest}?" if rest else previous[-1]
