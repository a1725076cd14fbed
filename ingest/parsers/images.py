"""Images (PNG, JPEG, TIFF, BMP, GIF): text by OCR; each page of a multi-page TIFF is a page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ingest.document import Page, ParsedDocument
from ingest.errors import SkipFile
from ingest.parsers.ocr import ocr_image, ocr_unavailable
from ingest.settings import IngestSettings


def parse_image(path: Path, settings: IngestSettings) -> ParsedDocument:
    """OCR every frame; refused with the reason when OCR is off or tesseract is missing."""
    reason = ocr_unavailable(settings)
    if reason:
        raise SkipFile(f"image needs OCR to be read: {reason}")
    texts = [ocr_image(frame, settings) for frame in _frames(path)]
    if len(texts) == 1:
        pages = [Page(None, texts[0])]
    else:
        pages = [Page(number, text) for number, text in enumerate(texts, start=1)]
    return ParsedDocument([p for p in pages if p.text], ocr_used=True)


def _frames(path: Path) -> Iterator[Any]:
    """Decoded frames, one at a time: every page of a TIFF, the first frame of anything else."""
    from PIL import Image, ImageSequence, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            if image.format != "TIFF":
                image.load()
                yield image
                return
            for frame in ImageSequence.Iterator(image):
                yield frame.copy()
    except UnidentifiedImageError as exc:
        raise SkipFile("not a readable image") from exc
    except Image.DecompressionBombError as exc:
        raise SkipFile(f"image too large to decode safely ({exc})") from exc
    except (OSError, SyntaxError, ValueError) as exc:  # Pillow's errors for corrupt or truncated data
        raise SkipFile(f"corrupt or truncated image: {exc}") from exc
