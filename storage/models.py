"""The metadata schema: collections, documents, pages, chunks, ingest jobs and the files they handled.

The database is the source of truth. Chunk rows carry their embedding, so the vector
and BM25 indexes can always be rebuilt from here without re-embedding; a chunk whose
embedding is still NULL is keyword-searchable only until the ingest embeds it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    """Timezone-aware now, for timestamps."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Declarative base of every table."""


# SQLite autoincrements only INTEGER PRIMARY KEY; PostgreSQL gets a BIGINT identity.
ChunkId = BigInteger().with_variant(Integer(), "sqlite")


class Meta(Base):
    """Key/value facts about the store, such as the embedding model the index was built with."""

    __tablename__ = "meta"
    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class Collection(Base):
    """A named set of documents; groups are granted read access to it (``storage.accounts.CollectionGrant``)."""

    __tablename__ = "collections"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Document(Base):
    """One ingested file, identified by its collection, source folder and relative path."""

    __tablename__ = "documents"
    __table_args__ = (
        UniqueConstraint("collection_id", "root", "path", name="uq_document_location"),
        Index("ix_documents_hash", "collection_id", "content_hash"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"))
    root: Mapped[str] = mapped_column(Text, doc="Absolute folder the file was ingested from.")
    path: Mapped[str] = mapped_column(Text, doc="POSIX path relative to root.")
    content_hash: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    mtime_ns: Mapped[int] = mapped_column(BigInteger)
    title: Mapped[str | None] = mapped_column(Text, nullable=True)
    page_count: Mapped[int] = mapped_column(Integer, default=0)
    chunk_count: Mapped[int] = mapped_column(Integer, default=0)
    ocr_used: Mapped[bool] = mapped_column(default=False)
    ingested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    pages: Mapped[list[DocumentPage]] = relationship(
        back_populates="document", cascade="all, delete-orphan", passive_deletes=True
    )


class DocumentPage(Base):
    """The text of one page as parsed; chunk offsets point into it for highlighting."""

    __tablename__ = "document_pages"
    document_id: Mapped[int] = mapped_column(
        ForeignKey("documents.id", ondelete="CASCADE"), primary_key=True
    )
    ordinal: Mapped[int] = mapped_column(Integer, primary_key=True)
    number: Mapped[int | None] = mapped_column(Integer, nullable=True)
    text: Mapped[str] = mapped_column(Text)

    document: Mapped[Document] = relationship(back_populates="pages")


class Chunk(Base):
    """A passage of a page; its id is also its id in the vector and BM25 indexes."""

    __tablename__ = "chunks"
    __table_args__ = (
        Index("ix_chunks_collection", "collection_id", "id"),
        # The chunks still waiting for their embedding (migration 0012), and their files, without a table read.
        Index("ix_chunks_unembedded", "collection_id", "id", "document_id", sqlite_where=text("embedding IS NULL"),
              postgresql_where=text("embedding IS NULL")),
    )
    id: Mapped[int] = mapped_column(ChunkId, primary_key=True, autoincrement=True)
    document_id: Mapped[int] = mapped_column(
        ForeignKey("documents.id", ondelete="CASCADE"), index=True
    )
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"))
    ordinal: Mapped[int] = mapped_column(Integer)
    page_ordinal: Mapped[int] = mapped_column(Integer)
    page: Mapped[int | None] = mapped_column(Integer, nullable=True)
    heading: Mapped[str] = mapped_column(Text, default="")
    text: Mapped[str] = mapped_column(Text)
    char_start: Mapped[int] = mapped_column(Integer)
    char_end: Mapped[int] = mapped_column(Integer)
    token_count: Mapped[int] = mapped_column(Integer)
    embedding: Mapped[bytes | None] = mapped_column(
        LargeBinary, nullable=True, doc="None between the keyword write and the embedding pass of an ingest.")


class IngestJobRow(Base):
    """One run of ingestion over a folder: what it did and how it ended (read as ``job_store.IngestJob``)."""

    __tablename__ = "ingest_jobs"
    __table_args__ = (
        Index("ix_ingest_jobs_status", "status", "id"),
        # Never two runs of one source at once, nor two waiting: the database refuses the second.
        *(Index(f"uq_ingest_jobs_source_{state}", "source_id", unique=True,
                sqlite_where=text(f"status = '{state}'"), postgresql_where=text(f"status = '{state}'"))
          for state in ("queued", "running")),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"))
    root: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default="running")
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Queued jobs (migration 0004): any app process queues, one worker claims and holds a lease.
    sync: Mapped[bool] = mapped_column(default=False)
    requested_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    worker: Mapped[str | None] = mapped_column(String(200), nullable=True, doc="Who holds the lease.")
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    total_files: Mapped[int] = mapped_column(Integer, default=0)
    done_files: Mapped[int] = mapped_column(Integer, default=0)
    # Runs of a source (migration 0008): at most one queued and one running per source, kept so by the database.
    source_id: Mapped[int | None] = mapped_column(ForeignKey("sources.id", ondelete="SET NULL"), nullable=True)
    trigger: Mapped[str | None] = mapped_column(String(20), nullable=True, doc="schedule, change, manual or confirm.")


class SourceRow(Base):
    """A folder kept in step with a collection: its schedule, which files count, and the removal limit."""

    __tablename__ = "sources"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"))
    folder: Mapped[str] = mapped_column(Text, doc="Absolute folder, the root of its documents.")
    schedule: Mapped[str] = mapped_column(String(100), doc="'every 15m' or a five-field cron expression.")
    include: Mapped[list[str]] = mapped_column(JSON, default=list)
    exclude: Mapped[list[str]] = mapped_column(JSON, default=list)
    max_file_mb: Mapped[float | None] = mapped_column(Float, nullable=True)
    max_removal_share: Mapped[float] = mapped_column(Float)
    enabled: Mapped[bool] = mapped_column(default=True)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class IngestJobFileRow(Base):
    """One file a job has handled: what happened to it, and why when it failed, live on every app process."""

    __tablename__ = "ingest_job_files"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("ingest_jobs.id", ondelete="CASCADE"), index=True)
    path: Mapped[str] = mapped_column(Text)
    outcome: Mapped[str] = mapped_column(String(20))
    chunks: Mapped[int] = mapped_column(Integer, default=0)
    reason: Mapped[str] = mapped_column(Text, default="")


class IngestFileClaimRow(Base):
    """One file of a job shared between workers (PostgreSQL index backend): open, claimed under a lease, or done.

    Marked done in the transaction that writes the file's chunks, so a file is written at most once.
    """

    __tablename__ = "ingest_file_claims"
    __table_args__ = (UniqueConstraint("job_id", "path", name="uq_ingest_file_claims_job_path"),
                      Index("ix_ingest_file_claims_status", "status", "job_id"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("ingest_jobs.id", ondelete="CASCADE"))
    path: Mapped[str] = mapped_column(Text, doc="Relative to the job's folder.")
    content_hash: Mapped[str] = mapped_column(String(64))
    is_update: Mapped[bool] = mapped_column(default=False)
    status: Mapped[str] = mapped_column(String(10), default="open", doc="open, claimed or done.")
    worker: Mapped[str | None] = mapped_column(String(200), nullable=True, doc="Who holds the claim.")
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    outcome: Mapped[str | None] = mapped_column(String(20), nullable=True, doc="added, updated or failed.")
    chunks: Mapped[int] = mapped_column(Integer, default=0)
    reason: Mapped[str] = mapped_column(Text, default="")
