"""Word documents (DOCX): paragraphs and tables in body order under their heading path."""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ingest.document import ParsedDocument
from ingest.errors import SkipFile
from ingest.parsers.pagebuild import HeadingPath, PageBuilder
from ingest.parsers.zipguard import check_office_zip
from ingest.settings import IngestSettings

_HEADING_STYLE = re.compile(r"heading\s*([1-9])$", re.IGNORECASE)
_MAX_STYLE_DEPTH = 4  # custom heading styles are based on a built-in one, a step or two up
# Text boxes are stored twice (DrawingML and a VML fallback); read only the first copy.
_TEXT_BOX_PARAGRAPHS = ".//w:txbxContent[not(ancestor::*[local-name()='Fallback'])]/w:p"


def parse_docx(path: Path, settings: IngestSettings) -> ParsedDocument:
    """One page (Word files carry no reliable page numbers); sections follow the headings."""
    check_office_zip(path, "DOCX", settings.max_unzipped_mb)
    import docx
    from docx.opc.exceptions import PackageNotFoundError
    from docx.table import Table

    try:
        document = docx.Document(str(path))
    except (PackageNotFoundError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise SkipFile(f"not a readable DOCX file: {exc}") from exc
    builder = PageBuilder()
    headings = HeadingPath()
    first_title: str | None = None
    for block in _blocks(document.element.body, document._body):
        if isinstance(block, Table):
            builder.add("\n".join(_table_lines(block)), headings.path)
            continue
        level = _heading_level(block)
        text = block.text
        if level is not None and text.strip():
            headings.enter(level, text)
            first_title = first_title or " ".join(text.split())
        builder.add(text, headings.path)
        for box in block._p.xpath(_TEXT_BOX_PARAGRAPHS):
            builder.add(_paragraph_text(box, block), headings.path)
    title = (document.core_properties.title or "").strip() or first_title
    return ParsedDocument([builder.build()], title=title)


def _blocks(container: Any, parent: Any) -> Iterator[Any]:
    """Paragraphs and tables in document order, including those inside content controls."""
    from docx.oxml.ns import qn
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    for child in container.iterchildren():
        if child.tag == qn("w:p"):
            yield Paragraph(child, parent)
        elif child.tag == qn("w:tbl"):
            yield Table(child, parent)
        elif child.tag == qn("w:sdt"):
            content = child.find(qn("w:sdtContent"))
            if content is not None:
                yield from _blocks(content, parent)


def _heading_level(paragraph: Any) -> int | None:
    """0 for the Title style, N for 'Heading N' or a style based on it, None for body text."""
    style = paragraph.style
    for _ in range(_MAX_STYLE_DEPTH):
        if style is None:
            return None
        name = style.name or ""
        if name.lower() == "title":
            return 0
        match = _HEADING_STYLE.match(name)
        if match:
            return int(match.group(1))
        style = style.base_style
    return None


def _paragraph_text(p_element: Any, parent: Any) -> str:
    from docx.text.paragraph import Paragraph

    return str(Paragraph(p_element, parent).text)


def _table_lines(table: Any) -> list[str]:
    """One line per row, cells joined by ' | '; nested tables follow their row."""
    from docx.table import _Cell

    lines: list[str] = []
    for tr in table._tbl.tr_lst:
        cells: list[str] = []
        nested: list[str] = []
        for tc in tr.tc_lst:
            cell = _Cell(tc, table)
            text = " ".join(cell.text.split())
            if text:
                cells.append(text)
            for inner in cell.tables:
                nested.extend(_table_lines(inner))
        if cells:
            lines.append(" | ".join(cells))
        lines.extend(nested)
    return lines
