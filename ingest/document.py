"""What a parser hands to the chunker: pages of text with their heading sections."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Section:
    """A run of page text under one heading path, as offsets into ``Page.text``."""

    heading: str
    start: int
    end: int


@dataclass
class Page:
    """One page, slide, sheet or message part.

    ``number`` is the 1-based page or slide number a user would cite, or ``None`` for
    formats without pages (Markdown, plain text, HTML). ``sections`` cover the text in
    order; an empty list means the whole page sits under no heading.
    """

    number: int | None
    text: str
    sections: list[Section] = field(default_factory=list)

    def iter_sections(self) -> list[Section]:
        """The sections of this page, or one headless section covering all of it."""
        return self.sections or [Section("", 0, len(self.text))]


@dataclass
class ParsedDocument:
    """The text of one file, ready for chunking."""

    pages: list[Page]
    title: str | None = None
    ocr_used: bool = False
    flowing: bool = False
    """Text runs on from one page to the next (PDF), so chunks may cross a page break."""

    @property
    def char_count(self) -> int:
        """Characters of text across all pages."""
        return sum(len(p.text) for p in self.pages)
