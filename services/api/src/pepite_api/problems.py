"""Errors over HTTP as problem+json (RFC 9457): one shape for every failure.

Handlers raise :class:`ProblemError` (or FastAPI's ``HTTPException``); validation
errors name the field at fault; anything unexpected becomes a 500 that reveals nothing.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response

logger = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


class FieldError(BaseModel):
    """One invalid part of a request."""

    location: str = Field(description="Where: e.g. query.limit, body.url, path.community_id.")
    message: str
    type: str


class Problem(BaseModel):
    """An error: what went wrong and, for invalid input, which field."""

    type: str = Field(default="about:blank", description="A URI naming the kind of problem.")
    title: str
    status: int
    detail: str | None = None
    instance: str | None = Field(default=None, description="The path of the request.")
    errors: list[FieldError] | None = None


class ProblemError(Exception):
    """Raise from a route to answer with a problem."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        title: str | None = None,
        type_: str = "about:blank",
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.title = title or HTTPStatus(status).phrase
        self.type = type_
        self.headers = headers or {}


def problem_response(
    request: Request,
    status: int,
    detail: str | None,
    *,
    title: str | None = None,
    type_: str = "about:blank",
    errors: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body = Problem(
        type=type_,
        title=title or HTTPStatus(status).phrase,
        status=status,
        detail=detail,
        instance=request.url.path,
        errors=errors,
    )
    return JSONResponse(
        body.model_dump(exclude_none=True),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def _location(loc: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(part) for part in loc)


def install_problem_handlers(app: FastAPI) -> None:
    """Answer every error of ``app`` with problem+json."""

    async def on_problem(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ProblemError)
        return problem_response(
            request, exc.status, exc.detail, title=exc.title, type_=exc.type, headers=exc.headers
        )

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        detail = exc.detail if isinstance(exc.detail, str) else None
        headers = dict(exc.headers) if exc.headers else None
        return problem_response(request, exc.status_code, detail, headers=headers)

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        # The offending input is not echoed back: it may be large, or a secret.
        errors = [
            FieldError(location=_location(e["loc"]), message=e["msg"], type=e["type"])
            for e in exc.errors()
        ]
        summary = "; ".join(f"{e.location}: {e.message}" for e in errors[:5])
        return problem_response(request, 422, f"invalid request: {summary}", errors=errors)

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        logger.exception("unhandled error", extra={"path": request.url.path})
        return problem_response(request, 500, "an unexpected error occurred; it was logged")

    app.add_exception_handler(ProblemError, on_problem)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(Exception, on_unexpected)


def _problem_response_doc(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


#: Errors any authenticated route may answer; documented so clients know their shape.
COMMON_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _problem_response_doc("The request is malformed (e.g. an invalid cursor)."),
    401: _problem_response_doc("No API key, or an unknown or revoked one."),
    403: _problem_response_doc("The key lacks the scope, or belongs to another community."),
    404: _problem_response_doc("Nothing found at this address."),
    413: _problem_response_doc("The request body is too large."),
    422: _problem_response_doc("A field of the request is invalid; `errors` says which."),
    429: _problem_response_doc("Too many requests for this key: wait `Retry-After` seconds."),
}

#: Extra errors of the few routes that can answer them.
CONFLICT_RESPONSE: dict[int | str, dict[str, Any]] = {
    409: _problem_response_doc("It exists already.")
}
GONE_RESPONSE: dict[int | str, dict[str, Any]] = {
    410: _problem_response_doc("The member was erased; nothing more is recorded about them.")
}
