"""The API's one translation of errors: JSON bodies in OpenAI's shape, ``{"error": {"message", "type"}}``."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from ui.api_models import ErrorBody
from ui.gate import is_api_path
from ui.plain_page import error_page

KINDS = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
         404: "not_found_error", 405: "invalid_request_error", 503: "model_unavailable"}
PAGE_MESSAGES = {404: "There is no page at this address.", 405: "This page cannot be used that way."}
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "The request is malformed; the message says what to fix."},
    401: {"model": ErrorBody, "description": "No API token or session, or the token is invalid or revoked."},
    403: {"model": ErrorBody, "description": "The caller may not do this (role or collection grants)."},
    404: {"model": ErrorBody, "description": "No such object, or the caller may not read it."},
}


def error_response(status: int, message: str, param: str | None = None) -> JSONResponse:
    """An error body with the status it goes with."""
    detail = {"message": message, "type": KINDS.get(status, "server_error"), "param": param, "code": None}
    return JSONResponse({"error": detail}, status_code=status, headers={"cache-control": "no-store"})


def _validation_message(exc: RequestValidationError) -> tuple[str, str | None]:
    errors = exc.errors()
    if not errors:
        return "the request is not valid", None
    first = errors[0]
    where = ".".join(str(part) for part in first.get("loc", ()) if part != "body") or None
    message = str(first.get("msg", "is not valid"))
    return (f"{where}: {message}" if where else message), where


def install_error_handlers(app: FastAPI) -> None:
    """Validation errors and HTTP errors on API paths become 400/404/405 error bodies; elsewhere the app's pages."""

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        message, param = _validation_message(exc)
        if not is_api_path(request.url.path):
            return error_page(422, f"the request is not valid: {message}")
        return error_response(400, message, param)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        if not is_api_path(request.url.path):
            page = error_page(exc.status_code, PAGE_MESSAGES.get(exc.status_code, str(exc.detail)))
            page.headers.update(exc.headers or {})  # 405's Allow
            return page
        message = "there is no such API route" if exc.status_code == 404 else str(exc.detail)
        return error_response(exc.status_code, message)
