"""Read-only lookups for showing documents: where a chunk sits, a page's text, lists of documents."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, tuple_

from storage.db import Database
from storage.models import Chunk, Collection, Document, DocumentPage


@dataclass(frozen=True)
class DocumentRecord:
    """An ingested file and the collection it belongs to."""

    id: int
    collection: str
    root: str
    path: str
    title: str | None
    page_count: int
    chunk_count: int
    ingested_at: datetime


@dataclass(frozen=True)
class ChunkLocation:
    """Where a chunk's text sits: its document, the page (by ordinal) and the span in the page text."""

    chunk_id: int
    collection: str
    document_id: int
    page_ordinal: int
    char_start: int
    char_end: int


def _document_query() -> Any:
    return select(Document, Collection.name).join(Collection, Collection.id == Document.collection_id)


def _doc(row: Document, collection: str) -> DocumentRecord:
    return DocumentRecord(row.id, collection, row.root, row.path, row.title, row.page_count, row.chunk_count,
                          row.ingested_at)


class LibraryStore:
    """Documents and pages as the viewer and the admin pages read them (jobs: ``storage.job_store``)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def document(self, document_id: int) -> DocumentRecord | None:
        """One document by id."""
        with self.db.session() as s:
            row = s.execute(_document_query().where(Document.id == document_id)).first()
            return _doc(*row) if row else None

    def documents(self, collection: str | None = None) -> list[DocumentRecord]:
        """Documents of one collection (or all), by path."""
        query = _document_query().order_by(Collection.name, Document.path)
        if collection is not None:
            query = query.where(Collection.name == collection)
        with self.db.session() as s:
            return [_doc(*row) for row in s.execute(query)]

    def page(self, document_id: int, ordinal: int) -> tuple[int | None, str] | None:
        """A page's printed number (if any) and parsed text."""
        with self.db.session() as s:
            row = s.get(DocumentPage, (document_id, ordinal))
            return (row.number, row.text) if row else None

    def locations(self, chunk_ids: Sequence[int]) -> dict[int, ChunkLocation]:
        """Where each existing chunk among ``chunk_ids`` sits."""
        if not chunk_ids:
            return {}
        query = (
            select(Chunk.id, Collection.name, Chunk.document_id, Chunk.page_ordinal, Chunk.char_start, Chunk.char_end)
            .join(Collection, Collection.id == Chunk.collection_id)
            .where(Chunk.id.in_([int(i) for i in chunk_ids]))
        )
        with self.db.session() as s:
            return {row[0]: ChunkLocation(*row) for row in s.execute(query)}

    def page_texts(self, keys: Sequence[tuple[int, int]]) -> dict[tuple[int, int], str]:
        """Texts of the given (document id, page ordinal) pages."""
        wanted = set(keys)
        if not wanted:
            return {}
        query = select(DocumentPage.document_id, DocumentPage.ordinal, DocumentPage.text).where(
            tuple_(DocumentPage.document_id, DocumentPage.ordinal).in_(sorted(wanted)))
        with self.db.session() as s:
            return {(doc_id, ordinal): text for doc_id, ordinal, text in s.execute(query)}
