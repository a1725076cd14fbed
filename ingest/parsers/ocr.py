"""Optical character recognition with the tesseract program, when it is installed and allowed.

tesseract is run directly rather than through pytesseract so that it can be given a
one-thread OpenMP limit: on a small machine its default threading makes it two to
three times slower, worse still when several parser processes run side by side.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
from typing import Any

from ingest.errors import SkipFile
from ingest.settings import IngestSettings

OCR_OFF = "OCR is turned off (ingest.ocr)"
NO_TESSERACT = "tesseract is not installed (install tesseract-ocr to read it)"
MIN_OCR_PIXELS = 32  # tesseract finds nothing in an image narrower or shorter than this


def ocr_unavailable(settings: IngestSettings) -> str | None:
    """Why OCR cannot run, or None when it can."""
    if not settings.ocr:
        return OCR_OFF
    if shutil.which("tesseract") is None:
        return NO_TESSERACT
    return None


def ocr_image(image: Any, settings: IngestSettings) -> str:
    """The text tesseract reads in a PIL image ("" for images too small to hold text)."""
    if min(image.size) < MIN_OCR_PIXELS:
        return ""
    binary = shutil.which("tesseract")
    if binary is None:
        raise SkipFile(NO_TESSERACT)
    png = io.BytesIO()
    _flatten(image).save(png, format="PNG", compress_level=1)
    command = [binary, "stdin", "stdout", "-l", settings.ocr_languages]
    try:
        done = subprocess.run(
            command, input=png.getvalue(), capture_output=True, check=False,
            timeout=settings.parse_timeout_s, env={**os.environ, "OMP_THREAD_LIMIT": "1"},
        )
    except subprocess.TimeoutExpired as exc:
        raise SkipFile(f"OCR of one page took longer than {settings.parse_timeout_s:g} s") from exc
    if done.returncode != 0:
        raise SkipFile(_tesseract_failure(done.stderr.decode("utf-8", "replace"), settings.ocr_languages))
    return done.stdout.decode("utf-8", "replace").replace("\f", "").strip()


def _tesseract_failure(message: str, languages: str) -> str:
    if "Failed loading language" in message or "Error opening data file" in message:
        return f"tesseract has no language data for '{languages}' (install tesseract-ocr-<lang>, ingest.ocr_languages)"
    lines = [line for line in message.splitlines() if line.strip()]
    return f"tesseract failed: {lines[-1] if lines else 'unknown error'}"


def _flatten(image: Any) -> Any:
    """An RGB or greyscale copy; transparent areas become white, not black."""
    from PIL import Image

    if image.mode in ("1", "L", "RGB"):
        return image
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, "white")
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")
