"""A made-up format for the registry tests, written as docs/extending.md says: one parser module.

A ``.recipe`` file starts with the line ``RECIPE``, then a title line, then the text.
"""

from __future__ import annotations

from pathlib import Path

from ingest.document import Page, ParsedDocument
from ingest.errors import SkipFile
from ingest.settings import IngestSettings

MAGIC = b"RECIPE\n"


def is_recipe(head: bytes) -> bool:
    """Whether a file's first bytes are a recipe."""
    return head.startswith(MAGIC)


def parse_recipe(path: Path, settings: IngestSettings) -> ParsedDocument:
    """One page holding the recipe's text, titled by its second line."""
    lines = path.read_text(encoding="utf-8").splitlines()
    if len(lines) < 3:
        raise SkipFile("recipe has no steps")
    return ParsedDocument([Page(None, "\n".join(lines[2:]))], title=lines[1])
