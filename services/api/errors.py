"""The one mapping from palavra errors to HTTP: every error body is ``{"error", "detail", ...extra}``."""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from models.errors import (
    Conflict,
    DiskFull,
    IntegrityError,
    InvalidInput,
    NotFound,
    NotReady,
    PalavraError,
    TooLarge,
)

log = logging.getLogger(__name__)

STATUS_BY_ERROR: list[tuple[type[PalavraError], int]] = [
    (NotFound, 404),
    (InvalidInput, 422),
    (TooLarge, 413),
    (Conflict, 409),
    (NotReady, 503),
    (IntegrityError, 503),
]


def status_for(exc: PalavraError) -> int:
    for cls, status in STATUS_BY_ERROR:
        if isinstance(exc, cls):
            return status
    return 500


def allowed_methods(request: Request) -> str:
    """Every method some route answers on this request's path (the ``Allow`` header of a 405)."""
    methods: set[str] = set()
    pending: list[Any] = list(request.app.router.routes)
    while pending:
        route = pending.pop()
        nested = getattr(getattr(route, "original_router", route), "routes", None)  # an included router
        if nested is not None and route is not request.app.router:
            pending.extend(nested)
            continue
        regex, route_methods = getattr(route, "path_regex", None), getattr(route, "methods", None)
        if regex is not None and route_methods and regex.match(request.url.path):
            methods.update(route_methods)
    return ", ".join(sorted(methods))


def error_body(code: str, detail: str, **extra: object) -> dict[str, object]:
    return {"error": code, "detail": detail, **extra}


class ErrorResponse(JSONResponse):
    """An error body that always renders: a detail quoting a string that is not Unicode text (a lone surrogate
    from a JSON escape) is sent with ASCII escapes rather than failing as a 500."""

    def render(self, content: Any) -> bytes:
        try:
            return super().render(content)
        except UnicodeEncodeError:
            return json.dumps(content, separators=(",", ":")).encode("ascii")


def install_error_handlers(app: FastAPI) -> None:
    """Register handlers so that every error, ours or the framework's, answers in the same JSON shape."""

    @app.exception_handler(PalavraError)
    async def _palavra(_request: Request, exc: PalavraError) -> ErrorResponse:
        status = status_for(exc)
        if status >= 500 and status != 503:
            log.error("unexpected palavra error: %s", exc.detail)
        headers = {"Retry-After": "5"} if status == 503 else None
        return ErrorResponse(
            error_body(exc.code, exc.detail, **exc.extra), status_code=status, headers=headers
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> ErrorResponse:
        problems = []
        for err in exc.errors():
            if err.get("type") == "json_invalid":
                reason = (err.get("ctx") or {}).get("error", "")
                problems.append({"field": "body", "message": f"request body is not valid JSON ({reason})"})
                continue
            if tuple(err.get("loc", ())) == ("body",):
                if err.get("type") == "missing":
                    problems.append(
                        {"field": "body", "message": "the request has no body; send a JSON object"}
                    )
                    continue
                if isinstance(err.get("input"), bytes):
                    # the body was not read as JSON at all: say so, not "Input should be a valid dictionary"
                    given = request.headers.get("content-type")
                    sent = f"as {given}" if given else "without a Content-Type"
                    message = f"the body was sent {sent}; send JSON with Content-Type: application/json"
                    problems.append({"field": "body", "message": message})
                    continue
            loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
            message = str(err.get("msg", ""))
            problems.append({"field": loc, "message": message.removeprefix("Value error, ")})
        detail = "; ".join(f"{p['field']}: {p['message']}" if p["field"] else p["message"] for p in problems)
        return ErrorResponse(error_body("InvalidInput", detail or "invalid request", problems=problems), 422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> ErrorResponse:
        if exc.status_code == 400:  # the framework could not parse the body (e.g. not UTF-8)
            multipart = request.headers.get("content-type", "").startswith("multipart/")
            # a multipart form (a job with its files) that fails its limits is not fixed by sending JSON
            advice = "see docs/jobs.md for the form a job takes" if multipart else "send UTF-8 JSON"
            detail = f"the request body could not be read ({exc.detail}); {advice}"
            return ErrorResponse(error_body("InvalidInput", detail), status_code=422)
        codes = {
            404: "NotFound",
            405: "MethodNotAllowed",
            401: "Unauthorized",
            403: "Forbidden",
            413: "TooLarge",
        }
        headers = getattr(exc, "headers", None)
        if exc.status_code == 405:  # the router names only the first route's methods; a path may have several
            headers = {**(headers or {}), "Allow": allowed_methods(request)}
        return ErrorResponse(
            error_body(codes.get(exc.status_code, "HTTPError"), str(exc.detail)),
            status_code=exc.status_code,
            headers=headers,
        )

    @app.exception_handler(OSError)
    async def _os_error(request: Request, exc: OSError) -> ErrorResponse:
        full = DiskFull.from_os_error(exc)
        if full is not None:  # a write that ran out of space: retry later, as for any 503
            log.error("disk full: %s", exc)
            return await _palavra(request, full)
        return await _unexpected(request, exc)

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> ErrorResponse:
        log.exception("unhandled error", exc_info=exc)
        return ErrorResponse(
            error_body("InternalError", "an unexpected error occurred; it has been logged"), 500
        )
