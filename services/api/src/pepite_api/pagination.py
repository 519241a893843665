"""Cursor pagination: stable under inserts, and cheap at any depth.

A cursor is the sort key of the last item returned, opaque to clients (URL-safe base64
of JSON). The next page continues strictly after it, so new messages never shift or
repeat items the way offsets would, and page 1,000 costs what page 1 costs.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel, Field

from pepite_api.problems import ProblemError

T = TypeVar("T")

LimitQuery = Annotated[int, Query(ge=1, le=200, description="Items per page.")]
CursorQuery = Annotated[
    str | None,
    Query(max_length=1000, description="`next_cursor` of the previous page; omit for the first."),
]


class Page(BaseModel, Generic[T]):
    """One page of a list; follow ``next_cursor`` until it is null."""

    items: list[T]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page.")


def encode_cursor(*values: Any) -> str:
    """A cursor after an item whose sort key is ``values`` (str, int, float or datetime)."""
    parts = [{"t": v.isoformat()} if isinstance(v, datetime) else v for v in values]
    raw = json.dumps(parts, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, *types: type) -> tuple[Any, ...]:
    """The sort key inside ``cursor``, one value of each of ``types``.

    Raises:
        ProblemError: 400 when the cursor was not made by :func:`encode_cursor` for a
            list sorted by values of these types.
    """
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        parts = json.loads(raw)
        if not isinstance(parts, list) or len(parts) != len(types):
            raise ValueError("wrong arity")
        values: list[Any] = []
        for part, expected in zip(parts, types, strict=True):
            value = datetime.fromisoformat(part["t"]) if isinstance(part, dict) else part
            if not isinstance(value, expected):
                raise TypeError("unexpected value")
            values.append(value)
        return tuple(values)
    except (ValueError, TypeError, KeyError, binascii.Error, json.JSONDecodeError):
        raise ProblemError(
            400, "invalid cursor: pass the next_cursor of a previous page unchanged"
        ) from None


def after_descending(field: str, value: Any, item_id: Any) -> dict[str, Any]:
    """A filter for items strictly after ``(value, item_id)`` in descending order."""
    return {"$or": [{field: {"$lt": value}}, {field: value, "_id": {"$lt": item_id}}]}


def page_of(items: list[T], limit: int, cursor_of: Any) -> Page[T]:
    """A page from ``limit + 1`` fetched items: the extra one says whether more follow."""
    if len(items) > limit:
        items = items[:limit]
        return Page(items=items, next_cursor=cursor_of(items[-1]))
    return Page(items=items, next_cursor=None)
