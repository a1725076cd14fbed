"""Spreadsheets (XLSX) and delimited text (CSV, TSV): each row with its column names."""

from __future__ import annotations

import csv
import datetime as dt
import io
import zipfile
from collections.abc import Callable, Iterable, Sequence
from itertools import islice
from pathlib import Path
from typing import Any

from ingest.document import Page, ParsedDocument
from ingest.errors import SkipFile
from ingest.parsers.encoding import decode_text
from ingest.parsers.pagebuild import PageBuilder
from ingest.parsers.zipguard import check_office_zip
from ingest.settings import IngestSettings

ColumnLabel = Callable[[int], str]
_SNIFF_CHARS = 64 * 1024
_HEADER_SEARCH_ROWS = 10


def parse_xlsx(path: Path, settings: IngestSettings) -> ParsedDocument:
    """One page; one section per worksheet, rows as ``Row 5: Name: Alice; Dept: HR``."""
    check_office_zip(path, "XLSX", settings.max_unzipped_mb)
    from openpyxl import load_workbook
    from openpyxl.utils import get_column_letter
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except (InvalidFileException, KeyError, zipfile.BadZipFile) as exc:
        raise SkipFile(f"not a readable XLSX file: {exc}") from exc
    builder = PageBuilder()
    try:
        for sheet in workbook.worksheets:
            sheet.reset_dimensions()  # stored dimensions are often wrong; read to the real end
            add_rows(builder, sheet.iter_rows(values_only=True), sheet.title, lambda i: get_column_letter(i + 1))
        title = workbook.properties.title
    finally:
        workbook.close()
    return ParsedDocument([builder.build()], title=title or None)


def parse_csv(path: Path, settings: IngestSettings) -> ParsedDocument:
    """One page of rows with header context; the delimiter is sniffed (tab for .tsv)."""
    text = decode_text(path.read_bytes())
    return ParsedDocument([csv_page(text, tab_separated=path.suffix.lower() == ".tsv")])


def csv_page(text: str, tab_separated: bool = False, heading: str = "") -> Page:
    """Rows of delimited ``text`` rendered with their column names."""
    dialect = csv.excel_tab if tab_separated else _sniff_dialect(text)
    builder = PageBuilder()
    try:
        add_rows(builder, csv.reader(io.StringIO(text, newline=""), dialect), heading, lambda i: f"Column {i + 1}")
    except csv.Error as exc:
        raise SkipFile(f"malformed CSV: {exc}") from exc
    return builder.build()


def _sniff_dialect(text: str) -> type[csv.Dialect] | csv.Dialect:
    sample = text[:_SNIFF_CHARS]
    if len(text) > _SNIFF_CHARS and "\n" in sample:
        sample = sample[: sample.rindex("\n")]
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|")
    except csv.Error:
        return csv.excel  # one column, or no consistent delimiter


def add_rows(builder: PageBuilder, rows: Iterable[Sequence[Any]], heading: str, label: ColumnLabel) -> None:
    """Add each non-empty row as a block, ``Row N: column: value; ...``.

    The header is found among the first rows; lines above it (titles, notes) are kept as text.
    """
    numbered = ((n, [cell_text(v) for v in row], row) for n, row in enumerate(rows, start=1))
    nonempty = ((n, values, row) for n, values, row in numbered if any(values))
    head = list(islice(nonempty, _HEADER_SEARCH_ROWS))
    header_at = _header_index([(values, row) for _, values, row in head])
    header: list[str] = []
    for i, (number, values, _) in enumerate(head):
        if header_at is not None and i < header_at:
            builder.add(" | ".join(v for v in values if v), heading)
        elif i == header_at:
            header = values
            builder.add("Columns: " + " | ".join(v for v in values if v), heading)
        else:
            builder.add(_row_line(number, values, header, label), heading)
    for number, values, _ in nonempty:
        builder.add(_row_line(number, values, header, label), heading)


def _header_index(rows: list[tuple[list[str], Sequence[Any]]]) -> int | None:
    """Which of the first rows names the columns, or None when the table has no header row.

    Above the first row holding a number, the widest text-only row (the first on a tie)
    is the header; in an all-text table it is the first row with two or more cells.
    """
    numeric = (i for i, (_, row) in enumerate(rows) if any(_is_number(v) for v in row if cell_text(v)))
    first_numeric = next(numeric, None)
    if first_numeric is not None:
        widths = [sum(1 for v in values if v) for values, _ in rows[:first_numeric]]
        return max(range(len(widths)), key=lambda i: (widths[i], -i)) if widths else None
    return next((i for i, (values, _) in enumerate(rows) if sum(1 for v in values if v) >= 2), 0 if rows else None)


def _row_line(number: int, values: list[str], header: list[str], label: ColumnLabel) -> str:
    pairs = (f"{_column(header, i, label)}: {v}" for i, v in enumerate(values) if v)
    return f"Row {number}: " + "; ".join(pairs)


def _column(header: list[str], index: int, label: ColumnLabel) -> str:
    return header[index] if index < len(header) and header[index] else label(index)


def cell_text(value: Any) -> str:
    """A cell value as a user would read it: 3 not 3.0, dates without midnight times."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(sep=" ")
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    return " ".join(str(value).split())


def _is_number(value: Any) -> bool:
    if isinstance(value, (int, float, dt.date, dt.time)):
        return True
    try:
        float(str(value).replace(",", ""))
    except ValueError:
        return False
    return True
