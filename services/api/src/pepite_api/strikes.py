"""Moderation strikes: a member's confirmed violations against the community's rule.

A violation is confirmed by a human: a moderator's decision on a flagged message other
than ``keep`` (remove, warn, mute, ban). Each time a decision confirms one, the member's
confirmed violations are counted and the community's rule (default: warn, warn, then
recommend a ban) says what to recommend. The recommendation is returned with the
decision, listed per member, and announced as ``alert.raised`` (kind
``moderation_strike``) for a moderator. It stays a recommendation: Pépite never bans,
mutes or warns anyone by itself, and records no decision a human did not take.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from pepite_api.moderation import MODERATION_ITEMS, ModerationAction, ModerationStatus
from pepite_contracts import (
    AlertNotice,
    AlertRaised,
    ChannelRef,
    Topic,
    community_key,
    deterministic_event_id,
    encode_event,
)
from pepite_kit import Database, EventPublisher, IndexSpec, KafkaSettings
from pepite_kit.metrics import ALERTS_RAISED

STRIKE_RULES = "moderation_strike_rules"
STRIKE_ALERT_KIND = "moderation_strike"

STRIKE_INDEXES = (
    IndexSpec(
        MODERATION_ITEMS,
        [("community_id", 1), ("author.id", 1), ("status", 1)],
        "community_author_status",
    ),
)

#: Decisions that confirm a violation (``keep`` says the message was fine).
VIOLATIONS = frozenset(
    {ModerationAction.REMOVE, ModerationAction.WARN, ModerationAction.MUTE, ModerationAction.BAN}
)


class StrikeStep(StrEnum):
    """What a moderator is advised to do at a strike."""

    WARN = "warn"
    MUTE = "mute"
    BAN = "ban"


class StrikeRule(BaseModel):
    """The community's rule: the step recommended at the 1st, 2nd... confirmed
    violation; past the last, the last again."""

    model_config = ConfigDict(extra="forbid")

    steps: list[StrikeStep] = Field(
        default_factory=lambda: [StrikeStep.WARN, StrikeStep.WARN, StrikeStep.BAN],
        min_length=1,
        max_length=20,
    )


DEFAULT_RULE = StrikeRule()


class StrikeRecommendation(BaseModel):
    """What the rule recommends for a member now; a moderator decides."""

    member_id: str
    violations: int = Field(description="Confirmed violations (human decisions) so far.")
    recommendation: StrikeStep | None = Field(
        description="The step the rule recommends; null without a confirmed violation."
    )
    message_ids: list[str] = Field(description="The messages of the confirmed violations.")
    rule: list[StrikeStep]
    automatic: Literal[False] = Field(
        default=False, description="Always false: Pépite recommends, a moderator acts."
    )


def recommend(violations: int, rule: StrikeRule) -> StrikeStep | None:
    """The rule's step at the ``violations``-th confirmed violation (None at zero)."""
    if violations <= 0:
        return None
    return rule.steps[min(violations, len(rule.steps)) - 1]


class StrikeRepository:
    """Reads confirmed violations from the moderation queue; keeps communities' rules."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def rule(self, community_id: str) -> StrikeRule:
        doc = await self._db[STRIKE_RULES].find_one({"_id": community_id})
        return DEFAULT_RULE if doc is None else StrikeRule(steps=doc["steps"])

    async def set_rule(self, community_id: str, rule: StrikeRule) -> StrikeRule:
        await self._db[STRIKE_RULES].update_one(
            {"_id": community_id},
            {"$set": {"steps": [s.value for s in rule.steps], "updated_at": datetime.now(UTC)}},
            upsert=True,
        )
        return rule

    async def violations(self, community_id: str, member_id: str) -> list[str]:
        """Ids of the member's messages a moderator confirmed as violations, oldest first."""
        cursor = (
            self._db[MODERATION_ITEMS]
            .find(
                {
                    "community_id": community_id,
                    "author.id": member_id,
                    "status": ModerationStatus.DECIDED.value,
                    "decision.action": {"$in": [a.value for a in VIOLATIONS]},
                },
                {"_id": 1},
            )
            .sort([("created_at", 1), ("_id", 1)])
        )
        return [doc["_id"] async for doc in cursor]

    async def standing(self, community_id: str, member_id: str) -> StrikeRecommendation:
        """The member's confirmed violations and what the rule recommends now."""
        rule = await self.rule(community_id)
        message_ids = await self.violations(community_id, member_id)
        return StrikeRecommendation(
            member_id=member_id,
            violations=len(message_ids),
            recommendation=recommend(len(message_ids), rule),
            message_ids=message_ids,
            rule=rule.steps,
        )


def strike_alert(
    community_id: str, strike: StrikeRecommendation, channel: ChannelRef | None
) -> AlertRaised:
    """The alert for a moderator; one per member and strike count, however often sent."""
    step = strike.recommendation.value if strike.recommendation else "none"
    alert_id = f"{STRIKE_ALERT_KIND}:{community_id}:{strike.member_id}:{strike.violations}"
    return AlertRaised(
        event_id=deterministic_event_id("alert.raised", alert_id, step),
        community_id=community_id,
        payload=AlertNotice(
            alert_id=alert_id,
            kind=STRIKE_ALERT_KIND,
            severity="critical" if strike.recommendation is StrikeStep.BAN else "warning",
            title=f"Strike {strike.violations}: the community's rule recommends: {step}",
            detail=(
                f"{strike.violations} confirmed violations by this member. This is a"
                " recommendation for a moderator; nothing was done on the platform."
            ),
            channel=channel,
            metrics={"violations": float(strike.violations)},
            message_ids=strike.message_ids,
            member_id=strike.member_id,
        ),
    )


async def after_decision(
    db: Database,
    publisher: EventPublisher,
    settings: KafkaSettings,
    community_id: str,
    *,
    member_id: str,
    action: ModerationAction,
    channel: ChannelRef | None,
) -> StrikeRecommendation | None:
    """The member's strike after a decision; announced when it confirms a violation."""
    if action not in VIOLATIONS:
        return None
    strike = await StrikeRepository(db).standing(community_id, member_id)
    if strike.violations == 0:
        return None
    event = strike_alert(community_id, strike, channel)
    await publisher.send(
        settings.topic_name(Topic.NOTIFICATIONS),
        encode_event(event),
        key=community_key(community_id),
    )
    await publisher.flush()
    ALERTS_RAISED.labels(kind=event.payload.kind, severity=event.payload.severity).inc()
    return strike
