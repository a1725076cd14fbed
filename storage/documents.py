"""The document store: every read and write of collections, documents and chunks."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, cast

import numpy as np
from sqlalchemy import Table, bindparam, delete, func, select, update
from sqlalchemy.orm import Session

from storage.db import Database
from storage.models import Chunk, Collection, Document, DocumentPage, Meta, utcnow


def searchable_text(path: str, heading: str, text: str) -> str:
    """What the indexes see of a chunk: file name and heading give context to short passages."""
    name = PurePosixPath(path).name.replace("_", " ").replace("-", " ")
    return f"{name} | {heading}\n{text}" if heading else f"{name}\n{text}"


@dataclass(frozen=True)
class KnownDocument:
    """What the store remembers of a file, enough to tell whether it changed."""

    id: int
    path: str
    content_hash: str
    size: int
    mtime_ns: int


@dataclass
class ChunkDraft:
    """A chunk before it is stored: where it sits on its page and what it says."""

    page_ordinal: int
    page: int | None
    heading: str
    text: str
    char_start: int
    char_end: int
    token_count: int


@dataclass
class NewDocument:
    """A parsed and chunked file ready to be written in one transaction, embedded or not yet."""

    path: str
    content_hash: str
    size: int
    mtime_ns: int
    title: str | None
    pages: list[tuple[int | None, str]]
    chunks: list[ChunkDraft]
    embeddings: np.ndarray | None
    """One row per chunk, in the same order; None stores the chunks keyword-searchable only, to embed later."""
    ocr_used: bool = False


@dataclass(frozen=True)
class StoredChunk:
    """A chunk as retrieval and citations see it."""

    id: int
    collection: str
    document_id: int
    file: str
    page: int | None
    heading: str
    text: str
    char_start: int
    char_end: int


class DocumentStore:
    """Reads and writes the metadata database; the indexes are rebuilt from what is here."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def get_meta(self, key: str) -> str | None:
        """A stored fact about the index, or None."""
        with self.db.session() as s:
            row = s.get(Meta, key)
            return row.value if row else None

    def set_meta(self, key: str, value: str) -> None:
        """Store a fact about the index."""
        with self.db.session() as s:
            s.merge(Meta(key=key, value=value))

    def collection_id(self, name: str, create: bool = False) -> int | None:
        """The id of a collection by name, created on request."""
        with self.db.session() as s:
            found = s.scalar(select(Collection.id).where(Collection.name == name))
            if found is not None or not create:
                return found
            row = Collection(name=name)
            s.add(row)
            s.flush()
            return row.id

    def collections(self) -> dict[int, str]:
        """All collections, id to name."""
        with self.db.session() as s:
            return {cid: name for cid, name in s.execute(select(Collection.id, Collection.name))}

    def known_documents(self, collection_id: int, root: str) -> dict[str, KnownDocument]:
        """Documents ingested from ``root`` into a collection, by relative path."""
        query = select(
            Document.id, Document.path, Document.content_hash, Document.size, Document.mtime_ns
        ).where(Document.collection_id == collection_id, Document.root == root)
        with self.db.session() as s:
            return {row.path: KnownDocument(*row) for row in s.execute(query)}

    def paths_by_content(self, collection_id: int, hashes: Iterable[str]) -> dict[str, str]:
        """Which of ``hashes`` a collection already holds: content hash -> the path of one document with it."""
        wanted = sorted(set(hashes))
        found: dict[str, str] = {}
        with self.db.session() as s:
            for start in range(0, len(wanted), 500):  # bounded IN lists
                query = select(Document.content_hash, Document.path).where(
                    Document.collection_id == collection_id, Document.content_hash.in_(wanted[start : start + 500]))
                for digest, path in s.execute(query):
                    found.setdefault(digest, path)
        return found

    def touch(self, document_id: int, mtime_ns: int) -> None:
        """Record a new modification time for a file whose content did not change."""
        with self.db.session() as s:
            s.execute(update(Document).where(Document.id == document_id).values(mtime_ns=mtime_ns))

    def rename(self, document_id: int, new_path: str, mtime_ns: int) -> None:
        """Move a document to a new relative path, keeping its chunks and embeddings."""
        with self.db.session() as s:
            s.execute(
                update(Document).where(Document.id == document_id).values(path=new_path, mtime_ns=mtime_ns)
            )

    def write_documents(
        self, collection_id: int, root: str, docs: Sequence[NewDocument],
        also: Callable[[Session], None] | None = None,
    ) -> tuple[list[int], list[int]]:
        """Insert or replace documents in one transaction; ``also`` writes more in it (a file claim marked done).

        Returns:
            The ids of chunks removed (old versions) and of chunks added, in input order.
        """
        removed: list[int] = []
        added: list[int] = []
        with self.db.session() as s:
            for doc in docs:
                old = s.scalar(
                    select(Document.id).where(
                        Document.collection_id == collection_id, Document.root == root, Document.path == doc.path
                    )
                )
                if old is not None:
                    removed += s.scalars(select(Chunk.id).where(Chunk.document_id == old)).all()
                    s.execute(delete(Chunk).where(Chunk.document_id == old))
                    s.execute(delete(DocumentPage).where(DocumentPage.document_id == old))
                    s.execute(delete(Document).where(Document.id == old))
                added += self._insert_document(s, collection_id, root, doc)
            if also is not None:
                also(s)
        return removed, added

    def _insert_document(self, s: Any, collection_id: int, root: str, doc: NewDocument) -> list[int]:
        row = Document(
            collection_id=collection_id, root=root, path=doc.path, content_hash=doc.content_hash,
            size=doc.size, mtime_ns=doc.mtime_ns, title=doc.title, page_count=len(doc.pages),
            chunk_count=len(doc.chunks), ocr_used=doc.ocr_used, ingested_at=utcnow(),
        )
        s.add(row)
        s.flush()
        s.add_all(
            DocumentPage(document_id=row.id, ordinal=i, number=number, text=text)
            for i, (number, text) in enumerate(doc.pages)
        )
        vectors = [None] * len(doc.chunks) if doc.embeddings is None else list(doc.embeddings)
        chunk_rows = [
            Chunk(
                document_id=row.id, collection_id=collection_id, ordinal=i, page_ordinal=c.page_ordinal,
                page=c.page, heading=c.heading, text=c.text, char_start=c.char_start, char_end=c.char_end,
                token_count=c.token_count,
                embedding=None if vector is None else np.asarray(vector, dtype=np.float32).tobytes(),
            )
            for i, (c, vector) in enumerate(zip(doc.chunks, vectors, strict=True))
        ]
        s.add_all(chunk_rows)
        s.flush()
        return [c.id for c in chunk_rows]

    def delete_documents(self, document_ids: Iterable[int]) -> list[int]:
        """Remove documents and their chunks; returns the removed chunk ids."""
        ids = list(document_ids)
        if not ids:
            return []
        with self.db.session() as s:
            removed = list(s.scalars(select(Chunk.id).where(Chunk.document_id.in_(ids))))
            s.execute(delete(Chunk).where(Chunk.document_id.in_(ids)))
            s.execute(delete(DocumentPage).where(DocumentPage.document_id.in_(ids)))
            s.execute(delete(Document).where(Document.id.in_(ids)))
        return removed

    def chunk_ids(self, collection_id: int, embedded: bool | None = None) -> np.ndarray:
        """Every chunk id of a collection, sorted; ``embedded`` keeps only those with (True) or without an embedding."""
        query = select(Chunk.id).where(Chunk.collection_id == collection_id).order_by(Chunk.id)
        if embedded is not None:
            query = query.where(Chunk.embedding.is_not(None) if embedded else Chunk.embedding.is_(None))
        with self.db.session() as s:
            return np.fromiter(s.scalars(query), dtype=np.int64)

    def unembedded(self, collection_id: int, limit: int) -> list[int]:
        """Up to ``limit`` chunk ids of a collection still waiting for their embedding, oldest first."""
        query = (select(Chunk.id).where(Chunk.collection_id == collection_id, Chunk.embedding.is_(None))
                 .order_by(Chunk.id).limit(limit))
        with self.db.session() as s:
            return list(s.scalars(query))

    def files_waiting(self) -> dict[int, int]:
        """Per collection id, how many documents have chunks not embedded yet (keyword-searchable only)."""
        query = (select(Chunk.collection_id, func.count(func.distinct(Chunk.document_id)))
                 .where(Chunk.embedding.is_(None)).group_by(Chunk.collection_id))
        with self.db.session() as s:
            return {int(cid): int(n) for cid, n in s.execute(query)}

    def chunk_ids_of(self, document_ids: list[int]) -> list[int]:
        """The chunk ids of some documents."""
        with self.db.session() as s:
            return list(s.scalars(select(Chunk.id).where(Chunk.document_id.in_(document_ids))))

    def iter_chunk_payloads(
        self, ids: Sequence[int], batch: int = 5000
    ) -> Iterator[tuple[np.ndarray, np.ndarray, list[str]]]:
        """Ids, embeddings and texts of the given chunks that are embedded, in batches, for rebuilding indexes."""
        columns = (Chunk.id, Chunk.embedding, Document.path, Chunk.heading, Chunk.text)
        for rows in self._chunk_rows(columns, ids, batch, Chunk.embedding.is_not(None)):
            yield (
                np.array([r[0] for r in rows], dtype=np.int64),
                np.vstack([np.frombuffer(cast(bytes, r[1]), dtype=np.float32) for r in rows]),
                [searchable_text(r[2], r[3], r[4]) for r in rows],
            )

    def iter_chunk_texts(self, ids: Sequence[int], batch: int = 5000) -> Iterator[tuple[np.ndarray, list[str]]]:
        """Ids and searchable texts of the given chunks (embedded or not), in batches."""
        for rows in self._chunk_rows((Chunk.id, Document.path, Chunk.heading, Chunk.text), ids, batch):
            yield np.array([r[0] for r in rows], dtype=np.int64), [searchable_text(*r[1:]) for r in rows]

    def _chunk_rows(self, columns: Sequence[Any], ids: Sequence[int], batch: int, *where: Any) -> Iterator[list[Any]]:
        """``columns`` of the given chunks (joined with their documents), ``batch`` ids a query, by chunk id."""
        for start in range(0, len(ids), batch):
            part = [int(i) for i in ids[start : start + batch]]
            with self.db.session() as s:
                rows = s.execute(
                    select(*columns).join(Document, Document.id == Chunk.document_id)
                    .where(Chunk.id.in_(part), *where).order_by(Chunk.id)
                ).all()
            if rows:
                yield list(rows)

    def update_embeddings(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Store the embeddings of chunks (after a model change, or the keyword write); gone chunks are skipped."""
        table = cast(Table, Chunk.__table__)
        statement = update(table).where(table.c.id == bindparam("chunk_id")).values(embedding=bindparam("vector"))
        rows = [{"chunk_id": int(i), "vector": np.asarray(v, dtype=np.float32).tobytes()}
                for i, v in zip(ids, vectors, strict=True)]
        if rows:
            with self.db.session() as s:
                s.execute(statement, rows)

    def chunks_by_id(self, ids: Sequence[int]) -> dict[int, StoredChunk]:
        """The chunks that exist among ``ids``; missing ids are simply absent."""
        if not len(ids):
            return {}
        query = (  # the columns a passage shows, not the stored embedding
            select(Chunk.id, Collection.name, Chunk.document_id, Document.path, Chunk.page, Chunk.heading,
                   Chunk.text, Chunk.char_start, Chunk.char_end)
            .join(Document, Document.id == Chunk.document_id)
            .join(Collection, Collection.id == Chunk.collection_id)
            .where(Chunk.id.in_([int(i) for i in ids]))
        )
        with self.db.session() as s:
            return {row[0]: StoredChunk(*row) for row in s.execute(query)}

    def status(self) -> list[dict[str, Any]]:
        """Per collection: documents, chunks and pages."""
        docs = (
            select(Document.collection_id, func.count(Document.id), func.coalesce(func.sum(Document.chunk_count), 0),
                   func.coalesce(func.sum(Document.page_count), 0))
            .group_by(Document.collection_id)
        )
        with self.db.session() as s:
            counts = {cid: (n, c, p) for cid, n, c, p in s.execute(docs)}
            names = list(s.execute(select(Collection.id, Collection.name).order_by(Collection.name)))
        return [
            {"name": name, "documents": counts.get(cid, (0, 0, 0))[0], "chunks": int(counts.get(cid, (0, 0, 0))[1]),
             "pages": int(counts.get(cid, (0, 0, 0))[2])}
            for cid, name in names
        ]
