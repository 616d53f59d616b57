"""One error base for the whole product, rendered as RFC 9457 problem+json by one set of handlers."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from backend.core.database import is_transient_db_error

logger = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://prompt-playground.dev/problems/"


class ProblemError(Exception):
    """A domain error that knows its HTTP status and stable problem type."""

    status: int = 400
    type: str = "bad-request"
    title: str = "Bad request"

    def __init__(
        self,
        detail: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        errors: list[dict[str, Any]] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.headers = headers or {}
        self.errors = errors
        self.extra = extra


class Unauthenticated(ProblemError):
    status, type, title = 401, "unauthenticated", "Authentication required"


class Forbidden(ProblemError):
    status, type, title = 403, "forbidden", "Forbidden"


class NotFound(ProblemError):
    status, type, title = 404, "not-found", "Not found"


class Conflict(ProblemError):
    status, type, title = 409, "conflict", "Conflict"


class Invalid(ProblemError):
    """A 422 raised by our own code for one named field."""

    status, type, title = 422, "validation-error", "Request validation failed"

    def __init__(self, loc: list[str | int], msg: str, **kwargs: Any) -> None:
        super().__init__(msg, errors=[{"loc": loc, "msg": msg}], **kwargs)


class InvalidFields(ProblemError):
    """A 422 raised by our own code for several fields at once, each (loc, msg)."""

    status, type, title = 422, "validation-error", "Request validation failed"

    def __init__(self, problems: list[tuple[list[str | int], str]]) -> None:
        fields = ", ".join(".".join(str(p) for p in loc) for loc, _ in problems[:5])
        super().__init__(f"Invalid request: {fields}", errors=[{"loc": loc, "msg": msg} for loc, msg in problems])


class TooManyRequests(ProblemError):
    status, type, title = 429, "rate-limited", "Too many requests"

    def __init__(self, detail: str, retry_after: float) -> None:
        seconds = max(1, int(retry_after + 0.999))
        super().__init__(detail, headers={"Retry-After": str(seconds)}, retry_after=seconds)


class PayloadTooLarge(ProblemError):
    status, type, title = 413, "payload-too-large", "Request body too large"


def problem_body(
    status: int, title: str, detail: str, type_: str, *, instance: str | None = None, **extra: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {"type": TYPE_BASE + type_, "title": title, "status": status, "detail": detail}
    if instance:
        body["instance"] = instance
    body.update({k: v for k, v in extra.items() if v is not None})
    return body


def problem_response(
    status: int,
    title: str,
    detail: str,
    type_: str,
    *,
    headers: dict[str, str] | None = None,
    instance: str | None = None,
    **extra: Any,
) -> JSONResponse:
    return JSONResponse(
        problem_body(status, title, detail, type_, instance=instance, **extra),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def _type_for_status(status: int) -> str:
    try:
        return HTTPStatus(status).phrase.lower().replace(" ", "-").replace("'", "")
    except ValueError:
        return "error"


def _clean_validation_errors(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # Only loc and msg: pydantic's "input" would echo submitted values (passwords, prompt text) back.
    return [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "invalid"))} for e in errors]


def install_problem_handlers(
    app: FastAPI, *, authenticate: Callable[[Request], Awaitable[None]], public_paths: frozenset[str]
) -> None:
    """`authenticate` raises a ProblemError (401) for a request without valid credentials."""

    @app.exception_handler(ProblemError)
    async def _problem(request: Request, exc: ProblemError) -> JSONResponse:
        return problem_response(
            exc.status,
            exc.title,
            exc.detail,
            exc.type,
            headers=exc.headers,
            instance=request.url.path,
            errors=exc.errors,
            **exc.extra,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        raw = list(exc.errors())
        # FastAPI parses a JSON body before running dependencies; an unparseable body must still get 401
        # when no credentials came with it, because authentication is decided before anything else.
        if request.url.path not in public_paths and any(e.get("type") == "json_invalid" for e in raw):
            try:
                await authenticate(request)
            except ProblemError as problem:
                return await _problem(request, problem)
        errors = _clean_validation_errors(raw)
        fields = ", ".join(".".join(str(p) for p in e["loc"]) for e in errors[:5])
        return problem_response(
            422,
            "Request validation failed",
            f"Invalid request: {fields}" if fields else "Invalid request",
            "validation-error",
            instance=request.url.path,
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        title = HTTPStatus(exc.status_code).phrase if exc.status_code in HTTPStatus._value2member_map_ else "Error"
        detail = exc.detail if isinstance(exc.detail, str) else title
        if exc.status_code == 400 and detail == "There was an error parsing the body":
            # FastAPI's words for a body json cannot decode; say which way it is wrong.
            cause = exc.__cause__
            if isinstance(cause, UnicodeDecodeError):
                detail = f"The request body is not valid UTF-8 (byte {cause.start}); send JSON encoded as UTF-8"
            elif isinstance(cause, RecursionError):
                detail = "The request body's JSON is nested too deeply"
            else:
                detail = "The request body could not be parsed as JSON"
        elif exc.status_code == 404 and detail == "Not Found":
            detail = f"No route matches {request.method} {request.url.path}"
        elif exc.status_code == 405:
            detail = f"{request.method} is not allowed on {request.url.path}"
        return problem_response(
            exc.status_code,
            title,
            detail,
            _type_for_status(exc.status_code),
            headers=getattr(exc, "headers", None),
            instance=request.url.path,
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        if is_transient_db_error(exc):
            # Overload or a database restart: say so, and when to come back, rather than "internal error".
            logger.warning("database unavailable on %s %s: %s", request.method, request.url.path, type(exc).__name__)
            return problem_response(
                503,
                "Service unavailable",
                "The database is busy or unreachable; try again shortly.",
                "service-unavailable",
                headers={"Retry-After": "1"},
                instance=request.url.path,
            )
        logger.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(
            500,
            "Internal server error",
            "An unexpected error occurred.",
            "internal-error",
            instance=request.url.path,
        )
