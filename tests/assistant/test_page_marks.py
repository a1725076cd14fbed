"""The cited passage painted on the picture of its PDF page (real pdfium, real PDFs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from assistant.page_marks import mark_passage

SCALE = 1.5
TOP = "Travel policy overview. " * 8
BOTTOM = ("Employees fly economy class on flights under six hours, and business class on longer flights when a "
          "director agrees in writing before the trip is booked.")


@pytest.fixture
def page(tmp_path: Path) -> Any:
    import pypdfium2 as pdfium
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("helvetica", size=12)
    pdf.add_page()
    pdf.multi_cell(0, 8, TOP)
    pdf.set_y(200)  # the passage sits low on the page
    pdf.multi_cell(0, 8, BOTTOM)
    pdf.output(str(tmp_path / "travel.pdf"))
    document = pdfium.PdfDocument(str(tmp_path / "travel.pdf"))
    yield document[0]
    document.close()


def _marked_rows(image: Any) -> np.ndarray:
    """Rows of the picture that carry highlighter yellow (strong red and green, weak blue)."""
    pixels = np.asarray(image.convert("RGB")).astype(int)
    yellow = (pixels[..., 0] > 200) & (pixels[..., 1] > 180) & (pixels[..., 2] < 150)
    return np.flatnonzero(yellow.any(axis=1))


def test_the_passage_is_marked_where_it_stands_on_the_page(page: Any) -> None:
    plain = page.render(scale=SCALE).to_pil()
    passage = "business class on longer flights when a\ndirector agrees"  # line breaks as the stored text has them
    marked, lines = mark_passage(page, plain, passage, SCALE)
    assert lines == 2, "a passage over two lines is marked on both"
    rows = _marked_rows(marked)
    assert len(_marked_rows(plain)) == 0 and len(rows) > 0
    height = plain.size[1]
    assert rows.min() > height * 0.5, "the mark is on the lower half, where the passage is, not on the title lines"
    assert rows.max() < height * 0.75


def test_a_passage_the_text_layer_lacks_leaves_the_page_unmarked(page: Any) -> None:
    plain = page.render(scale=SCALE).to_pil()
    marked, lines = mark_passage(page, plain, "Employees fly first class to every destination", SCALE)
    assert lines == 0 and len(_marked_rows(marked)) == 0


def _yellow_box(image: Any) -> tuple[int, int, int, int]:
    """Left, top, right, bottom of the highlighter yellow on the picture."""
    pixels = np.asarray(image.convert("RGB")).astype(int)
    rows, columns = np.nonzero((pixels[..., 0] > 200) & (pixels[..., 1] > 180) & (pixels[..., 2] < 150))
    return int(columns.min()), int(rows.min()), int(columns.max()), int(rows.max())


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_on_a_rotated_page_the_mark_turns_with_the_text(page: Any, tmp_path: Path, rotation: int) -> None:
    import pypdfium2 as pdfium

    passage = "fly economy class on flights under six hours"  # one line: pdfium orders a turned page's lines anew
    upright, _ = mark_passage(page, page.render(scale=SCALE).to_pil(), passage, SCALE)
    document = pdfium.PdfDocument(str(tmp_path / "travel.pdf"))
    document[0].set_rotation(rotation)
    document.save(str(tmp_path / "turned.pdf"))
    document.close()
    turned_pdf = pdfium.PdfDocument(str(tmp_path / "turned.pdf"))
    try:
        turned = turned_pdf[0]
        assert turned.get_rotation() == rotation
        plain = turned.render(scale=SCALE).to_pil()
        marked, lines = mark_passage(turned, plain, passage, SCALE)
    finally:
        turned_pdf.close()
    assert lines == 1
    assert marked.size == plain.size, "the picture keeps the rotated page's shape"
    expected = _yellow_box(upright.rotate(-rotation, expand=True))  # the upright mark, turned clockwise like the page
    got = _yellow_box(marked)
    assert all(abs(a - b) <= 2 for a, b in zip(expected, got, strict=True)), (
        f"the mark sits where the rotated picture shows the passage: {got}, expected {expected}")
