"""HTML for answers, sources and documents, built so that text from documents and models stays inert.

Answers, passages and pages are Markdown (documents are ingested as Markdown, models write
it): ``ui.markdown_html`` renders them with raw HTML escaped and links and images switched
off, so a model's ``![x](http://elsewhere/...)`` is shown as the characters it is and fetches
nothing. Every other piece of text (questions, file names, notes) is escaped with
``html.escape``. The only links we make point at this app (``#src-...`` anchors and ``/view/...``)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape
from typing import Any

from assistant.evidence import Quote
from assistant.stored_answer import MarkedSentence, ShownMessage, ShownSource
from ui.markdown_html import Span, markdown_html

MARKER_RE = re.compile(r"\[(\d{1,3})\]")
SENTENCE_CLASS = {"cited": "s-cited", "attributed": "s-attributed", "unsupported": "s-unsupported",
                  "quoted": "s-cited"}
SENTENCE_TITLE = {
    "cited": "cited by the model",
    "attributed": "not cited by the model, but supported by the marked source",
    "unsupported": "not supported by any source: check before relying on it",
    "quoted": "quoted word for word from the marked source",
}


def text_html(text: str) -> str:
    """Escaped text with line breaks kept."""
    return escape(text).replace("\n", "<br>")


def _markers(escaped: str, anchor: str, valid: set[int]) -> str:
    """Turn [n] markers (of escaped text) into links to source n of this answer."""

    def link(match: re.Match[str]) -> str:
        n = int(match.group(1))
        if n not in valid:
            return match.group(0)
        return f'<a class="cite" href="#src-{anchor}-{n}" data-n="{n}">[{n}]</a>'

    return MARKER_RE.sub(link, escaped)


def answer_html(message: ShownMessage, anchor: str) -> str:
    """An answer from Markdown, with clickable markers and each sentence marked cited, attributed or unsupported."""
    text = message.answer
    valid = {s.n for s in message.sources}
    spans, cursor = [], 0
    for sentence in message.sentences:
        start = text.find(sentence.text, cursor)
        if start < 0:
            continue
        spans.append(_sentence_span(sentence, start, anchor))
        cursor = start + len(sentence.text)
    return markdown_html(text, spans, lambda escaped: _markers(escaped, anchor, valid))


def _sentence_span(sentence: MarkedSentence, start: int, anchor: str) -> Span:
    status = sentence.status
    tag = f'<span class="{SENTENCE_CLASS.get(status, "s-unsupported")}" title="{SENTENCE_TITLE.get(status, "")}">'
    after = ""
    if status == "attributed" and sentence.passages:
        n = sentence.passages[0]
        after = f' <a class="cite attributed" href="#src-{anchor}-{n}" data-n="{n}">≈[{n}]</a>'
    return Span(start, start + len(sentence.text), tag, tag, "</span>", after)


def _searched_html(searched: str | None) -> str:
    """The question as searched: a follow-up made standalone, typos corrected."""
    return f'<div class="note searched">Searched for: {text_html(searched)}</div>' if searched else ""


def _indexing_html(indexing: str | None) -> str:
    """Files searched were still being embedded: say so, as the answer may improve once they are."""
    return f'<div class="note indexing" role="status">Note: {text_html(indexing)}.</div>' if indexing else ""


def message_html(message: ShownMessage, anchor: str) -> str:
    """One question and its answer, with who answered and any refusal or error."""
    notes = [_searched_html(message.searched), _indexing_html(message.indexing)]
    if message.withheld:
        notes.append('<div class="note">Sources withheld: you no longer have access to them.</div>')
    if message.error:
        notes.append(f'<div class="note error">The model failed: {text_html(message.error)}</div>')
    if message.quoted:  # the model wrote nothing usable: the answer is the documents' own sentences
        notes.append(f'<div class="note quoted">The model\'s answer could not be used ({text_html(message.quoted)}):'
                     " these sentences are quoted from the documents.</div>")
    if message.refused and message.refusal_reason:
        notes.append(f'<div class="note">Not answered: {text_html(message.refusal_reason)}</div>')
    cited = len(message.citations)
    meta = f"Answered by {escape(message.backend or 'pending')} · {cited} source{'s' if cited != 1 else ''} cited"
    return _turn_html(message.question, answer_html(message, anchor), support_html(message, anchor),
                      "".join(notes), meta, anchor, rating_html(message.id))


def rating_html(message_id: int) -> str:
    """Thumbs up and down and a comment under an answer; ``ui/static/chat.js`` sends them (icons are CSS masks)."""
    return (
        f'<div class="rate" data-message="{int(message_id)}">'
        '<button type="button" class="thumb up" data-helpful="true" aria-pressed="false" title="Helpful"'
        ' aria-label="Helpful"></button>'
        '<button type="button" class="thumb down" data-helpful="false" aria-pressed="false" title="Not helpful"'
        ' aria-label="Not helpful"></button>'
        '<input type="text" class="rate-comment" maxlength="2000" placeholder="Comment (optional)"'
        ' aria-label="Comment on this answer (optional)"></div>'
    )


def live_html(live: LiveAnswer) -> str:
    """The answer being written: its text so far, with markers linking to the passages already found."""
    valid = {s.n for s in live.sources}  # sentences are checked once the answer is finished
    answer = markdown_html(live.answer, inline=lambda escaped: _markers(escaped, "live", valid))
    status = escape(live.status or "Answering…")  # e.g. "waiting: 3 ahead of you"
    notes = _searched_html(live.searched) + _indexing_html(live.indexing)
    return _turn_html(live.question, answer, evidence_html(live), notes, status, "live")


def evidence_html(live: LiveAnswer) -> str:
    """While the model writes, the passages' sentences that best answer the question, quoted and cited."""
    if not live.evidence:
        return ""
    known = {s.n: s for s in live.sources}
    quotes = [_quote_html(q.n, q.text, known.get(q.n), "live") for q in live.evidence]
    return ('<div class="support evidence"><div class="support-title">From the documents, while the answer is '
            f'written</div>{"".join(quotes)}</div>')


def _quote_html(n: int, sentence: str, source: ShownSource | None, anchor: str) -> str:
    """One quoted sentence of passage ``n``, its [n] linking to the passage, and where it is from."""
    where = (escape(source.file) + (f", page {source.page}" if source.page else "")) if source else ""
    return (f'<blockquote class="support-quote"><a class="cite" href="#src-{anchor}-{n}" data-n="{n}">'
            f'[{n}]</a> {text_html(sentence)} <span class="where">{where}</span></blockquote>')


def _turn_html(question: str, answer: str, support: str, notes: str, meta: str, anchor: str,
               rating: str = "") -> str:
    return (
        f'<div class="turn" id="turn-{anchor}"><div class="question">{text_html(question)}</div>'
        f'<div class="answer">{answer}</div>{support}{notes}<div class="meta">{meta}</div>{rating}</div>'
    )


def support_html(message: ShownMessage, anchor: str) -> str:
    """Under an answer, each cited passage's sentences that back it, quoted, so it can be checked in place."""
    if message.quoted:  # the answer itself is the passages' sentences, quoted and cited
        return ""
    quotes = [_quote_html(source.n, sentence, source, anchor) for source in message.citations
              for sentence in source.support]
    if not quotes:
        return ""
    return f'<div class="support"><div class="support-title">From the documents</div>{"".join(quotes)}</div>'


LEGEND = (
    '<div class="legend"><span class="s-cited">cited</span> · <span class="s-attributed">attributed</span> · '
    '<span class="s-unsupported">unsupported</span> — click a [n] to see its source</div>'
)
EMPTY_TRANSCRIPT = '<div class="transcript empty">Ask a question about your documents.</div>'


def no_documents_html(is_admin: bool) -> str:
    """The empty chat of someone who can read no collection: what to do first."""
    if is_admin:
        hint = ('There are no documents to ask about yet. Add a folder or files on the <a href="/admin/" '
                'class="ingest-link">Admin page, Ingest tab</a>, then grant its collection to a group.')
    else:
        hint = "No documents are shared with you yet: ask your admin to give you access to a collection."
    return f'<div class="transcript empty no-documents" role="note"><p>{hint}</p></div>'


def transcript_html(messages: Sequence[ShownMessage]) -> str:
    """The whole conversation."""
    if not messages:
        return EMPTY_TRANSCRIPT
    return f'<div class="transcript">{"".join(message_html(m, str(m.id)) for m in messages)}{LEGEND}</div>'


def source_html(source: ShownSource, anchor: str) -> str:
    """One passage: file, page, heading, the passage marked in its page, and a link to the page.

    No score: a number like 0.6132 means nothing to a reader (scripts get it from the API);
    the passages come best first, and the first says so.
    """
    where = [f"<b>{escape(source.file)}</b>"]
    if source.page:
        where.append(f"page {source.page}")
    if source.heading:
        where.append(escape(source.heading))
    if source.n == 1:
        where.append('<span class="best">best match</span>')
    kind = source.kind or "retrieved"
    marked = source.marked or source.text
    mark = Span(len(source.before), len(source.before) + len(marked), "<mark>", "<mark>", "</mark>")
    passage = markdown_html(source.before + marked + source.after, [mark])
    return (
        f'<div class="source kind-{escape(kind)}" id="src-{anchor}-{source.n}">'
        f'<div class="source-head"><span class="n">[{source.n}]</span> {" · ".join(where)}'
        f' <span class="kind">{escape(kind)}</span></div>'
        f'<div class="passage">{passage}</div>'
        f'<a class="open-doc" href="/view/chunk/{source.chunk_id}" target="_blank" rel="noopener">'
        "Open document</a></div>"
    )


def _sources_group(question: str, sources: list[ShownSource], anchor: str, opened: bool) -> str:
    items = "".join(source_html(s, anchor) for s in sources)
    if not items:
        return ""
    return (f'<details class="sources-group"{" open" if opened else ""}><summary>Sources for: {text_html(question)}'
            f"</summary>{items}</details>")


def _sources_panel(groups: str) -> str:
    return f'<div class="sources">{groups or "<p>Sources appear here.</p>"}</div>'


def sources_html(messages: Sequence[ShownMessage]) -> str:
    """The sources panel: the passages of every answer, newest answer first (and open)."""
    groups = (_sources_group(m.question, m.sources, str(m.id), n == 0) for n, m in enumerate(reversed(messages)))
    return _sources_panel("".join(groups))


@dataclass
class LiveAnswer:
    """The answer being written, as the page shows it while it streams."""

    question: str
    answer: str = ""
    sources: list[ShownSource] = field(default_factory=list)
    searched: str | None = None
    indexing: str | None = None  # files searched still being embedded (keyword search alone finds them)
    status: str | None = None  # where the question is, e.g. in line for the model; None: it is being answered
    evidence: list[Quote] = field(default_factory=list)  # the passages' best sentences, shown before the answer


class StreamedTranscript:
    """The transcript and sources panel while an answer streams: the finished turns are rendered once.

    Only the answer being written grows token by token, so each update renders it alone and
    joins it to the earlier turns' HTML, made when the stream began.
    """

    def __init__(self, finished: Sequence[ShownMessage]) -> None:
        self._turns = "".join(message_html(m, str(m.id)) for m in finished)
        # While an answer streams its own group comes first, so no finished one is open.
        self._groups = "".join(_sources_group(m.question, m.sources, str(m.id), False) for m in reversed(finished))

    def transcript(self, live: LiveAnswer) -> str:
        """The conversation with the answer being written last."""
        return f'<div class="transcript">{self._turns}{live_html(live)}{LEGEND}</div>'

    def sources(self, live: LiveAnswer) -> str:
        """The sources panel with the passages found for the answer being written first (and open)."""
        return _sources_panel(_sources_group(live.question, live.sources, "live", True) + self._groups)


def page_text_html(text: str, highlight: tuple[int, int] | None) -> str:
    """A page's text rendered from Markdown, with the cited passage marked (the first piece is ``#cited``)."""
    spans = []
    if highlight:
        start, end = max(0, highlight[0]), min(len(text), highlight[1])
        spans.append(Span(start, end, '<mark id="cited">', '<mark class="cited">', "</mark>"))
    return f'<div class="page-text">{markdown_html(text, spans)}</div>'


def table_html(rows: list[dict[str, Any]], columns: list[str]) -> str:
    """A plain table of escaped values."""
    head = "".join(f"<th>{escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{text_html(_cell(row.get(c)))}</td>" for c in columns) + "</tr>" for row in rows
    )
    return f'<table class="grid"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    if hasattr(value, "strftime"):
        return str(value.strftime("%Y-%m-%d %H:%M:%S"))
    return str(value)
