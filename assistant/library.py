"""Showing documents to readers: a cited page with the passage marked, page images, the original file.

Everything here checks that the principal may read the document's collection; a document
that does not exist and one that may not be read give the same answer, so ids reveal nothing.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistant import audit_events
from assistant.access import AccessService
from assistant.audit import AuditLog, Principal, require_admin
from assistant.corpus import Corpus
from assistant.errors import InvalidInput, NotFoundError
from assistant.page_marks import mark_passage
from storage.library import DocumentRecord as DocumentRecord  # re-exported for ui/, which never imports storage
from storage.library import LibraryStore

HIDDEN = "there is no such document, or you may not read it"
PAGE_IMAGE_CACHE = 64


@dataclass(frozen=True)
class PageView:
    """One page of a document as the viewer shows it; ``highlight`` is a non-empty span within ``text``."""

    document: DocumentRecord
    ordinal: int
    number: int | None
    text: str
    highlight: tuple[int, int] | None
    has_image: bool


class Library:
    """Read access to ingested documents, and their removal by admins."""

    def __init__(self, store: LibraryStore, access: AccessService, corpus: Corpus, audit: AuditLog,
                 upload_dir: Path) -> None:
        """``upload_dir`` holds uploaded files (``IngestJobs.upload_dir``): a removed upload's file goes too."""
        self.store = store
        self.upload_dir = upload_dir
        self.access = access
        self.corpus = corpus
        self.audit = audit
        self._images: OrderedDict[tuple[int, int, tuple[int, int] | None], bytes] = OrderedDict()
        self._lock = threading.Lock()

    def document(self, principal: Principal, document_id: int) -> DocumentRecord:
        """A document the principal may read."""
        doc = self.store.document(document_id)
        if doc is None or not self.access.can_read(principal, doc.collection):
            raise NotFoundError(HIDDEN)
        return doc

    def chunk_page(self, principal: Principal, chunk_id: int) -> PageView:
        """The page a passage comes from, with the passage marked."""
        loc = self.store.locations([chunk_id]).get(chunk_id)
        if loc is None or not self.access.can_read(principal, loc.collection):
            raise NotFoundError(HIDDEN)
        return self.page(principal, loc.document_id, loc.page_ordinal, (loc.char_start, loc.char_end))

    def page(self, principal: Principal, document_id: int, ordinal: int,
             highlight: tuple[int, int] | None = None) -> PageView:
        """A page of a document by its position among the document's pages."""
        doc = self.document(principal, document_id)
        found = self.store.page(document_id, ordinal)
        if found is None:
            raise NotFoundError(f"{doc.path} has no page {ordinal + 1}")
        number, text = found
        shown = _within(highlight, len(text)) if highlight else None
        return PageView(doc, ordinal, number, text, shown, self._is_pdf(doc) and number is not None)

    def page_image(self, principal: Principal, document_id: int, ordinal: int,
                   mark: tuple[int, int] | None = None) -> bytes:
        """A PNG of a PDF page, rendered on the server so the browser runs no PDF code.

        ``mark`` is a span of the page's stored text (a cited passage) to paint on the picture.
        """
        view = self.page(principal, document_id, ordinal)
        if not view.has_image or view.number is None:
            raise NotFoundError("this page has no image: it is not from a PDF")
        if mark is not None:
            mark = _within(mark, len(view.text))
            if mark is None:
                raise InvalidInput(f"the span to mark must start within the page's {len(view.text)} characters "
                                   "and end after its start")
        passage = view.text[mark[0] : mark[1]] if mark else None
        key = (document_id, ordinal, mark)
        with self._lock:
            if key in self._images:
                self._images.move_to_end(key)
                return self._images[key]
        png = _render_pdf_page(self.original_file(principal, document_id), view.number - 1, passage)
        with self._lock:
            self._images[key] = png
            while len(self._images) > PAGE_IMAGE_CACHE:
                self._images.popitem(last=False)
        return png

    def original_file(self, principal: Principal, document_id: int) -> Path:
        """The ingested file on disk, only when it still lies inside the folder it was ingested from."""
        doc = self.document(principal, document_id)
        root = Path(doc.root).resolve()
        path = (root / doc.path).resolve()
        if not path.is_relative_to(root) or not path.is_file():
            raise NotFoundError(f"the original of {doc.path} is no longer on the server")
        return path

    def documents(self, actor: Principal, collection: str | None = None) -> list[DocumentRecord]:
        """Documents of a collection, or of all (admins only)."""
        require_admin(actor)
        return self.store.documents(collection)

    def status(self, actor: Principal) -> dict[str, Any]:
        """Collections, documents, chunks, embedding model and index size (admins only)."""
        require_admin(actor)
        return self.corpus.status()

    def remove(self, actor: Principal, document_id: int) -> str:
        """Remove a document from its collection and its indexes (admins only); returns its path."""
        require_admin(actor)
        doc = self.store.document(document_id)
        if doc is None:
            raise NotFoundError(HIDDEN)
        collection_id = self.corpus.collection_id(doc.collection)
        removed = self.corpus.store.delete_documents([document_id])
        self.corpus.index(collection_id).remove(removed)
        self.corpus.save(collection_id)
        with self._lock:
            for key in [k for k in self._images if k[0] == document_id]:
                del self._images[key]
        self._drop_upload(doc)
        self.audit.record(actor, audit_events.DocumentRemoved(doc.path, collection=doc.collection))
        return doc.path

    def _drop_upload(self, doc: DocumentRecord) -> None:
        """An uploaded document's file goes with it, or the collection's next upload job would ingest it again."""
        root = Path(doc.root).resolve()
        path = (root / doc.path).resolve()
        if root.is_relative_to(self.upload_dir.resolve()) and path.is_relative_to(root):
            path.unlink(missing_ok=True)

    @staticmethod
    def _is_pdf(doc: DocumentRecord) -> bool:
        return doc.path.lower().endswith(".pdf")


def _within(span: tuple[int, int], length: int) -> tuple[int, int] | None:
    """A span of a page's text cut at the page's end (a passage may run on past it); None when nothing is left."""
    start, end = span[0], min(span[1], length)
    return (start, end) if 0 <= start < end else None


def _render_pdf_page(path: Path, index: int, passage: str | None = None, scale: float = 1.5) -> bytes:
    import io

    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(str(path))
    try:
        if not 0 <= index < len(pdf):
            raise NotFoundError("the PDF no longer has this page")
        page = pdf[index]
        image = page.render(scale=scale).to_pil()
        if passage:
            image, _ = mark_passage(page, image, passage, scale)
    finally:
        pdf.close()
    buffer = io.BytesIO()
    image.save(buffer, "PNG", optimize=True)
    return buffer.getvalue()
