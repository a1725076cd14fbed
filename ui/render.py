"""HTML for answers, sources and documents, built so that text from documents and models stays inert.

Every piece of text that came from a document, a file name or a model is escaped with
``html.escape`` before any markup of ours is added; the only links we make point at this
app (``#src-...`` anchors and ``/view/...``). No Markdown is interpreted, so a model's
``![x](http://elsewhere/...)`` is shown as the characters it is and fetches nothing.
"""

from __future__ import annotations

import re
from html import escape
from typing import Any

from assistant.jobs import IngestJob

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


def answer_html(message: dict[str, Any], anchor: str) -> str:
    """An answer with clickable markers and each sentence marked cited, attributed or unsupported."""
    text = message.get("answer", "")
    valid = {s["n"] for s in message.get("sources", [])}
    sentences = message.get("sentences") or []
    if not sentences:
        return _markers(text_html(text), anchor, valid)
    parts, cursor = [], 0
    for sentence in sentences:
        start = text.find(sentence["text"], cursor)
        if start < 0:
            continue
        parts.append(_markers(text_html(text[cursor:start]), anchor, valid))
        parts.append(_sentence_html(sentence, anchor, valid))
        cursor = start + len(sentence["text"])
    parts.append(_markers(text_html(text[cursor:]), anchor, valid))
    return "".join(parts)


def _sentence_html(sentence: dict[str, Any], anchor: str, valid: set[int]) -> str:
    status = sentence.get("status", "unsupported")
    body = _markers(text_html(sentence["text"]), anchor, valid)
    if status == "attributed" and sentence.get("passages"):
        n = sentence["passages"][0]
        body += f' <a class="cite attributed" href="#src-{anchor}-{n}" data-n="{n}">≈[{n}]</a>'
    css = SENTENCE_CLASS.get(status, "s-unsupported")
    return f'<span class="{css}" title="{SENTENCE_TITLE.get(status, "")}">{body}</span>'


def message_html(message: dict[str, Any], anchor: str, streaming: bool = False) -> str:
    """One question and its answer, with who answered and any refusal or error."""
    notes = []
    if message.get("searched"):  # the question as searched: a follow-up made standalone, typos corrected
        notes.append(f'<div class="note searched">Searched for: {text_html(message["searched"])}</div>')
    if message.get("withheld"):
        notes.append('<div class="note">Sources withheld: you no longer have access to them.</div>')
    if message.get("error"):
        notes.append(f'<div class="note error">The model failed: {text_html(message["error"])}</div>')
    if message.get("quoted"):  # the model wrote nothing usable: the answer is the documents' own sentences
        notes.append(f'<div class="note quoted">The model\'s answer could not be used ({text_html(message["quoted"])}):'
                     " these sentences are quoted from the documents.</div>")
    if message.get("refused") and message.get("refusal_reason"):
        notes.append(f'<div class="note">Not answered: {text_html(message["refusal_reason"])}</div>')
    cited = len(message.get("citations") or [])
    support = "" if streaming else support_html(message, anchor)
    live_status = escape(message.get("status") or "Answering…")  # e.g. "waiting: 3 ahead of you"
    meta = f"Answered by {escape(message.get('backend') or 'pending')}" if not streaming else live_status
    if not streaming:
        meta += f" · {cited} source{'s' if cited != 1 else ''} cited"
    return (
        f'<div class="turn" id="turn-{anchor}"><div class="question">{text_html(message.get("question", ""))}</div>'
        f'<div class="answer">{answer_html(message, anchor)}</div>{support}{"".join(notes)}'
        f'<div class="meta">{meta}</div></div>'
    )


def support_html(message: dict[str, Any], anchor: str) -> str:
    """Under an answer, each cited passage's sentences that back it, quoted, so it can be checked in place."""
    if message.get("quoted"):  # the answer itself is the passages' sentences, quoted and cited
        return ""
    quotes = []
    for source in message.get("citations") or []:
        n = int(source["n"])
        where = escape(source.get("file") or "") + (f", page {int(source['page'])}" if source.get("page") else "")
        for sentence in source.get("support") or []:
            quotes.append(f'<blockquote class="support-quote"><a class="cite" href="#src-{anchor}-{n}" data-n="{n}">'
                          f'[{n}]</a> {text_html(sentence)} <span class="where">{where}</span></blockquote>')
    if not quotes:
        return ""
    return f'<div class="support"><div class="support-title">From the documents</div>{"".join(quotes)}</div>'


LEGEND = (
    '<div class="legend"><span class="s-cited">cited</span> · <span class="s-attributed">attributed</span> · '
    '<span class="s-unsupported">unsupported</span> — click a [n] to see its source</div>'
)


def transcript_html(messages: list[dict[str, Any]], live: dict[str, Any] | None = None) -> str:
    """The whole conversation, with the answer being written (``live``) last."""
    if not messages and live is None:
        return '<div class="transcript empty">Ask a question about your documents.</div>'
    turns = [message_html(m, str(m["id"])) for m in messages]
    if live is not None:
        turns.append(message_html(live, "live", streaming=True))
    return f'<div class="transcript">{"".join(turns)}{LEGEND}</div>'


def source_html(source: dict[str, Any], anchor: str) -> str:
    """One passage: file, page, heading, the passage marked in its page, and a link to the page.

    No score: a number like 0.6132 means nothing to a reader (scripts get it from the API);
    the passages come best first, and the first says so.
    """
    where = [f"<b>{escape(source.get('file') or '')}</b>"]
    if source.get("page"):
        where.append(f"page {int(source['page'])}")
    if source.get("heading"):
        where.append(escape(source["heading"]))
    if int(source["n"]) == 1:
        where.append('<span class="best">best match</span>')
    kind = source.get("kind") or "retrieved"
    marked = source.get("marked") or source.get("text", "")
    passage = (f'{text_html(source.get("before", ""))}<mark>{text_html(marked)}</mark>'
               f'{text_html(source.get("after", ""))}')
    return (
        f'<div class="source kind-{escape(kind)}" id="src-{anchor}-{int(source["n"])}">'
        f'<div class="source-head"><span class="n">[{int(source["n"])}]</span> {" · ".join(where)}'
        f' <span class="kind">{escape(kind)}</span></div>'
        f'<div class="passage">{passage}</div>'
        f'<a class="open-doc" href="/view/chunk/{int(source["chunk_id"])}" target="_blank" rel="noopener">'
        "Open document</a></div>"
    )


def sources_html(messages: list[dict[str, Any]], live: dict[str, Any] | None = None) -> str:
    """The sources panel: the passages of every answer, newest answer first."""
    groups = []
    entries = ([("live", live)] if live is not None else []) + [(str(m["id"]), m) for m in reversed(messages)]
    for number, (anchor, message) in enumerate(entries):
        items = "".join(source_html(s, anchor) for s in message.get("sources", []))
        if not items:
            continue
        title = text_html(message.get("question", ""))
        opened = " open" if number == 0 else ""
        groups.append(f'<details class="sources-group"{opened}><summary>Sources for: {title}</summary>{items}'
                      "</details>")
    return f'<div class="sources">{"".join(groups) or "<p>Sources appear here.</p>"}</div>'


def page_text_html(text: str, highlight: tuple[int, int] | None) -> str:
    """A page's text with the cited passage marked."""
    if not highlight:
        return f'<div class="page-text">{text_html(text)}</div>'
    start, end = max(0, highlight[0]), min(len(text), highlight[1])
    return (f'<div class="page-text">{text_html(text[:start])}<mark id="cited">{text_html(text[start:end])}</mark>'
            f"{text_html(text[end:])}</div>")


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
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    if hasattr(value, "strftime"):
        return str(value.strftime("%Y-%m-%d %H:%M:%S"))
    return str(value)


def job_html(job: IngestJob) -> str:
    """An ingest job's progress: a bar, the files done so far, and the failures with reasons."""
    percent = 100 if job.state == "done" else int(100 * job.done / job.total) if job.total else 0
    failed = "".join(f"<li><b>{escape(f.path)}</b>: {escape(f.reason)}</li>" for f in job.failures)
    recent = "".join(
        f"<li>{escape(f.path)} — {escape(f.outcome)}" + (f" ({f.chunks} chunks)" if f.chunks else "") + "</li>"
        for f in job.files[-8:]
    )
    summary = ", ".join(f"{k} {v}" for k, v in job.summary.items() if k not in ("failed",))
    error = f'<p class="failed">Failed: {escape(job.error)}</p>' if job.error else ""
    return (
        f'<div class="job" data-state="{escape(job.state)}"><b>Job {int(job.id)}</b> · '
        f'{escape(job.collection)} ← {escape(job.source)} · <span class="state">{escape(job.state)}</span>'
        f' · {job.done}/{job.total} files<div class="bar"><div style="width:{percent}%"></div></div>{error}'
        f'<ul class="files">{recent}</ul>'
        + (f'<p class="failed">Could not ingest {len(job.failures)} file(s):</p><ul class="failures">{failed}</ul>'
           if job.failures else "")
        + (f'<p class="summary">{escape(summary)}</p>' if summary else "")
        + "</div>"
    )
