"""The cited passage marked on the picture of its PDF page, where the reader looks first.

The stored page text is pdfium's text of the page, cleaned. To find the passage on the page
again, both are compared without whitespace (line breaks and spaces are where the two
differ), which gives pdfium's own character indexes; their boxes, merged line by line, are
painted as translucent marks. A passage that is not in the page's text layer (an OCRed
scan, a changed file) is not marked: the page is shown as it is, and the text beside it
still carries the highlight.
"""

from __future__ import annotations

from typing import Any

from ingest.parsers.pdf import DROPPED_CHARS

MARK_FILL = (255, 214, 0, 96)  # translucent yellow, as a highlighter
MARK_EDGE = (214, 158, 0, 200)


def passage_char_indexes(textpage: Any, passage: str) -> list[int]:
    """pdfium's indexes of the passage's visible characters on the page, or [] when it is not there."""
    import pypdfium2.raw as pdfium_c

    wanted = "".join(ch for ch in passage if not ch.isspace() and ch not in DROPPED_CHARS)
    if not wanted:
        return []
    visible: list[str] = []
    where: list[int] = []
    for index in range(textpage.count_chars()):
        ch = chr(pdfium_c.FPDFText_GetUnicode(textpage.raw, index) or 32)
        if not ch.isspace() and ch not in DROPPED_CHARS:
            visible.append(ch)
            where.append(index)
    start = "".join(visible).find(wanted)
    return where[start : start + len(wanted)] if start >= 0 else []


def line_boxes(boxes: list[tuple[float, float, float, float]]) -> list[tuple[float, float, float, float]]:
    """Character boxes (left, bottom, right, top, in PDF points) merged into one box per line."""
    lines: list[list[float]] = []
    for left, bottom, right, top in boxes:
        if right <= left or top <= bottom:
            continue  # generated or invisible characters have no area
        line = lines[-1] if lines else None
        middle = (top + bottom) / 2
        if line and line[1] <= middle <= line[3] and left >= line[0] - 1:
            line[:] = [min(line[0], left), min(line[1], bottom), max(line[2], right), max(line[3], top)]
        else:
            lines.append([left, bottom, right, top])
    return [(a, b, c, d) for a, b, c, d in lines]


def mark_passage(page: Any, image: Any, passage: str, scale: float) -> tuple[Any, int]:
    """The page's image (rendered at ``scale``) with the passage's lines painted on; and how many lines.

    Character boxes are in the upright page's space. On a page turned by its /Rotate entry,
    the marks are drawn upright and turned with it, so they land where the picture shows the text.
    """
    from PIL import Image, ImageDraw

    rotation = page.get_rotation() % 360
    textpage = page.get_textpage()
    try:
        boxes = line_boxes([textpage.get_charbox(i) for i in passage_char_indexes(textpage, passage)])
    finally:
        textpage.close()
    if not boxes:
        return image, 0
    left0, _, _, top0 = page.get_bbox()  # the visible area, in the same page space as the boxes
    width, height = image.size
    overlay = Image.new("RGBA", (height, width) if rotation in (90, 270) else (width, height), (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    pad = 1.5
    for left, bottom, right, top in boxes:
        draw.rectangle(
            [(left - left0 - pad) * scale, (top0 - top - pad) * scale,
             (right - left0 + pad) * scale, (top0 - bottom + pad) * scale],
            fill=MARK_FILL, outline=MARK_EDGE,
        )
    if rotation:  # /Rotate turns the page clockwise; PIL's ROTATE_n turns counter-clockwise
        turn = {90: Image.Transpose.ROTATE_270, 180: Image.Transpose.ROTATE_180, 270: Image.Transpose.ROTATE_90}
        overlay = overlay.transpose(turn[rotation])
    return Image.alpha_composite(image.convert("RGBA"), overlay), len(boxes)
