"""Document parsers: one module per format, listed in ``formats.FORMATS``, behind ``parse_file``.

``parse_file`` checks that a file's bytes match its extension, hands it to the parser
for that format and returns pages of text with heading sections. Anything it cannot
read raises ``SkipFile`` with a one-line reason for the admin; heavy libraries are
imported only when a file of their format is parsed.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from ingest.document import ParsedDocument
from ingest.errors import SkipFile
from ingest.parsers.formats import FORMATS, FormatRegistry, FormatSpec
from ingest.settings import IngestSettings

__all__ = ["FORMATS", "SUPPORTED_SUFFIXES", "FormatRegistry", "FormatSpec", "parse_file"]

SUPPORTED_SUFFIXES: frozenset[str] = FORMATS.suffixes
"""The suffixes of the built-in formats."""


def parse_file(path: Path, settings: IngestSettings, formats: FormatRegistry = FORMATS) -> ParsedDocument:
    """Read one file into pages of text.

    Args:
        path: The file; its suffix picks the parser, after its content is sniffed.
        settings: OCR and zip-bomb limits.
        formats: The formats that may be read.

    Returns:
        The pages, title and whether OCR was used; at least one page has text.

    Raises:
        SkipFile: The file cannot be read; the message says why in one line.
        MemoryError: Left to the caller, which reports it as a likely decompression bomb.
    """
    suffix = path.suffix.lower() or "(no extension)"
    try:
        # Library warnings about quirks of one file (odd styles, unknown extensions) are noise here.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            document = formats.detect(path).parse(path, settings)
    except (SkipFile, MemoryError):
        raise
    except OSError as exc:
        raise SkipFile(f"cannot read file: {exc.strerror or exc}") from exc
    except Exception as exc:  # a bad file in a batch is skipped with its reason, never fatal
        raise SkipFile(f"could not parse {suffix} file: {type(exc).__name__}: {exc}") from exc
    if not any(page.text.strip() for page in document.pages):
        raise SkipFile("no text found")
    return document
