"""Stable identifiers shared by every service."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import StringConstraints

COMMUNITY_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"

#: A community id is part of every stable id, so it may not contain ``:``.
CommunityId = Annotated[str, StringConstraints(pattern=COMMUNITY_ID_PATTERN)]


def stable_id(platform: str, community_id: str, native_id: str) -> str:
    """Build ``platform:community:native_id``, the key that makes every write idempotent."""
    return f"{platform}:{community_id}:{native_id}"


def validate_community_id(community_id: str) -> None:
    """Reject a community id that could not be part of a stable id.

    Args:
        community_id: The id chosen for a community.

    Raises:
        ValueError: the id does not match ``COMMUNITY_ID_PATTERN``.
    """
    # fullmatch, because the pattern's "$" alone would let a trailing newline through.
    if not isinstance(community_id, str) or not re.fullmatch(COMMUNITY_ID_PATTERN, community_id):
        raise ValueError(
            f"invalid community id {community_id!r}: use 1 to 64 letters, digits, '.', '_' "
            "or '-', starting with a letter or digit"
        )
