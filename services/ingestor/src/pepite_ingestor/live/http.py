"""HTTP pieces every live endpoint shares: problem answers, bounded bodies, signed times."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

_PROBLEM_TYPE = "urn:pepite:problem:"
_PROBLEM_MEDIA_TYPE = "application/problem+json"


def problem(
    status: int,
    slug: str,
    title: str,
    detail: str,
    *,
    headers: Mapping[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    """An RFC 9457 problem+json answer.

    Args:
        status: The HTTP status.
        slug: Short name of the problem type, e.g. ``"invalid-signature"``.
        title: The problem type in a few words (the same for every occurrence).
        detail: What is wrong with this request.
        headers: Extra response headers.
        **extensions: More members of the problem object.

    Returns:
        The response.
    """
    body = {
        "type": _PROBLEM_TYPE + slug,
        "title": title,
        "status": status,
        "detail": detail,
        **extensions,
    }
    return JSONResponse(body, status_code=status, media_type=_PROBLEM_MEDIA_TYPE, headers=headers)


class BodyTooLargeError(Exception):
    """The body is over the limit."""


async def read_body(request: Request, limit: int) -> bytes:
    """The body, read as it streams in and abandoned as soon as it passes ``limit``.

    Content-Length is checked first, but a client may lie or stream chunked, so
    the bytes are counted too.

    Raises:
        BodyTooLargeError: the body is longer than ``limit`` bytes.
    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.strip().isdigit() and int(declared) > limit:
        raise BodyTooLargeError
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLargeError
        chunks.append(chunk)
    return b"".join(chunks)


def timestamp_problem(
    timestamp: str | None, *, header: str, window_s: int, stale: str
) -> str | None:
    """What is wrong with a signed request's timestamp header, or None if it is fresh.

    Args:
        timestamp: The header's value, None when it is missing.
        header: The header's name, for the message.
        window_s: How far from now (either way) the timestamp may be.
        stale: The message for a timestamp outside the window.
    """
    if timestamp is None:
        return f"missing {header} header (unix seconds)"
    try:
        stamp = int(timestamp.strip())
    except ValueError:
        return f"{header} must be unix seconds, got {timestamp!r}"
    # Either way: a stale request may be a replay, one from the future a skewed clock.
    if abs(time.time() - stamp) > window_s:
        return stale
    return None
