"""Plain text files in any common encoding."""

from __future__ import annotations

from pathlib import Path

from ingest.document import Page, ParsedDocument
from ingest.parsers.encoding import decode_text
from ingest.settings import IngestSettings


def parse_text(path: Path, settings: IngestSettings) -> ParsedDocument:
    """One page holding the decoded text; binary content is refused."""
    return ParsedDocument([Page(None, decode_text(path.read_bytes()))])
