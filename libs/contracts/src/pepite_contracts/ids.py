"""Stable identifiers shared by every service."""

from __future__ import annotations

from typing import Annotated

from pydantic import StringConstraints

COMMUNITY_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"

#: A community id is part of every stable id, so it may not contain ``:``.
CommunityId = Annotated[str, StringConstraints(pattern=COMMUNITY_ID_PATTERN)]


def stable_id(platform: str, community_id: str, native_id: str) -> str:
    """Build ``platform:community:native_id``, the key that makes every write idempotent."""
    return f"{platform}:{community_id}:{native_id}"
