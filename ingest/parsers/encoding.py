"""Turn the bytes of a text file into str, whatever common encoding it was saved in."""

from __future__ import annotations

import codecs
import re

from ingest.errors import SkipFile

# Longest BOMs first: the UTF-32-LE BOM starts with the UTF-16-LE one.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
# C0 controls other than tab, newline, vertical tab, form feed, carriage return and escape.
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1a\x1c-\x1f]")
_MAX_CONTROL_RATIO = 0.01
_CP1252_TOLERANCE = 0.1  # extra 'chaos' (charset-normalizer's oddness score) allowed to cp1252


def decode_text(data: bytes, declared: str | None = None) -> str:
    """Decode ``data`` by BOM, then a declared charset, then UTF-8, then detection.

    Line endings become ``\\n``. Raises SkipFile when the bytes are not text.
    """
    text = _decode(data, declared)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    sample = text[:200_000]
    if sample and len(_CONTROL.findall(sample)) > _MAX_CONTROL_RATIO * len(sample):
        raise SkipFile("content is binary, not text")
    return text


def _decode(data: bytes, declared: str | None) -> str:
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return data[len(bom) :].decode(encoding, errors="replace")
    if declared and _known_codec(declared):
        try:
            return data.decode(declared)
        except UnicodeDecodeError:
            pass  # the declaration is wrong; fall through to UTF-8 and detection
    if b"\x00" not in data[:4096]:  # NULs are valid UTF-8 but mean UTF-16/32 or binary
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            pass  # not UTF-8: detect the legacy encoding below
    return _detect(data)


def _detect(data: bytes) -> str:
    from charset_normalizer import from_bytes
    from charset_normalizer.utils import is_multi_byte_encoding

    best = from_bytes(data).best()
    if best is None:
        raise SkipFile("content is binary, not text")
    # Short Western text fits several single-byte code pages (cp850, cp1250, Mac Roman...)
    # about equally well; Windows-1252 is by far the likeliest of them in an office.
    if best.encoding != "cp1252" and not is_multi_byte_encoding(best.encoding):
        western = from_bytes(data, cp_isolation=["cp1252"]).best()
        if western is not None and western.chaos <= best.chaos + _CP1252_TOLERANCE:
            return str(western)
    return str(best)


def _known_codec(name: str) -> bool:
    try:
        codecs.lookup(name)
    except LookupError:
        return False
    return True
