"""Document parsers: one module per format behind ``parse_file``.

``parse_file`` checks that a file's bytes match its extension, hands it to the parser
for that format and returns pages of text with heading sections. Anything it cannot
read raises ``SkipFile`` with a one-line reason for the admin; heavy libraries are
imported only when a file of their format is parsed.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

from ingest.document import ParsedDocument
from ingest.errors import SkipFile
from ingest.parsers.eml import parse_eml
from ingest.parsers.html_doc import parse_html
from ingest.parsers.images import parse_image
from ingest.parsers.markdown_doc import parse_markdown
from ingest.parsers.pdf import parse_pdf
from ingest.parsers.plain import parse_text
from ingest.parsers.sheets import parse_csv, parse_xlsx
from ingest.parsers.slides import parse_pptx
from ingest.parsers.sniff import FORMAT_BY_SUFFIX, detect_format
from ingest.parsers.word import parse_docx
from ingest.settings import IngestSettings

__all__ = ["SUPPORTED_SUFFIXES", "parse_file"]

Parser = Callable[[Path, IngestSettings], ParsedDocument]

SUPPORTED_SUFFIXES: frozenset[str] = frozenset(FORMAT_BY_SUFFIX)

_PARSERS: dict[str, Parser] = {
    "pdf": parse_pdf,
    "docx": parse_docx,
    "pptx": parse_pptx,
    "xlsx": parse_xlsx,
    "csv": parse_csv,
    "html": parse_html,
    "markdown": parse_markdown,
    "text": parse_text,
    "eml": parse_eml,
    "image": parse_image,
}


def parse_file(path: Path, settings: IngestSettings) -> ParsedDocument:
    """Read one file into pages of text.

    Args:
        path: The file; its suffix picks the parser, after its content is sniffed.
        settings: OCR and zip-bomb limits.

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
            document = _PARSERS[detect_format(path)](path, settings)
    except (SkipFile, MemoryError):
        raise
    except OSError as exc:
        raise SkipFile(f"cannot read file: {exc.strerror or exc}") from exc
    except Exception as exc:  # a bad file in a batch is skipped with its reason, never fatal
        raise SkipFile(f"could not parse {suffix} file: {type(exc).__name__}: {exc}") from exc
    if not any(page.text.strip() for page in document.pages):
        raise SkipFile("no text found")
    return document
