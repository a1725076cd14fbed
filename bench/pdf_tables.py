"""PDF page text with tables kept whole (pdfplumber), as measured for issue 19 and not kept.

Text lines and table rows in layout order, each table value after its column header
("Net income | 2018: 5,363 | 2017: 4,869"). A statement drawn as shaded rows is found by
pdfplumber as one table a row: tables of the same width close together are joined and their rows
re-read between the column edges, so the unshaded rows come back too.

How it was measured: in a copy of the tree, `ingest/parsers/pdf.py`'s `parse_pdf` took
`page_texts(path)` in place of pdfium's text for every page that is not scanned, then the set was
ingested and evaluated (`run.py eval --retrieve-only`); see docs/benchmarks.md, issue 19.
Needs `pip install pdfplumber` (not a dependency).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

HEADER_REACH = 40.0  # points above a table searched for its column headers when it has none of its own
MERGE_GAP = 20.0  # tables this close, with the same width, are one table drawn as shaded rows


def _cell(value: Any) -> str:
    return " ".join(str(value or "").split())


def _merged(tables: list[Any]) -> list[dict[str, Any]]:
    """Vertically adjacent tables of the same width joined: (bbox, rows, column x-ranges)."""
    out: list[dict[str, Any]] = []
    for t in sorted(tables, key=lambda t: t.bbox[1]):
        rows = t.extract()
        cols = [(c.bbox[0], c.bbox[2]) if c.bbox else None for c in t.columns]
        prev = out[-1] if out else None
        if prev and abs(prev["bbox"][0] - t.bbox[0]) < 2 and abs(prev["bbox"][2] - t.bbox[2]) < 2 \
                and t.bbox[1] - prev["bbox"][3] < MERGE_GAP and len(cols) == len(prev["cols"]):
            prev["rows"] += rows
            prev["bbox"] = (prev["bbox"][0], prev["bbox"][1], prev["bbox"][2], t.bbox[3])
        else:
            out.append({"bbox": t.bbox, "rows": rows, "cols": cols})
    return out


def _headers_above(page: Any, table: dict[str, Any]) -> list[str]:
    """Words just above the table, each put under the column its centre falls in."""
    x0, top, x1, _ = table["bbox"]
    area = (max(x0, 0), max(top - HEADER_REACH, 0), min(x1, page.width), max(top, 1))
    if area[3] <= area[1]:
        return []
    words = page.crop(area).extract_words()
    heads = ["" for _ in table["cols"]]
    for w in words:
        centre = (w["x0"] + w["x1"]) / 2
        for j, span in enumerate(table["cols"]):
            if j and span and span[0] - 3 <= centre <= span[1] + 3:
                heads[j] = f"{heads[j]} {w['text']}".strip()
    return heads if any(heads) else []


def table_text(rows: list[list[Any]], above: list[str]) -> tuple[str, int]:
    """A table's rows, one a line, each value after its column header ('Net income | 2018: 5,349')."""
    width = max((len(r) for r in rows), default=0)
    cells = [[_cell(r[j]) if j < len(r) else "" for j in range(width)] for r in rows]
    split = 0
    while split < len(cells) and not (cells[split][0] and any(cells[split][1:])):
        split += 1
    if split == len(cells):
        split = 0
    head_rows = cells[:split]
    headers = [" ".join(h[j] for h in head_rows if h[j]) for j in range(width)]
    if not any(headers[1:]) and above:
        headers = [above[j] if j < len(above) else "" for j in range(width)]
    lines = [" ".join(c for c in row if c) for row in head_rows]
    for row in cells[split:]:
        parts = [row[0]] if row[0] else []
        parts += [f"{headers[j]}: {row[j]}" if headers[j] else row[j] for j in range(1, width) if row[j]]
        lines.append(" | ".join(parts))
    return "\n".join(line for line in lines if line), sum(1 for h in headers if h)


def page_text(page: Any) -> str:
    tables = _merged(page.find_tables())
    boxes = [t["bbox"] for t in tables]

    def outside(obj: dict[str, Any]) -> bool:
        x = (obj.get("x0", 0) + obj.get("x1", 0)) / 2
        y = (obj.get("top", 0) + obj.get("bottom", 0)) / 2
        return not any(b[0] <= x <= b[2] and b[1] <= y <= b[3] for b in boxes)

    blocks = [(line["top"], line["text"]) for line in page.filter(outside).extract_text_lines()]
    for t in tables:
        edges = sorted({round(x, 1) for c in t["cols"] if c for x in c})
        rows = page.crop(t["bbox"]).extract_table(
            {"vertical_strategy": "explicit", "explicit_vertical_lines": edges, "horizontal_strategy": "text"}
        ) or t["rows"]
        rows = [[None if _cell(c) in ("$", "%") else c for c in r] for r in rows]
        blocks.append((t["bbox"][1], table_text(rows, _headers_above(page, t))[0]))
    blocks.sort(key=lambda b: b[0])
    return "\n".join(text for _, text in blocks if text)


def page_texts(path: Path) -> list[str]:
    """Every page's text: lines outside tables and table rows, ordered top to bottom."""
    import pdfplumber

    texts: list[str] = []
    with pdfplumber.open(str(path)) as pdf:
        for page in pdf.pages:
            try:
                texts.append(page_text(page))
            finally:
                page.close()
    return texts
