"""The moderation queue: flagged messages with their scores; a human decides."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path

from pepite_api.deps import AdminKey, DbDep, PublisherDep, ReadKey, SettingsDep, WriteKey
from pepite_api.moderation import Decision, ModerationItem, ModerationRepository, ModerationStatus
from pepite_api.pagination import (
    CursorQuery,
    LimitQuery,
    Page,
    decode_cursor,
    encode_cursor,
    page_of,
)
from pepite_api.problems import COMMON_RESPONSES, ProblemError
from pepite_api.routes.communities import CommunityIdPath
from pepite_api.routes.members import MemberIdPath, require_own_member
from pepite_api.strikes import StrikeRecommendation, StrikeRepository, StrikeRule, after_decision
from pepite_contracts import MessageKind

router = APIRouter(
    prefix="/v1/communities/{community_id}/moderation",
    tags=["moderation"],
    responses=COMMON_RESPONSES,
)

MessageIdPath = Annotated[str, Path(min_length=3, max_length=300)]


@router.get("", response_model=Page[ModerationItem])
async def moderation_queue(
    *,
    community_id: CommunityIdPath,
    _: ReadKey,
    db: DbDep,
    status: ModerationStatus | None = ModerationStatus.PENDING,
    kind: MessageKind | None = None,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> Page[ModerationItem]:
    """Flagged messages, most recently flagged first (pending ones by default)."""
    after = decode_cursor(cursor, datetime, str) if cursor else None
    items = await ModerationRepository(db).page(
        community_id, status=status, kind=kind, limit=limit + 1, after=after
    )
    return page_of(items, limit, lambda i: encode_cursor(i.flagged_at, i.message_id))


@router.get("/strike-rule", response_model=StrikeRule)
async def strike_rule(community_id: CommunityIdPath, _: ReadKey, db: DbDep) -> StrikeRule:
    """The community's strike rule: the step recommended at each confirmed violation."""
    # Declared before "/{message_id}", which would take "strike-rule" for a message id.
    return await StrikeRepository(db).rule(community_id)


@router.put("/strike-rule", response_model=StrikeRule)
async def set_strike_rule(
    community_id: CommunityIdPath, rule: StrikeRule, _: AdminKey, db: DbDep
) -> StrikeRule:
    """Change the community's strike rule (e.g. ``["warn", "mute", "ban"]``)."""
    return await StrikeRepository(db).set_rule(community_id, rule)


@router.get("/{message_id}", response_model=ModerationItem)
async def moderation_item(
    community_id: CommunityIdPath, message_id: MessageIdPath, _: ReadKey, db: DbDep
) -> ModerationItem:
    """One flagged message and its decisions."""
    item = await ModerationRepository(db).get(community_id, message_id)
    if item is None:
        raise ProblemError(404, f"message {message_id!r} is not in the moderation queue")
    return item


class DecidedItem(ModerationItem):
    """A decided item, with the author's strike when the decision confirms a violation."""

    strike: StrikeRecommendation | None = None


@router.post("/{message_id}/decision", response_model=DecidedItem)
async def decide(
    *,
    community_id: CommunityIdPath,
    message_id: MessageIdPath,
    decision: Decision,
    principal: WriteKey,
    db: DbDep,
    publisher: PublisherDep,
    settings: SettingsDep,
) -> DecidedItem:
    """Record a moderator's decision (a later one replaces it; the earlier is kept).

    A decision other than ``keep`` confirms a violation: the answer carries the
    author's strike (their confirmed violations and what the community's rule
    recommends), also sent as ``alert.raised`` (``moderation_strike``). Nothing is
    done on the platform: a moderator acts on the recommendation, or not.
    """
    item = await ModerationRepository(db).decide(
        community_id, message_id, decision, principal.key_id
    )
    if item is None:
        raise ProblemError(404, f"message {message_id!r} is not in the moderation queue")
    strike = await after_decision(
        db,
        publisher,
        settings,
        community_id,
        member_id=item.author.id,
        action=decision.action,
        channel=item.channel,
    )
    return DecidedItem(**item.model_dump(), strike=strike)


@router.get("/members/{member_id}/strikes", response_model=StrikeRecommendation)
async def member_strikes(
    community_id: CommunityIdPath, member_id: MemberIdPath, _: ReadKey, db: DbDep
) -> StrikeRecommendation:
    """A member's confirmed violations and what the community's rule recommends now."""
    require_own_member(community_id, member_id)
    return await StrikeRepository(db).standing(community_id, member_id)
