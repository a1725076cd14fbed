"""Cut parsed pages into chunks with llama-index's sentence splitter, keeping offsets.

Chunk sizes are counted in the embedding model's own tokens, so no chunk is silently
truncated by the model, and no tiktoken data is needed.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

from ingest.document import ParsedDocument
from storage.documents import ChunkDraft


@lru_cache(maxsize=4)
def model_tokenizer(model_dir: str) -> Callable[[str], list[int]]:
    """Token ids of the embedding model's fast tokenizer, without special tokens."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(Path(model_dir) / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()

    def encode(text: str) -> list[int]:
        return list(tokenizer.encode(text, add_special_tokens=False).ids)

    return encode


@lru_cache(maxsize=4)
def _splitter(model_dir: str, chunk_tokens: int, overlap: int) -> Any:
    from llama_index.core.node_parser import SentenceSplitter

    return SentenceSplitter(
        chunk_size=chunk_tokens, chunk_overlap=overlap, tokenizer=model_tokenizer(model_dir),
        paragraph_separator="\n\n", include_metadata=False, include_prev_next_rel=False,
    )


def _locate(text: str, piece: str, cursor: int) -> int:
    """Where a split piece starts in the section text (splitters strip whitespace)."""
    found = text.find(piece, cursor)
    if found < 0:
        found = text.find(piece)
    if found < 0:
        head = piece[:40]
        found = text.find(head, cursor)
    return found if found >= 0 else cursor


PAGE_BREAK = "\n\n"


def chunk_flowing(doc: ParsedDocument, model_dir: str, chunk_tokens: int, overlap: int) -> list[ChunkDraft]:
    """Split a document whose text runs across pages as one text, so a paragraph broken by a
    page break stays in one chunk. A chunk belongs to the page where it starts; its end
    offset may run past that page's text (the viewer clips the highlight there)."""
    splitter = _splitter(model_dir, chunk_tokens, overlap)
    encode = model_tokenizer(model_dir)
    starts, cursor = [], 0
    for page in doc.pages:
        starts.append(cursor)
        cursor += len(page.text) + len(PAGE_BREAK)
    text = PAGE_BREAK.join(p.text for p in doc.pages)
    drafts: list[ChunkDraft] = []
    cursor = 0
    for piece in splitter.split_text(text):
        if not piece.strip():
            continue
        at = _locate(text, piece, cursor)
        ordinal = max(i for i, s in enumerate(starts) if s <= at)
        page = doc.pages[ordinal]
        local = at - starts[ordinal]
        drafts.append(ChunkDraft(ordinal, page.number, "", piece, local, local + len(piece), len(encode(piece))))
        cursor = at + 1
    return drafts


def chunk_document(doc: ParsedDocument, model_dir: str, chunk_tokens: int, overlap: int) -> list[ChunkDraft]:
    """Split every section of every page; offsets index into the page text."""
    if doc.flowing and not any(p.sections for p in doc.pages):
        return chunk_flowing(doc, model_dir, chunk_tokens, overlap)
    splitter = _splitter(model_dir, chunk_tokens, overlap)
    encode = model_tokenizer(model_dir)
    drafts: list[ChunkDraft] = []
    for ordinal, page in enumerate(doc.pages):
        for section in page.iter_sections():
            text = page.text[section.start : section.end]
            if not text.strip():
                continue
            cursor = 0
            for piece in splitter.split_text(text):
                if not piece.strip():
                    continue
                at = _locate(text, piece, cursor)
                end = min(at + len(piece), len(text))
                drafts.append(
                    ChunkDraft(ordinal, page.number, section.heading, piece,
                               section.start + at, section.start + end, len(encode(piece)))
                )
                cursor = at + 1
    return drafts
