"""``/api``: status, documents, downloads and ingestion for other internal tools, and the OpenAPI description.

Every route calls the same services as the web app with the caller's principal (from a
bearer token or the session cookie, set by ``ui.gate.AuthGate``), so the rules are theirs:
ingestion is for admins, documents only from readable collections, and a document that does
not exist answers like one that may not be read.
"""

from __future__ import annotations

from datetime import UTC
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Path, Query, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import FileResponse, JSONResponse

from assistant.audit import Principal
from assistant.jobs import IngestJob
from assistant.library import DocumentRecord
from assistant.web_services import WebServices
from ui.api_chat import chat_router
from ui.api_errors import ERRORS, install_error_handlers
from ui.api_models import DocumentList, DocumentOut, IngestRequest, Job, JobFile, JobStarted, Status
from ui.api_sources import sources_router

OPENAPI_PATH = "/api/openapi.json"
DESCRIPTION = """Enclave's HTTP API. Authenticate with a personal API token (`Authorization: Bearer enc_...`,
created on /account/tokens) or a signed-in browser session. Errors are `{"error": {"message", "type"}}`.
`POST /v1/chat/completions` speaks OpenAI's Chat Completions API; see docs/api.md."""
NO_STORE = {"cache-control": "private, no-store"}
# Ids are 32-bit integers in the database (PostgreSQL's INTEGER); larger ones are refused as input errors.
Id = Annotated[int, Path(ge=1, le=2**31 - 1)]
FILE_DOC = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}


def _principal(request: Request) -> Principal:
    principal: Principal = request.state.principal
    return principal


def document_out(doc: DocumentRecord) -> DocumentOut:
    """A document as the API lists it (the server folder it came from stays private)."""
    # SQLite hands back naive datetimes; they were written in UTC, and RFC 3339 wants the offset.
    ingested = doc.ingested_at if doc.ingested_at.tzinfo else doc.ingested_at.replace(tzinfo=UTC)
    return DocumentOut(id=doc.id, collection=doc.collection, path=doc.path, title=doc.title,
                       page_count=doc.page_count, chunk_count=doc.chunk_count, ingested_at=ingested,
                       file_url=f"/api/documents/{doc.id}/file")


def job_out(job: IngestJob) -> Job:
    """An ingest job as the API shows it; failures are [path, reason] pairs."""
    return Job(id=job.id, collection=job.collection, source=job.source, sync=job.sync, started_by=job.started_by,
               state=job.state, total=job.total, done=job.done, attempts=job.attempts, worker=job.worker,
               files=[JobFile(path=f.path, outcome=f.outcome, chunks=f.chunks, reason=f.reason) for f in job.files],
               failures=[[f.path, f.reason] for f in job.failures], summary=dict(job.summary), error=job.error,
               started=job.started, finished=job.finished)


def _document_routes(router: APIRouter, web: WebServices) -> None:
    @router.get("/api/documents", response_model=DocumentList, summary="Documents of readable collections")
    def documents(request: Request,
                  collection: Annotated[str | None, Query(max_length=100)] = None) -> DocumentList:
        found = web.catalog.documents(_principal(request), collection)
        return DocumentList(data=[document_out(doc) for doc in found])

    @router.get("/api/documents/{document_id}", response_model=DocumentOut, summary="One readable document")
    def document(document_id: Id, request: Request) -> DocumentOut:
        return document_out(web.library.document(_principal(request), document_id))

    @router.get("/api/documents/{document_id}/file", response_class=FileResponse, summary="The original file",
                responses={200: {"content": FILE_DOC, "description": "The file as it was ingested."}})
    def original(document_id: Id, request: Request) -> FileResponse:
        path = web.library.original_file(_principal(request), document_id)
        headers = {**NO_STORE, "content-security-policy": "sandbox; default-src 'none'"}
        return FileResponse(path, filename=path.name, content_disposition_type="attachment",
                            media_type="application/octet-stream", headers=headers)


def _job_routes(router: APIRouter, web: WebServices) -> None:
    @router.post("/api/ingest", response_model=JobStarted, status_code=202, summary="Ingest a folder (admins)")
    def ingest(body: IngestRequest, request: Request) -> JobStarted:
        job_id = web.jobs.start_folder(_principal(request), body.folder, body.collection, body.sync)
        return JobStarted(job_id=job_id, url=f"/api/jobs/{job_id}")

    @router.get("/api/jobs", response_model=list[Job], summary="Ingest jobs since the server started (admins)")
    def jobs(request: Request) -> list[Job]:
        return [job_out(job) for job in web.jobs.jobs(_principal(request))]

    @router.get("/api/jobs/{job_id}", response_model=Job, summary="An ingest job's progress (admins)")
    def job(job_id: Id, request: Request) -> Job:
        return job_out(web.jobs.job(_principal(request), job_id))


def api_router(web: WebServices) -> APIRouter:
    """Routes under ``/api`` (the OpenAPI description aside)."""
    router = APIRouter(tags=["api"], responses=ERRORS)

    @router.get("/api/status", response_model=Status, summary="Who you are, the model, what you may read")
    def status(request: Request) -> Status:
        principal = _principal(request)
        corpus = web.library.status(principal) if principal.is_admin else None
        return Status(user=principal.username, role=principal.role, model=web.runtime.model_label(),
                      collections=web.access.readable(principal), corpus=corpus)

    _document_routes(router, web)
    _job_routes(router, web)
    return router


def openapi_document(routers: list[APIRouter]) -> dict[str, Any]:
    """The OpenAPI description of the API routes, with the bearer scheme the gate enforces."""
    spec = get_openapi(title="Enclave API", version="1", description=DESCRIPTION,
                       routes=[route for router in routers for route in router.routes])
    for operations in spec.get("paths", {}).values():
        for operation in operations.values():
            operation.get("responses", {}).pop("422", None)  # validation errors answer 400 (ui.api_errors)
    components = spec.setdefault("components", {})
    components["securitySchemes"] = {
        "token": {"type": "http", "scheme": "bearer", "description": "A personal API token (enc_...)."},
        "session": {"type": "apiKey", "in": "cookie", "name": "enclave_session"},
    }
    spec["security"] = [{"token": []}, {"session": []}]
    return spec


def install_api(app: FastAPI, web: WebServices) -> None:
    """Add the ``/v1`` and ``/api`` routes, their JSON errors and ``/api/openapi.json`` to the app."""
    routers = [chat_router(web.chats, web.runtime), api_router(web), sources_router(web)]
    for router in routers:
        app.include_router(router)
    install_error_handlers(app)
    spec = openapi_document(routers)

    @app.get(OPENAPI_PATH, include_in_schema=False)
    def openapi() -> JSONResponse:
        return JSONResponse(spec)
