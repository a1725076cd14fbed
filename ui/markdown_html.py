"""Markdown from documents and models rendered as inert HTML, with spans of ours laid over the source text.

markdown-it-py (which Gradio already depends on) parses CommonMark plus tables with raw HTML
off, so ``<script>`` stays the characters it is. Links, images, autolinks and reference
definitions are switched off as well: a model's ``![x](http://elsewhere/...)`` or
``[click](javascript:...)`` is shown as written and fetches or runs nothing; the only links
in what we render are the ones we add ourselves (citation markers).

Spans (a sentence's support class, the cited passage's ``<mark>``) are given as character
ranges of the source. Each is carried through the parser as a pair of private-use
characters and turned into our markup where the text is written out; a span that crosses
a block (a paragraph into a table) is closed at the block's end and reopened in the next,
so the HTML stays well formed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from html import escape
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.token import Token

OPEN, CLOSE = "\ue000", "\ue001"
SENTINEL_RE = re.compile(f"([{OPEN}{CLOSE}])")
# Block syntax at the start of a line that a span must begin after: headings, quotes, list items, table pipes.
LINE_PREFIX_RE = re.compile(r"[ \t]{0,3}(?:#{1,6}[ \t]+|>[ \t]?|[-*+][ \t]+|\d{1,9}[.)][ \t]+|\|[ \t]*)*")
TABLE_RULE_RE = re.compile(r"[ \t]*\|?[ \t]*:?-+:?[ \t]*(?:\|[ \t]*:?-+:?[ \t]*)*\|?[ \t]*")
FENCE_RE = re.compile(r"[ \t]{0,3}(?:`{3,}|~{3,})")


@dataclass(frozen=True)
class Span:
    """Markup of ours around ``text[start:end]``: ``first`` opens it, ``again`` reopens it in a later block."""

    start: int
    end: int
    first: str
    again: str
    close: str
    after: str = ""  # written once, after the span's last piece (e.g. an attribution link)


Inline = Callable[[str], str]


def _plain(escaped: str) -> str:
    return escaped


@cache
def _parser() -> MarkdownIt:
    """CommonMark with tables and strikethrough; no raw HTML, no links or images of any kind."""
    md = MarkdownIt("commonmark", {"html": False, "breaks": True, "linkify": False, "typographer": False})
    md.enable(["table", "strikethrough"])
    md.disable(["image", "link", "autolink", "reference", "html_inline", "html_block"])
    md.add_render_rule("text", _text)
    md.add_render_rule("code_inline", lambda self, tokens, idx, options, env:
                       f"<code>{_written(tokens[idx].content, env)}</code>")
    md.add_render_rule("code_block", _code)
    md.add_render_rule("fence", _code)
    return md


def _text(self: Any, tokens: Sequence[Token], idx: int, options: Any, env: dict[str, Any]) -> str:
    # A line break between two runs of text stays inside an open span, so a passage is one <mark>.
    following = [t.type for t in tokens[idx + 1 : idx + 3]]
    return _written(tokens[idx].content, env, keep_open=following in (["softbreak", "text"], ["hardbreak", "text"]))


def _code(self: Any, tokens: Sequence[Token], idx: int, options: Any, env: dict[str, Any]) -> str:
    return f"<pre><code>{_written(tokens[idx].content, env)}</code></pre>\n"


def _written(content: str, env: dict[str, Any], keep_open: bool = False) -> str:
    """One run of text, escaped, with our spans opened and closed where its sentinels are."""
    spans: list[Span] = env["spans"]
    inline: Inline = env["inline"]
    out = [spans[env["open"]].again] if env["open"] is not None and not env["written_open"] else []
    env["written_open"] = False
    for part in SENTINEL_RE.split(content):
        if part == OPEN:
            env["open"] = env["next"]
            env["next"] += 1
            out.append(spans[env["open"]].first)
        elif part == CLOSE and env["open"] is not None:
            span = spans[env["open"]]
            out.append(span.close + span.after)
            env["open"] = None
        elif part and part != CLOSE:
            out.append(inline(escape(part, quote=False)))
    if env["open"] is not None and keep_open:
        env["written_open"] = True
    elif env["open"] is not None:  # the span goes on in the next run of text: closed here, reopened there
        out.append(spans[env["open"]].close)
    return "".join(out)


def markdown_html(text: str, spans: Sequence[Span] = (), inline: Inline = _plain) -> str:
    """``text`` as HTML from Markdown, with ``spans`` (sorted, not overlapping) marked; ``inline`` edits escaped text.

    Spans that cannot be placed (empty, overlapping an earlier one) are left out.
    """
    text = SENTINEL_RE.sub("", text)
    placed: list[Span] = []
    cuts: list[tuple[int, str]] = []
    cursor = 0
    for span in spans:
        start, end = _start(text, span.start), _end(text, span.end)
        if start < cursor or end <= start:
            continue
        placed.append(span)
        cuts += [(start, OPEN), (end, CLOSE)]
        cursor = end
    marked, last = [], 0
    for at, sentinel in cuts:
        marked += [text[last:at], sentinel]
        last = at
    marked.append(text[last:])
    env: dict[str, Any] = {"spans": placed, "inline": inline, "open": None, "next": 0, "written_open": False}
    return str(_parser().render("".join(marked), env))


def _line(text: str, at: int) -> tuple[int, int]:
    """The start and end of the line that holds position ``at``."""
    start = text.rfind("\n", 0, at) + 1
    end = text.find("\n", at)
    return start, len(text) if end < 0 else end


def _start(text: str, at: int) -> int:
    """Where a span starting at ``at`` may open: after a line's block syntax, never on a table rule or fence line."""
    begin, end = _line(text, at)
    line = text[begin:end]
    if TABLE_RULE_RE.fullmatch(line) or FENCE_RE.match(line):
        return end + 1 if end < len(text) else end
    prefix = LINE_PREFIX_RE.match(line)
    return max(at, begin + (prefix.end() if prefix else 0))


def _end(text: str, at: int) -> int:
    """Where a span ending at ``at`` may close: before trailing spaces and table pipes, never on a rule line."""
    at = min(at, len(text))
    begin, _ = _line(text, max(at - 1, 0))
    if TABLE_RULE_RE.fullmatch(text[begin:_line(text, max(at - 1, 0))[1]]) or FENCE_RE.match(text[begin:at]):
        at = max(begin - 1, 0)
    while at > 0 and text[at - 1] in " \t\n|":
        at -= 1
    return at
