"""The document viewer: a cited page (PDF pages as server-rendered images) with the passage marked.

Every route asks the library, which checks the reader's grants; a document that does not
exist and one that may not be read both answer 404.
"""

from __future__ import annotations

from html import escape

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, Response

from assistant.audit import Principal
from assistant.errors import NotFoundError
from assistant.library import Library, PageView
from ui.plain_page import ICON, VIEWPORT
from ui.render import page_text_html

NO_STORE = {"cache-control": "private, no-store"}
STYLE = """
body { font-family: system-ui, sans-serif; margin: 0; color: #1f2937; background: #f4f5f7; }
header { background: #fff; padding: .75rem 1.25rem; border-bottom: 1px solid #e5e7eb; display: flex; gap: 1rem;
         align-items: baseline; flex-wrap: wrap; }
header h1 { font-size: 1.1rem; margin: 0; } header .where { color: #6b7280; }
nav a { margin-right: .75rem; }
main { display: flex; gap: 1rem; padding: 1rem; align-items: flex-start; flex-wrap: wrap; }
.page-image { max-width: min(100%, 820px); border: 1px solid #d1d5db; background: #fff; }
.page-text { flex: 1 1 28rem; background: #fff; padding: 1rem 1.25rem; border: 1px solid #e5e7eb;
             white-space: normal; line-height: 1.55; max-width: 60rem; }
mark { background: #fde68a; padding: .05rem 0; }
.page-text h1, .page-text h2, .page-text h3 { font-size: 1.1rem; margin: .8rem 0 .3rem; }
.page-text table { border-collapse: collapse; margin: .5rem 0; }
.page-text th, .page-text td { border: 1px solid #d1d5db; padding: .25rem .5rem; text-align: left; }
.page-text pre { white-space: pre-wrap; background: #f3f4f6; padding: .5rem; }
"""


def _principal(request: Request) -> Principal:
    principal: Principal = request.state.principal
    return principal


def viewer_html(view: PageView) -> str:
    """The viewer page for one page of a document."""
    doc = view.document
    label = f"page {view.number}" if view.number else f"part {view.ordinal + 1}"
    links = []
    if view.ordinal > 0:
        links.append(f'<a href="/view/doc/{doc.id}/page/{view.ordinal - 1}">← previous</a>')
    if view.ordinal + 1 < doc.page_count:
        links.append(f'<a href="/view/doc/{doc.id}/page/{view.ordinal + 1}">next →</a>')
    links.append(f'<a href="/view/doc/{doc.id}/file">Download original</a>')
    mark = f"?start={view.highlight[0]}&amp;end={view.highlight[1]}" if view.highlight else ""
    image = (f'<img class="page-image" alt="{escape(doc.path)}, {label}" '
             f'src="/view/doc/{doc.id}/page/{view.ordinal}/image.png{mark}">' if view.has_image else "")
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8">{VIEWPORT}{ICON}'
        f"<title>{escape(doc.path)} · {label}</title><style>{STYLE}</style></head>"
        f"<body><header><h1>{escape(doc.path)}</h1>"
        f'<span class="where">{escape(doc.collection)} · {label} of {doc.page_count}</span>'
        f'<nav>{"".join(links)}</nav></header><main>{image}{page_text_html(view.text, view.highlight)}</main>'
        "</body></html>"
    )


def _stored_id(value: int, bits: int = 31) -> int:
    """An id the database can hold; larger ones (forged URLs) name nothing, so 404, never a 500."""
    if not 0 <= value < 2**bits:
        raise NotFoundError("no such document or page")
    return value


def viewer_router(library: Library) -> APIRouter:
    """Routes under ``/view``."""
    router = APIRouter(prefix="/view")

    @router.get("/chunk/{chunk_id}")
    def cited_page(chunk_id: int, request: Request) -> HTMLResponse:
        view = library.chunk_page(_principal(request), _stored_id(chunk_id, 63))
        return HTMLResponse(viewer_html(view), headers=NO_STORE)

    @router.get("/doc/{document_id}/page/{ordinal}")
    def page(document_id: int, ordinal: int, request: Request) -> HTMLResponse:
        view = library.page(_principal(request), _stored_id(document_id), _stored_id(ordinal))
        return HTMLResponse(viewer_html(view), headers=NO_STORE)

    @router.get("/doc/{document_id}/page/{ordinal}/image.png")
    def page_image(document_id: int, ordinal: int, request: Request, start: int | None = None,
                   end: int | None = None) -> Response:
        mark = (start, end) if start is not None and end is not None else None
        png = library.page_image(_principal(request), _stored_id(document_id), _stored_id(ordinal), mark)
        return Response(png, media_type="image/png", headers=NO_STORE)

    @router.get("/doc/{document_id}/file")
    def original(document_id: int, request: Request) -> FileResponse:
        path = library.original_file(_principal(request), _stored_id(document_id))
        # Always a download, sandboxed: an ingested HTML file must never run as this app's page.
        headers = {**NO_STORE, "content-security-policy": "sandbox; default-src 'none'"}
        return FileResponse(path, filename=path.name, content_disposition_type="attachment",
                            media_type="application/octet-stream", headers=headers)

    return router
