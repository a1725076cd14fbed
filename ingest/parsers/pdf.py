"""PDF files via pdfium: the text of each page, and OCR for pages that are only a scanned image."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ingest.document import Page, ParsedDocument
from ingest.errors import SkipFile
from ingest.parsers.ocr import ocr_image, ocr_unavailable
from ingest.settings import IngestSettings

# A page with fewer visible characters than this and an image on it is treated as scanned.
MIN_TEXT_CHARS = 20
OCR_DPI = 300
MAX_RENDER_PIXELS = 6000  # longest side of a rendered page, so huge page sizes stay in memory
_TOOL_PREFIX = re.compile(r"^Microsoft (?:Word|PowerPoint|Excel) - ", re.IGNORECASE)
DROPPED_CHARS = ("\x00", "\ufffe", "\x02")  # NULs and the marks pdfium leaves for soft hyphens
_FILE_SUFFIX = re.compile(r"\.(?:docx?|pptx?|xlsx?|pdf|jpe?g|png|tiff?|txt|rtf|odt)$", re.IGNORECASE)


def parse_pdf(path: Path, settings: IngestSettings) -> ParsedDocument:
    """One Page per PDF page, numbered from 1; scanned pages are OCRed when tesseract is there."""
    pdf = _open(path)
    try:
        texts, scanned = _page_texts(pdf)
        ocr_used = False
        if scanned:
            reason = ocr_unavailable(settings)
            if reason is None:
                for index in scanned:
                    texts[index] = ocr_image(_render(pdf[index]), settings) or texts[index]
                ocr_used = True
            elif not any(t.strip() for t in texts):
                raise SkipFile(f"scanned PDF with no text layer: {reason}")
        title = _useful_title(str(pdf.get_metadata_dict().get("Title") or ""))
    finally:
        pdf.close()
    pages = [Page(number, text) for number, text in enumerate(texts, start=1) if text.strip()]
    return ParsedDocument(pages, title=title, ocr_used=ocr_used, flowing=True)


def _useful_title(title: str) -> str | None:
    """The metadata title, without the file names and 'untitled' that tools leave there."""
    title = _TOOL_PREFIX.sub("", " ".join(title.split()))
    title = _FILE_SUFFIX.sub("", title)
    return None if title.lower() in ("", "untitled", "title") else title


def _open(path: Path) -> Any:
    """Open with the empty user password pdfium tries by itself; map its errors to reasons."""
    import pypdfium2 as pdfium
    import pypdfium2.raw as pdfium_c

    try:
        return pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError as exc:
        code = getattr(exc, "err_code", None)
        if code == pdfium_c.FPDF_ERR_PASSWORD:
            raise SkipFile("password-protected PDF") from exc
        if code == pdfium_c.FPDF_ERR_FORMAT:
            raise SkipFile("corrupt or truncated PDF (pdfium cannot read its structure)") from exc
        if code == pdfium_c.FPDF_ERR_SECURITY:
            raise SkipFile("PDF uses an unsupported encryption scheme") from exc
        raise SkipFile(f"PDF cannot be opened: {exc}") from exc


def _page_texts(pdf: Any) -> tuple[list[str], list[int]]:
    """The text layer of every page, and the indexes of pages that look scanned."""
    import pypdfium2.raw as pdfium_c

    texts: list[str] = []
    scanned: list[int] = []
    for index in range(len(pdf)):
        page = pdf[index]
        try:
            textpage = page.get_textpage()
            text = _clean(textpage.get_text_bounded())
            textpage.close()
            if len("".join(text.split())) < MIN_TEXT_CHARS and any(
                True for _ in page.get_objects(filter=(pdfium_c.FPDF_PAGEOBJ_IMAGE,))
            ):
                scanned.append(index)
        finally:
            page.close()
        texts.append(text)
    return texts, scanned


def _clean(text: str) -> str:
    """pdfium's CRLF line ends to LF; drop NULs and the marks it leaves for soft hyphens."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    for mark in DROPPED_CHARS:
        text = text.replace(mark, "")
    return text


def _render(page: Any) -> Any:
    """The page as a PIL image at OCR resolution (capped for very large pages)."""
    width, height = page.get_size()
    scale = min(OCR_DPI / 72, MAX_RENDER_PIXELS / max(width, height, 1))
    try:
        return page.render(scale=scale, may_draw_forms=False).to_pil()
    finally:
        page.close()
