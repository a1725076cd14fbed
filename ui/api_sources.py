"""``/api/sources``: folders kept in step with a collection, for admins' scripts (the admin page's service)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Request, Response
from pydantic import BaseModel, Field

from assistant.audit import Principal
from assistant.sources import Source, SourceRun
from assistant.web_services import WebServices
from ui.api_errors import ERRORS

Name = Annotated[str, Path(min_length=1, max_length=100)]


class SourceIn(BaseModel):
    """A folder to follow: where, into which collection, when, and which files."""

    name: str = Field(max_length=100)
    folder: str = Field(max_length=4096, description="A folder under web.ingest_roots on the server.")
    collection: str = Field(max_length=100)
    schedule: str | None = Field(None, max_length=100,
                                 description="'every 15m' (s, m, h, d) or a cron expression in UTC.")
    include: list[str] = Field(default_factory=list, max_length=100, description="Globs of files to take.")
    exclude: list[str] = Field(default_factory=list, max_length=100, description="Globs of files and folders to leave.")
    max_file_mb: float | None = Field(None, gt=0, le=1_000_000)
    max_removal_share: float | None = Field(None, ge=0, le=1, description="Hold a run that would remove more.")


class SourceRunOut(BaseModel):
    """One run: when, why, what it did, each failed file with its reason, and each phase's seconds."""

    job: int
    trigger: str = Field(description="schedule, change, manual or confirm.")
    state: str = Field(description="queued, running, done, held, failed or interrupted.")
    started: datetime | None
    finished: datetime | None
    counts: dict[str, int]
    phases: dict[str, float]
    failures: list[list[str]] = Field(description="[path, reason] pairs.")
    reason: str | None = Field(description="Why it was held or failed.")


class SourceOut(BaseModel):
    """A source with the state of its runs; ``held`` says why its last run removed nothing."""

    name: str
    collection: str
    folder: str
    schedule: str
    include: list[str]
    exclude: list[str]
    max_file_mb: float | None
    max_removal_share: float
    enabled: bool
    queued: bool
    running: bool
    held: str | None
    last_run: SourceRunOut | None


class RunQueued(BaseModel):
    """A run asked for: its job, and whether it joined one already queued."""

    job_id: int
    queued: bool = Field(description="False when a run was queued already and this request joined it.")
    url: str


def run_out(run: SourceRun) -> SourceRunOut:
    """A run as the API shows it."""
    return SourceRunOut(job=run.job, trigger=run.trigger, state=run.state, started=run.started, finished=run.finished,
                        counts=dict(run.counts), phases=dict(run.phases),
                        failures=[[f.path, f.reason] for f in run.failures], reason=run.reason)


def source_out(source: Source) -> SourceOut:
    """A source as the API shows it."""
    return SourceOut(name=source.name, collection=source.collection, folder=source.folder, schedule=source.schedule,
                     include=list(source.include), exclude=list(source.exclude), max_file_mb=source.max_file_mb,
                     max_removal_share=source.max_removal_share, enabled=source.enabled, queued=source.queued,
                     running=source.running, held=source.held,
                     last_run=run_out(source.last_run) if source.last_run else None)


def _principal(request: Request) -> Principal:
    principal: Principal = request.state.principal
    return principal


def _queued(job: int, new: bool) -> RunQueued:
    return RunQueued(job_id=job, queued=new, url=f"/api/jobs/{job}")


def sources_router(web: WebServices) -> APIRouter:
    """Routes under ``/api/sources`` (admins only, as on the admin page)."""
    router = APIRouter(tags=["sources"], responses=ERRORS)
    sources = web.sources

    @router.get("/api/sources", response_model=list[SourceOut], summary="Every source (admins)")
    def list_sources(request: Request) -> list[SourceOut]:
        return [source_out(s) for s in sources.sources(_principal(request))]

    @router.post("/api/sources", response_model=SourceOut, status_code=201, summary="Register a source (admins)")
    def add(body: SourceIn, request: Request) -> SourceOut:
        return source_out(sources.add(_principal(request), body.name, body.folder, body.collection, body.schedule,
                                      body.include, body.exclude, body.max_file_mb, body.max_removal_share))

    @router.get("/api/sources/{name}", response_model=SourceOut, summary="One source (admins)")
    def one(name: Name, request: Request) -> SourceOut:
        return source_out(sources.source(_principal(request), name))

    @router.get("/api/sources/{name}/runs", response_model=list[SourceRunOut], summary="A source's runs (admins)")
    def runs(name: Name, request: Request) -> list[SourceRunOut]:
        return [run_out(r) for r in sources.runs(_principal(request), name)]

    @router.post("/api/sources/{name}/sync", response_model=RunQueued, status_code=202, summary="Run now (admins)")
    def sync(name: Name, request: Request) -> RunQueued:
        return _queued(*sources.sync(_principal(request), name))

    @router.post("/api/sources/{name}/confirm", response_model=RunQueued, status_code=202,
                 summary="Let a held source remove what is gone (admins)")
    def confirm(name: Name, request: Request) -> RunQueued:
        return _queued(sources.confirm(_principal(request), name), True)

    @router.post("/api/sources/{name}/pause", response_model=SourceOut, summary="Pause a source (admins)")
    def pause(name: Name, request: Request) -> SourceOut:
        return source_out(sources.set_enabled(_principal(request), name, False))

    @router.post("/api/sources/{name}/resume", response_model=SourceOut, summary="Resume a source (admins)")
    def resume(name: Name, request: Request) -> SourceOut:
        return source_out(sources.set_enabled(_principal(request), name, True))

    @router.delete("/api/sources/{name}", status_code=204, response_class=Response,
                   summary="Forget a source; its documents stay (admins)")
    def remove(name: Name, request: Request) -> Response:
        sources.remove(_principal(request), name)
        return Response(status_code=204)

    return router
