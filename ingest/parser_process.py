"""What runs in parser processes: parse one file and cut it into chunks.

Parsers run in child processes so that one file cannot hang or crash the batch: the
parent kills a process that overruns the time limit, and a memory cap turns a
decompression bomb into a clean failure instead of an exhausted machine.
"""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ingest.chunker import chunk_document
from ingest.errors import SkipFile
from ingest.offline import enforce_offline
from ingest.settings import IngestSettings
from storage.documents import ChunkDraft

if TYPE_CHECKING:
    from ingest.parsers import FormatRegistry


@dataclass
class PreparedFile:
    """A parsed and chunked file, ready for embedding."""

    pages: list[tuple[int | None, str]]
    chunks: list[ChunkDraft]
    title: str | None
    ocr_used: bool


PARSER_NICENESS = 5  # added to a parser process's nice value: a question's work goes first on busy cores


def init_parser_process(memory_limit_mb: int) -> None:
    """Runs once in each parser process: offline mode, a lower CPU priority and an address-space cap."""
    enforce_offline()
    os.nice(PARSER_NICENESS)
    if memory_limit_mb > 0:
        limit = memory_limit_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def prepare_file(path: Path, settings: IngestSettings, tokenizer: str, formats: FormatRegistry) -> PreparedFile:
    """Parse and chunk one file (``tokenizer`` as ``chunk_document`` takes it); raises SkipFile when unreadable."""
    from ingest.parsers import parse_file

    doc = parse_file(path, settings, formats)
    chunks = chunk_document(doc, tokenizer, settings.chunk_tokens, settings.chunk_overlap)
    if not chunks:
        raise SkipFile("no text found")
    return PreparedFile([(p.number, p.text) for p in doc.pages], chunks, doc.title, doc.ocr_used)
