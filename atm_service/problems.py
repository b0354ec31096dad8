"""One place that turns errors into responses.

API paths (``/api/...``) get RFC 9457 problem details
(``application/problem+json``); web pages get an HTML error page, and a web
request without a session is sent to the login page. No response ever carries
a traceback: unexpected errors are logged with a reference the user can quote.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from atm_service.context import AppContext
from atm_service.db import is_unavailable
from atm_service.errors import (
    AccountLocked,
    DatabaseUnavailable,
    NotAuthenticated,
    ServiceError,
    TooManyRequests,
)

logger = logging.getLogger("atm_service.errors")

# How long a client is asked to wait before sending a request again that found the
# database away: long enough for a restart or a fail-over to finish, short enough
# that agents catch up at once.
DATABASE_RETRY_AFTER_S = 2

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_BASE = "/problems/"


class ProblemField(BaseModel):
    """One invalid input: where it was, which field, what is wrong."""

    location: str
    field: str
    message: str


class Problem(BaseModel):
    """RFC 9457 problem details; extension members (e.g. ``expected_offset``) may follow."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[ProblemField] | None = None


# Answered in problem details, not pages: the API, its document, probes and metrics.
_MACHINE_PATHS = frozenset({"/openapi.json", "/healthz", "/readyz", "/metrics"})


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/") or request.url.path in _MACHINE_PATHS


def problem_response(
    request: Request,
    *,
    status: int,
    title: str,
    detail: str,
    slug: str | None = None,
    errors: Sequence[ProblemField] | None = None,
    headers: dict[str, str] | None = None,
    extensions: dict[str, object] | None = None,
) -> Response:
    if not _is_api(request):
        context: AppContext = request.app.state.context
        return context.templates.TemplateResponse(
            request,
            "error.html",
            {"status": status, "title": title, "detail": detail, "errors": errors or []},
            status_code=status,
            headers=headers,
        )
    body = Problem(
        type=PROBLEM_BASE + slug if slug else "about:blank",
        title=title,
        status=status,
        detail=detail,
        instance=request.url.path,
        errors=list(errors) if errors else None,
        **(extensions or {}),
    )
    return JSONResponse(
        body.model_dump(exclude_none=True),
        status_code=status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=headers,
    )


def _field_name(loc: Sequence[Any]) -> str:
    parts = [str(part) for part in loc[1:]] if len(loc) > 1 else [str(part) for part in loc]
    return ".".join(parts) or "(body)"


def validation_fields(exc: RequestValidationError) -> list[ProblemField]:
    fields = []
    for error in exc.errors():
        loc = tuple(error.get("loc", ()))
        location = str(loc[0]) if loc else "body"
        if error.get("type") == "json_invalid":
            reason = (error.get("ctx") or {}).get("error", "malformed JSON")
            fields.append(
                ProblemField(
                    location="body",
                    field="(body)",
                    message=f"The request body is not valid JSON: {reason}.",
                )
            )
            continue
        message = str(error.get("msg", "invalid value"))
        if error.get("type") == "missing":
            message = "This field is required."
        fields.append(ProblemField(location=location, field=_field_name(loc), message=message))
    return fields


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""

    async def on_service_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ServiceError)
        if isinstance(exc, NotAuthenticated) and not _is_api(request) and request.method == "GET":
            target = quote(
                request.url.path + ("?" + request.url.query if request.url.query else "")
            )
            return RedirectResponse(f"/login?next={target}", status_code=303)
        headers: dict[str, str] = {}
        if isinstance(exc, TooManyRequests | DatabaseUnavailable):
            headers["Retry-After"] = str(exc.retry_after_s)
        if isinstance(exc, AccountLocked):
            headers["Retry-After"] = "60"
        errors = None
        if exc.field is not None:
            errors = [ProblemField(location="body", field=exc.field, message=exc.detail)]
        return problem_response(
            request,
            status=exc.status,
            title=exc.title,
            detail=exc.detail,
            slug=exc.slug,
            errors=errors,
            headers=headers or None,
            extensions=exc.extensions,
        )

    async def on_validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        fields = validation_fields(exc)
        detail = "; ".join(f"{f.field}: {f.message}" for f in fields) or "Invalid request."
        return problem_response(
            request,
            status=422,
            title="Invalid input",
            detail=detail,
            slug="validation-error",
            errors=fields,
        )

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 400:
            # The framework could not read the body at all (bytes that are not UTF-8
            # JSON, a broken multipart envelope): an invalid input like malformed JSON.
            reason = exc.detail if isinstance(exc.detail, str) else "unreadable body"
            message = f"The request body could not be read ({reason.rstrip('.')})."
            return problem_response(
                request,
                status=422,
                title="Invalid input",
                detail=message,
                slug="validation-error",
                errors=[ProblemField(location="body", field="(body)", message=message)],
            )
        titles = {404: "Not found", 405: "Method not allowed", 413: "Payload too large"}
        detail = exc.detail if isinstance(exc.detail, str) else "Request failed."
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"There is nothing at {request.url.path}."
        if exc.status_code == 405:
            detail = f"{request.method} is not allowed on {request.url.path}."
        return problem_response(
            request,
            status=exc.status_code,
            title=titles.get(exc.status_code, "Request failed"),
            detail=detail,
            headers=dict(exc.headers) if exc.headers else None,
        )

    async def on_out_of_range(request: Request, exc: Exception) -> Response:
        # Inputs are bounded where they are declared; this catches a value that still
        # does not fit a column (the driver's overflow, PostgreSQL's data errors).
        logger.warning(
            "a request value does not fit the database",
            exc_info=exc,
            extra={"path": request.url.path},
        )
        return problem_response(
            request,
            status=422,
            title="Invalid input",
            detail="A value in the request cannot be stored: a number too large, a text too "
            "long, or a text with a NUL character (\\u0000).",
            slug="validation-error",
        )

    async def on_database_error(request: Request, exc: Exception) -> Response:
        """The driver's errors: a database that is away becomes a 503 to retry; any other
        (a bug: bad SQL, a broken constraint nobody expected) is unexpected."""
        if not is_unavailable(exc):
            return await on_unexpected(request, exc)
        logger.warning(
            "database unavailable: %s",
            type(getattr(exc, "orig", None) or exc).__name__,
            extra={"path": request.url.path},
        )
        unavailable = DatabaseUnavailable(
            "The database cannot be reached at the moment; nothing was changed that you "
            f"can rely on. Send the request again in {DATABASE_RETRY_AFTER_S} seconds.",
            retry_after_s=DATABASE_RETRY_AFTER_S,
        )
        return await on_service_error(request, unavailable)

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        reference = getattr(request.state, "request_id", None) or uuid.uuid4().hex[:12]
        logger.error(
            "unhandled error",
            exc_info=exc,
            extra={"reference": reference, "request_id": reference, "path": request.url.path},
        )
        return problem_response(
            request,
            status=500,
            title="Internal error",
            detail=f"Something went wrong on our side; quote reference {reference}.",
            slug="internal-error",
            headers={"X-Request-ID": reference},
        )

    app.add_exception_handler(ServiceError, on_service_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(OverflowError, on_out_of_range)
    app.add_exception_handler(DataError, on_out_of_range)
    app.add_exception_handler(sa.exc.DBAPIError, on_database_error)
    app.add_exception_handler(sa.exc.TimeoutError, on_database_error)
    app.add_exception_handler(Exception, on_unexpected)
