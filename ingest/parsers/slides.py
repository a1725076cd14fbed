"""PowerPoint decks (PPTX): one page per slide, titled by the slide title, with speaker notes."""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ingest.document import Page, ParsedDocument
from ingest.errors import SkipFile
from ingest.parsers.pagebuild import PageBuilder
from ingest.parsers.zipguard import check_office_zip
from ingest.settings import IngestSettings


def parse_pptx(path: Path, settings: IngestSettings) -> ParsedDocument:
    """Slide N becomes page N: title, text boxes, tables and notes, under the slide title."""
    check_office_zip(path, "PPTX", settings.max_unzipped_mb)
    from pptx import Presentation
    from pptx.exc import PackageNotFoundError

    try:
        deck = Presentation(str(path))
    except (PackageNotFoundError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise SkipFile(f"not a readable PPTX file: {exc}") from exc
    pages = [_slide_page(number, slide) for number, slide in enumerate(deck.slides, start=1)]
    title = (deck.core_properties.title or "").strip()
    return ParsedDocument([p for p in pages if p.text.strip()], title=title or None)


def _slide_page(number: int, slide: Any) -> Page:
    builder = PageBuilder(number)
    title_shape = slide.shapes.title
    title = " ".join(title_shape.text_frame.text.split()) if title_shape is not None else ""
    heading = title or f"Slide {number}"
    if title:
        builder.add(title, heading)
    for shape in _shapes(slide.shapes):
        if title_shape is not None and shape.shape_id == title_shape.shape_id:
            continue
        builder.add(_shape_text(shape), heading)
    if slide.has_notes_slide:
        notes = slide.notes_slide.notes_text_frame
        if notes is not None and notes.text.strip():
            builder.add("Notes: " + notes.text, heading)
    return builder.build()


def _shapes(shapes: Any) -> Iterator[Any]:
    """Every shape, descending into groups, in the slide's stacking order."""
    for shape in shapes:
        if hasattr(shape, "shapes"):  # a group shape
            yield from _shapes(shape.shapes)
        else:
            yield shape


def _shape_text(shape: Any) -> str:
    if shape.has_text_frame:
        return str(shape.text_frame.text)
    if getattr(shape, "has_table", False) and shape.has_table:
        rows = (" | ".join(" ".join(c.text.split()) for c in row.cells if c.text.strip()) for row in shape.table.rows)
        return "\n".join(r for r in rows if r)
    return ""
