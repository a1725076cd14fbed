"""Assemble page text block by block while recording which heading path each block sits under."""

from __future__ import annotations

from ingest.document import Page, Section

HEADING_SEPARATOR = " > "
BLOCK_SEPARATOR = "\n\n"


class HeadingPath:
    """The chain of open headings, e.g. ``Benefits > Dental``, updated as headings are met."""

    def __init__(self) -> None:
        self._stack: list[tuple[int, str]] = []

    def enter(self, level: int, title: str) -> str:
        """Close headings at ``level`` or deeper, open ``title`` and return the new path."""
        while self._stack and self._stack[-1][0] >= level:
            self._stack.pop()
        title = " ".join(title.split())
        if title:
            self._stack.append((level, title))
        return self.path

    @property
    def path(self) -> str:
        """The current heading path, or "" before the first heading."""
        return HEADING_SEPARATOR.join(title for _, title in self._stack)


class PageBuilder:
    """Joins text blocks with blank lines; consecutive blocks under one heading form one Section."""

    def __init__(self, number: int | None = None) -> None:
        self.number = number
        self._parts: list[str] = []
        self._length = 0
        self._sections: list[Section] = []

    def add(self, text: str, heading: str = "") -> None:
        """Append a block of text (blank blocks are dropped) under ``heading``."""
        text = text.strip("\n")
        if not text.strip():
            return
        if self._parts:
            self._parts.append(BLOCK_SEPARATOR)
            self._length += len(BLOCK_SEPARATOR)
        start = self._length
        self._parts.append(text)
        self._length += len(text)
        if self._sections and self._sections[-1].heading == heading:
            self._sections[-1] = Section(heading, self._sections[-1].start, self._length)
        else:
            self._sections.append(Section(heading, start, self._length))

    def build(self) -> Page:
        """The page; a page whose only section has no heading gets no sections."""
        sections = list(self._sections)
        if len(sections) == 1 and not sections[0].heading:
            sections = []
        return Page(self.number, "".join(self._parts), sections)
