"""One error shape for the whole HTTP API: ``{"error": {"code": ..., "message": ...}}``."""

from __future__ import annotations

import errno
import logging
import sqlite3

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

from chatbot.domain import InvalidInputError, NotFoundError

log = logging.getLogger(__name__)

_CODES = {
    400: "invalid_input",
    401: "not_authenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "rate_limited",
    503: "busy",
    507: "storage_full",
}
_FULL = ("database or disk is full", "no space left on device", "disk quota exceeded")
_READ_ONLY = ("readonly database", "read-only file system", "read only file system")


class ApiError(Exception):
    """An expected failure with an HTTP status, a stable code and a message for people."""

    def __init__(
        self, status: int, message: str, *, code: str = "", headers: dict[str, str] | None = None
    ) -> None:
        """Status, human message; the code defaults to the one for the status."""
        super().__init__(message)
        self.status = status
        self.code = code or _CODES.get(status, "error")
        self.message = message
        self.headers = headers or {}


class UnavailableError(RuntimeError):
    """A feature is not available in this server (e.g. uploads without an ingester)."""


def storage_problem(exc: BaseException) -> tuple[int, str, str] | None:
    """(status, code, message) when ``exc`` (or its cause) is a full or read-only disk.

    SQLite says "database or disk is full", the OS says ENOSPC or EROFS, LanceDB and pyarrow
    wrap the OS message in their own errors; all of them become one clear answer instead of a
    500 (tests/reliability H1).
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        number = getattr(current, "errno", None)
        text = str(current).lower()
        if number in (errno.ENOSPC, errno.EDQUOT) or any(m in text for m in _FULL):
            return 507, "storage_full", "the server's disk is full; nothing was changed, try later"
        if number == errno.EROFS or any(m in text for m in _READ_ONLY):
            return 503, "storage_read_only", "the server's storage is read-only; try later"
        current = current.__cause__ or current.__context__ or getattr(current, "orig", None)
    return None


def error_response(
    status: int, message: str, *, code: str = "", headers: dict[str, str] | None = None
) -> JSONResponse:
    """The JSON error body every failing route returns."""
    body = {"error": {"code": code or _CODES.get(status, "error"), "message": message}}
    return JSONResponse(body, status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    """Map exceptions to the error shape (domain errors, HTTP errors, validation, crashes)."""

    @app.exception_handler(ApiError)
    async def _api(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.message, code=exc.code, headers=exc.headers)

    @app.exception_handler(NotFoundError)
    async def _not_found(request: Request, exc: NotFoundError) -> JSONResponse:
        return error_response(404, str(exc) or "not found")

    @app.exception_handler(InvalidInputError)
    async def _invalid(request: Request, exc: InvalidInputError) -> JSONResponse:
        return error_response(400, str(exc))

    @app.exception_handler(UnavailableError)
    async def _unavailable(request: Request, exc: UnavailableError) -> JSONResponse:
        return error_response(503, str(exc), code="unavailable")

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(422, validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else "request failed"
        return error_response(exc.status_code, message, headers=dict(exc.headers or {}))

    async def _storage(request: Request, exc: Exception) -> JSONResponse:
        """A full or read-only disk is an expected condition: a clear answer, connection kept."""
        problem = storage_problem(exc)
        if problem is None:
            raise exc  # anything else is a crash: the handler below answers 500
        status, code, message = problem
        log.error("%s on %s %s: %s", code, request.method, request.url.path, exc)
        return error_response(status, message, code=code)

    for kind in (OSError, RuntimeError, sqlite3.Error, SQLAlchemyError):
        app.add_exception_handler(kind, _storage)  # type: ignore[arg-type]

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "internal server error", code="internal_error")


def validation_message(exc: RequestValidationError) -> str:
    """A one-line summary of what is wrong with the request, e.g. ``body.message: Field required``."""
    parts = []
    for error in exc.errors()[:3]:
        where = ".".join(str(p) for p in error.get("loc", ()) if p != "body") or "body"
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"
