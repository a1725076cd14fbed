"""Markdown: the text as written, cut into Sections at ATX and setext headings."""

from __future__ import annotations

from pathlib import Path

from ingest.document import Page, ParsedDocument, Section
from ingest.parsers.encoding import decode_text
from ingest.parsers.pagebuild import HEADING_SEPARATOR, HeadingPath
from ingest.settings import IngestSettings


def parse_markdown(path: Path, settings: IngestSettings) -> ParsedDocument:
    """One page holding the Markdown source; sections follow its headings."""
    text = decode_text(path.read_bytes())
    page = markdown_page(text)
    title = next((s.heading for s in page.sections if s.heading), None)
    return ParsedDocument([page], title=title.split(HEADING_SEPARATOR)[0] if title else None)


def markdown_page(text: str, number: int | None = None) -> Page:
    """A page of Markdown text with one Section per heading, under its heading path."""
    headings = _headings(text)
    if not headings:
        return Page(number, text)
    line_starts = _line_starts(text)
    sections: list[Section] = []
    first = line_starts[headings[0][0]]
    if text[:first].strip():
        sections.append(Section("", 0, first))
    path = HeadingPath()
    for i, (line, level, title) in enumerate(headings):
        start = line_starts[line]
        end = line_starts[headings[i + 1][0]] if i + 1 < len(headings) else len(text)
        sections.append(Section(path.enter(level, title), start, end))
    return Page(number, text, sections)


def _headings(text: str) -> list[tuple[int, int, str]]:
    """(first line, level, title) of each heading; headings in code blocks do not count."""
    from markdown_it import MarkdownIt

    tokens = MarkdownIt("commonmark").parse(text)
    skip_lines = _front_matter_lines(text)
    found: list[tuple[int, int, str]] = []
    for i, token in enumerate(tokens):
        if token.type == "heading_open" and token.map is not None and token.map[0] >= skip_lines:
            title = tokens[i + 1].content if i + 1 < len(tokens) else ""
            found.append((token.map[0], int(token.tag[1:]), title))
    return found


def _front_matter_lines(text: str) -> int:
    """Lines taken by a leading YAML front matter block (``---`` ... ``---``), else 0."""
    if not text.startswith("---\n"):
        return 0
    end = text.find("\n---\n", 3)
    return text.count("\n", 0, end) + 2 if end >= 0 else 0


def _line_starts(text: str) -> list[int]:
    """Offset of the start of each line; lines end at ``\\n`` only, as in markdown-it."""
    starts = [0]
    at = text.find("\n")
    while at >= 0:
        starts.append(at + 1)
        at = text.find("\n", at + 1)
    return starts
