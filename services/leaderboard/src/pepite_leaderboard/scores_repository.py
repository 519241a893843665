"""MongoDB side of the scores: stored messages read, contributions and rollups written.

Contributions are keyed by message id (a thanked message's bonus by the thanked
message's id), so a replayed or re-analyzed message replaces its contribution instead
of adding one. Rollups are never incremented: each member's day touched by a batch is
recomputed from its contributions and each month from its days, so replaying a batch,
or a crash between two writes, leaves the same numbers.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pymongo import DeleteOne, ReplaceOne, UpdateOne

from pepite_contracts import MessageKind
from pepite_kit import Database, IndexSpec
from pepite_leaderboard.scores_rules import (
    SOURCE_MESSAGE,
    SOURCE_THANKS,
    ChannelDay,
    Contribution,
    DayItem,
    Facts,
    Target,
    Thanks,
    bonus_id,
)
from pepite_reports.leaderboards import (
    CONTRIBUTIONS,
    COUNTS,
    DAILY,
    LEADERBOARD_INDEXES,
    MONTHLY,
    SEASONAL,
    Metric,
    Theme,
    counts_id,
    month_label,
    season_label,
)

MESSAGES = "messages"
#: Months whose rankings may have changed since the notifier last looked.
DIRTY = "leaderboard_dirty"
#: The top of each ranking as last announced.
TOPS = "leaderboard_tops"

SCORES_INDEXES = (
    *LEADERBOARD_INDEXES,
    # Erasure: the thanks a member gave, kept on other members' bonuses.
    IndexSpec(
        CONTRIBUTIONS,
        [("thanks.member_id", 1)],
        "thanks_member",
        partial_filter={"source": SOURCE_THANKS},
    ),
)

#: What is read of a stored message.
MESSAGE_FIELDS = {
    "community_id": 1,
    "channel.id": 1,
    "author.id": 1,
    "author.is_bot": 1,
    "created_at": 1,
    "reply_to_id": 1,
    "text": 1,
    "mentions.member_id": 1,
    "reactions.count": 1,
    "analysis.kind": 1,
    "analysis.moderation": 1,
    "erased_at": 1,
    "deleted_at": 1,
}

MemberDay = tuple[str, str, str]
MemberMonth = tuple[str, str, str]


def _kind(doc: Mapping[str, Any]) -> MessageKind | None:
    kind = (doc.get("analysis") or {}).get("kind")
    try:
        return MessageKind(kind) if kind else None
    except ValueError:
        return None


def risk_of(moderation: Mapping[str, Any] | None) -> float:
    """The highest of the scores that exclude a message."""
    scores = moderation or {}
    return max(
        (float(scores.get(k) or 0.0) for k in ("toxicity", "hate", "spam", "scam")), default=0.0
    )


def is_gone(doc: Mapping[str, Any]) -> bool:
    return doc.get("erased_at") is not None or doc.get("deleted_at") is not None


def target_of(doc: Mapping[str, Any]) -> Target:
    author = doc.get("author") or {}
    return Target(
        message_id=doc["_id"],
        author_id=author.get("id", ""),
        is_bot=bool(author.get("is_bot")),
        kind=_kind(doc),
        channel_id=(doc.get("channel") or {}).get("id", ""),
        created_at=doc["created_at"],
        gone=is_gone(doc),
    )


def facts_of(doc: Mapping[str, Any]) -> Facts | None:
    """A stored message as scoring sees it; ``None`` before it is analyzed."""
    kind = _kind(doc)
    if kind is None:
        return None
    author = doc.get("author") or {}
    return Facts(
        message_id=doc["_id"],
        community_id=doc["community_id"],
        channel_id=(doc.get("channel") or {}).get("id", ""),
        author_id=author.get("id", ""),
        is_bot=bool(author.get("is_bot")),
        created_at=doc["created_at"],
        kind=kind,
        risk=risk_of((doc.get("analysis") or {}).get("moderation")),
        text=doc.get("text") or "",
        reply_to_id=doc.get("reply_to_id"),
        mentioned=tuple(m["member_id"] for m in doc.get("mentions") or [] if m.get("member_id")),
        reactions=sum(int(r.get("count") or 0) for r in doc.get("reactions") or []),
        gone=is_gone(doc),
    )


def daily_id(community_id: str, member_id: str, day: str, channel_id: str) -> str:
    return f"{community_id}|{member_id}|{day}|{channel_id}"


def monthly_id(community_id: str, member_id: str, month: str) -> str:
    return f"{community_id}|{member_id}|{month}"


def _sums_group() -> dict[str, Any]:
    group: dict[str, Any] = {}
    for theme in Theme:
        group[f"p_{theme.value}"] = {"$sum": f"$points.{theme.value}"}
    for metric in Metric:
        if metric is not Metric.POINTS:
            group[f"m_{metric.value}"] = {"$sum": f"$metrics.{metric.value}"}
    return group


class ScoresRepository:
    """Every MongoDB call of the scores."""

    def __init__(self, db: Database) -> None:
        self._db = db

    # ----- reading messages -----

    async def messages(self, message_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Stored messages by id (the missing ones left out)."""
        ids = list(set(message_ids))
        if not ids:
            return {}
        cursor = self._db[MESSAGES].find({"_id": {"$in": ids}}, MESSAGE_FIELDS)
        return {doc["_id"]: doc async for doc in cursor}

    async def written_by(
        self, community_id: str, author_ids: Iterable[str], start: datetime, end: datetime
    ) -> list[Target]:
        """The authors' messages in ``[start, end)``, oldest first: one request for a
        whole batch's "which message did this thanks name" questions."""
        authors = sorted(set(author_ids))
        if not authors:
            return []
        cursor = self._db[MESSAGES].find(
            {
                "community_id": community_id,
                "author.id": {"$in": authors},
                "created_at": {"$gte": start, "$lt": end},
            },
            MESSAGE_FIELDS,
        )
        found = [target_of(doc) async for doc in cursor]
        found.sort(key=lambda t: (t.created_at, t.message_id))
        return found

    async def community_messages(
        self, community_id: str, *, after: tuple[datetime, str] | None, limit: int
    ) -> list[dict[str, Any]]:
        """A page of the community's analyzed messages, oldest first (for rebuilds)."""
        query: dict[str, Any] = {"community_id": community_id, "analysis.kind": {"$exists": True}}
        if after is not None:
            at, message_id = after
            query["$or"] = [
                {"created_at": {"$gt": at}},
                {"created_at": at, "_id": {"$gt": message_id}},
            ]
        cursor = (
            self._db[MESSAGES]
            .find(query, MESSAGE_FIELDS)
            .sort([("created_at", 1), ("_id", 1)])
            .limit(limit)
        )
        return [doc async for doc in cursor]

    # ----- contributions -----

    async def previous(self, contribution_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """What the messages gave before: their member, day and the bonus they credited."""
        ids = list(set(contribution_ids))
        if not ids:
            return {}
        cursor = self._db[CONTRIBUTIONS].find(
            {"_id": {"$in": ids}}, {"community_id": 1, "member_id": 1, "day": 1, "credit": 1}
        )
        return {doc["_id"]: doc async for doc in cursor}

    async def write(
        self,
        contributions: Sequence[Contribution],
        removed: Sequence[str],
        thanks: Sequence[Thanks],
        withdrawn: Sequence[tuple[str, str]],
    ) -> list[MemberDay]:
        """Store contributions, remove others, add and withdraw thanks.

        Args:
            contributions: Replace each message's contribution.
            removed: Message ids that no longer contribute (bots, gone messages).
            thanks: Thanks to add to their target's bonus.
            withdrawn: ``(bonus id, thanks message id)`` pairs to take back.

        Returns:
            The member days of the bonuses touched (the caller knows the others).
        """
        now = datetime.now(UTC)
        ops: list[Any] = []
        for c in contributions:
            ops.append(
                ReplaceOne(
                    {"_id": c.contribution_id},
                    {
                        "community_id": c.community_id,
                        "member_id": c.member_id,
                        "channel_id": c.channel_id,
                        "day": c.day,
                        "month": c.month,
                        "at": c.at,
                        "message_id": c.message_id,
                        "kind": c.kind,
                        "source": SOURCE_MESSAGE,
                        "points": c.points,
                        # Provisional: the day's recompute applies the cap.
                        "counted": c.points,
                        "metrics": c.metrics,
                        "reason": c.reason,
                        "excluded": c.excluded,
                        "credit": c.credit,
                        "updated_at": now,
                    },
                    upsert=True,
                )
            )
        ops.extend(DeleteOne({"_id": message_id}) for message_id in removed)
        touched: set[MemberDay] = set()
        for bonus, message_id in withdrawn:
            ops.append(UpdateOne({"_id": bonus}, {"$pull": {"thanks": {"message_id": message_id}}}))
        for t in thanks:
            target = t.target
            day = target.created_at.date()
            ops.append(
                UpdateOne(
                    {"_id": bonus_id(target.message_id)},
                    {
                        "$setOnInsert": {
                            "community_id": t.community_id,
                            "member_id": target.author_id,
                            "channel_id": target.channel_id,
                            "day": day.isoformat(),
                            "month": month_label(day),
                            # Just after the message: the bonus follows it under the cap.
                            "at": target.created_at + timedelta(microseconds=1),
                            "message_id": target.message_id,
                            "kind": target.kind.value if target.kind else "",
                            "source": SOURCE_THANKS,
                            "points": {},
                            "counted": {},
                            "metrics": {},
                            "reason": "",
                            "excluded": None,
                        },
                        "$addToSet": {
                            "thanks": {"message_id": t.message_id, "member_id": t.thanker}
                        },
                    },
                    upsert=True,
                )
            )
            touched.add((t.community_id, target.author_id, day.isoformat()))
        if ops:
            await self._db[CONTRIBUTIONS].bulk_write(ops, ordered=True)
        if withdrawn:
            cursor = self._db[CONTRIBUTIONS].find(
                {"_id": {"$in": list({b for b, _ in withdrawn})}},
                {"community_id": 1, "member_id": 1, "day": 1},
            )
            touched.update([(d["community_id"], d["member_id"], d["day"]) async for d in cursor])
        return sorted(touched)

    async def days(self, keys: Sequence[MemberDay]) -> dict[MemberDay, list[dict[str, Any]]]:
        """The contributions of each member day."""
        found: dict[MemberDay, list[dict[str, Any]]] = {key: [] for key in keys}
        by_community: dict[str, list[MemberDay]] = defaultdict(list)
        for key in keys:
            by_community[key[0]].append(key)
        for community_id, community_keys in by_community.items():
            members = sorted({k[1] for k in community_keys})
            day_values = sorted({k[2] for k in community_keys})
            cursor = self._db[CONTRIBUTIONS].find(
                {
                    "community_id": community_id,
                    "member_id": {"$in": members},
                    "day": {"$in": day_values},
                },
                {
                    "member_id": 1,
                    "day": 1,
                    "channel_id": 1,
                    "at": 1,
                    "source": 1,
                    "points": 1,
                    "counted": 1,
                    "metrics": 1,
                    "thanks": 1,
                },
            )
            async for doc in cursor:
                key = (community_id, doc["member_id"], doc["day"])
                if key in found:
                    found[key].append(doc)
        return found

    async def save_days(
        self,
        recounted: Mapping[str, dict[str, float]],
        bonuses: Mapping[str, tuple[dict[str, float], dict[str, int], str]],
        days: Mapping[MemberDay, Sequence[ChannelDay]],
        stored: Iterable[str],
    ) -> None:
        """Write the counted points that changed, the bonuses' points, and the days.

        Args:
            recounted: Contributions' counted points after the caps.
            bonuses: Thanked messages' bonus points, counts and reason.
            days: Each member day's channels.
            stored: The day rollups stored for these member days before
                (:meth:`daily_ids`); those of channels left without anything are removed.
        """
        ops: list[Any] = [
            UpdateOne({"_id": cid}, {"$set": {"counted": counted}})
            for cid, counted in recounted.items()
        ]
        for cid, (points, metrics, reason) in bonuses.items():
            ops.append(
                UpdateOne(
                    {"_id": cid}, {"$set": {"points": points, "metrics": metrics, "reason": reason}}
                )
            )
        daily: list[Any] = []
        keep: set[str] = set()
        for (community_id, member_id, day), channels in days.items():
            month = day[:7]
            for channel in channels:
                rollup_id = daily_id(community_id, member_id, day, channel.channel_id)
                keep.add(rollup_id)
                daily.append(
                    ReplaceOne(
                        {"_id": rollup_id},
                        {
                            "community_id": community_id,
                            "member_id": member_id,
                            "day": day,
                            "month": month,
                            "channel_id": channel.channel_id,
                            "points": channel.points,
                            "metrics": channel.metrics,
                        },
                        upsert=True,
                    )
                )
        # Channels where a member's day has nothing left (a message removed or recounted).
        daily.extend(DeleteOne({"_id": i}) for i in stored if i not in keep)
        # The two collections are written at once: neither write reads the other.
        writes = []
        if ops:
            writes.append(self._db[CONTRIBUTIONS].bulk_write(ops, ordered=False))
        if daily:
            writes.append(self._db[DAILY].bulk_write(daily, ordered=False))
        await asyncio.gather(*writes)

    async def daily_ids(self, keys: Iterable[MemberDay]) -> list[str]:
        """The ids of the day rollups (one per channel) stored for these member days."""
        by_community: dict[str, list[MemberDay]] = defaultdict(list)
        for key in keys:
            by_community[key[0]].append(key)
        wanted = {
            daily_id(c, m, d, "") for c, m, d in (k for ks in by_community.values() for k in ks)
        }
        ids: list[str] = []
        for community_id, community_keys in by_community.items():
            cursor = (
                self._db[DAILY]
                .find(
                    {
                        "community_id": community_id,
                        "member_id": {"$in": sorted({k[1] for k in community_keys})},
                        "month": {"$in": sorted({k[2][:7] for k in community_keys})},
                        "day": {"$in": sorted({k[2] for k in community_keys})},
                    },
                    {"_id": 1},
                )
                .hint("member_month")
            )
            ids.extend(
                [doc["_id"] async for doc in cursor if doc["_id"].rsplit("|", 1)[0] + "|" in wanted]
            )
        return ids

    async def recompute_months(self, keys: Iterable[MemberMonth]) -> None:
        """Each member month's rollup from its days (removed when no day is left)."""
        by_community: dict[str, set[MemberMonth]] = defaultdict(set)
        for key in keys:
            by_community[key[0]].add(key)
        for community_id, wanted in by_community.items():
            members = sorted({k[1] for k in wanted})
            months = sorted({k[2] for k in wanted})
            cursor = await self._db[DAILY].aggregate(
                [
                    {
                        "$match": {
                            "community_id": community_id,
                            "member_id": {"$in": members},
                            "month": {"$in": months},
                        }
                    },
                    {"$group": {"_id": {"m": "$member_id", "month": "$month"}, **_sums_group()}},
                ]
            )
            found: dict[MemberMonth, dict[str, Any]] = {}
            async for doc in cursor:
                key = (community_id, doc["_id"]["m"], doc["_id"]["month"])
                if key in wanted:
                    found[key] = doc
            ops: list[Any] = []
            for key in sorted(wanted):
                _, member_id, month = key
                row = found.get(key)
                if row is None:
                    ops.append(DeleteOne({"_id": monthly_id(community_id, member_id, month)}))
                    continue
                points = {
                    t.value: round(row[f"p_{t.value}"], 4) for t in Theme if row[f"p_{t.value}"]
                }
                metrics = {
                    m.value: int(row[f"m_{m.value}"])
                    for m in Metric
                    if m is not Metric.POINTS and row[f"m_{m.value}"]
                }
                ops.append(
                    ReplaceOne(
                        {"_id": monthly_id(community_id, member_id, month)},
                        {
                            "community_id": community_id,
                            "member_id": member_id,
                            "month": month,
                            "points": points,
                            "metrics": metrics,
                        },
                        upsert=True,
                    )
                )
            if ops:
                await self._db[MONTHLY].bulk_write(ops, ordered=False)
            seasons = await self._recompute_seasons(
                community_id, {(m, month) for _, m, month in wanted}
            )
            await self.recount(community_id, months=months, seasons=seasons)

    async def _recompute_seasons(self, community_id: str, keys: set[tuple[str, str]]) -> list[str]:
        """Each touched member season's rollup from its (at most three) months; returns
        the seasons touched."""
        seasons = {
            (member, season_label(date.fromisoformat(month + "-01"))) for member, month in keys
        }
        months = sorted(
            {
                f"{season[:4]}-{3 * (int(season[-1]) - 1) + offset:02d}"
                for _, season in seasons
                for offset in (1, 2, 3)
            }
        )
        cursor = self._db[MONTHLY].find(
            {
                "community_id": community_id,
                "member_id": {"$in": sorted({m for m, _ in seasons})},
                "month": {"$in": months},
            },
            {"member_id": 1, "month": 1, "points": 1, "metrics": 1},
        )
        sums: dict[tuple[str, str], tuple[dict[str, float], dict[str, int]]] = {}
        async for doc in cursor:
            key = (doc["member_id"], season_label(date.fromisoformat(doc["month"] + "-01")))
            if key not in seasons:
                continue
            points, metrics = sums.setdefault(key, ({}, {}))
            for name, value in (doc.get("points") or {}).items():
                points[name] = round(points.get(name, 0.0) + float(value), 4)
            for name, count in (doc.get("metrics") or {}).items():
                metrics[name] = metrics.get(name, 0) + int(count)
        ops: list[Any] = []
        for member_id, season in sorted(seasons):
            season_id = f"{community_id}|{member_id}|{season}"
            found = sums.get((member_id, season))
            if found is None:
                ops.append(DeleteOne({"_id": season_id}))
                continue
            doc = {
                "community_id": community_id,
                "member_id": member_id,
                "season": season,
                "points": found[0],
                "metrics": found[1],
            }
            ops.append(ReplaceOne({"_id": season_id}, doc, upsert=True))
        if ops:
            await self._db[SEASONAL].bulk_write(ops, ordered=False)
        return sorted({season for _, season in seasons})

    async def recount(
        self, community_id: str, *, months: Iterable[str], seasons: Iterable[str]
    ) -> None:
        """Count again, per theme, the members with points in these months and seasons.

        Counted from the rollups as they now are (never incremented), on the index each
        ranking is read from: a replayed batch or a crash before this write leaves the
        same counts once the batch is scored again.
        """
        periods = [(MONTHLY, "month", m) for m in months]
        periods += [(SEASONAL, "season", s) for s in seasons]

        async def count(collection: str, key: str, label: str, theme: Theme) -> int:
            reply = await self._db.command(
                {
                    "count": collection,
                    "query": {
                        "community_id": community_id,
                        key: label,
                        f"points.{theme.value}": {"$gt": 0},
                    },
                    "hint": f"{key}_{theme.value}",
                }
            )
            return int(reply["n"])

        wanted = [(p, theme) for p in periods for theme in Theme]
        counted = await asyncio.gather(*(count(*p, theme) for p, theme in wanted))
        members: dict[str, dict[str, int]] = defaultdict(dict)
        for ((_, _, label), theme), n in zip(wanted, counted, strict=True):
            members[label][theme.value] = n
        now = datetime.now(UTC)
        ops = [
            ReplaceOne(
                {"_id": counts_id(community_id, label)},
                {
                    "community_id": community_id,
                    "period": label,
                    "members": by_theme,
                    "counted_at": now,
                },
                upsert=True,
            )
            for label, by_theme in members.items()
        ]
        if ops:
            await self._db[COUNTS].bulk_write(ops, ordered=False)

    async def recount_all(self, community_id: str) -> None:
        """Count again the members of every month and season of the community."""
        months, seasons = await asyncio.gather(
            self._db[MONTHLY].distinct("month", {"community_id": community_id}),
            self._db[SEASONAL].distinct("season", {"community_id": community_id}),
        )
        # Periods left without anyone are counted too (zero), not left at their old count.
        known = await self._db[COUNTS].distinct("period", {"community_id": community_id})
        months = sorted({str(m) for m in months} | {str(p) for p in known if "-Q" not in p})
        seasons = sorted({str(s) for s in seasons} | {str(p) for p in known if "-Q" in p})
        await self.recount(community_id, months=months, seasons=seasons)

    async def mark_dirty(self, months: Iterable[tuple[str, str]]) -> None:
        """Remember that these (community, month) rankings may have changed."""
        now = datetime.now(UTC)
        ops = [
            UpdateOne(
                {"_id": f"{community_id}|{month}"},
                {"$set": {"community_id": community_id, "month": month, "touched_at": now}},
                upsert=True,
            )
            for community_id, month in sorted(set(months))
        ]
        if ops:
            await self._db[DIRTY].bulk_write(ops, ordered=False)

    async def mark_dirty_all_months(self, community_id: str) -> None:
        months = await self._db[MONTHLY].distinct("month", {"community_id": community_id})
        await self.mark_dirty((community_id, str(month)) for month in months)

    async def dirty(self) -> list[dict[str, Any]]:
        """The (community, month) rankings that may have changed, oldest touch first."""
        cursor = self._db[DIRTY].find().sort("touched_at", 1).limit(1000)
        return [doc async for doc in cursor]

    async def clear_dirty(self, dirty_id: str, touched_at: datetime) -> None:
        """Forget a change once looked at, unless it was touched again meanwhile."""
        await self._db[DIRTY].delete_one({"_id": dirty_id, "touched_at": touched_at})

    async def last_top(self, top_id: str) -> dict[str, Any] | None:
        return await self._db[TOPS].find_one({"_id": top_id})

    async def save_top(
        self, top_id: str, community_id: str, top: list[dict[str, Any]], at: datetime
    ) -> None:
        await self._db[TOPS].replace_one(
            {"_id": top_id},
            {"community_id": community_id, "top": top, "published_at": at},
            upsert=True,
        )

    # ----- rebuild and erasure -----

    async def clear_community(self, community_id: str) -> None:
        for collection in (CONTRIBUTIONS, DAILY, MONTHLY, SEASONAL, COUNTS):
            await self._db[collection].delete_many({"community_id": community_id})

    async def erase(self, community_id: str, member_id: str, pseudonym: str) -> list[MemberDay]:
        """Remove the member's contributions and rollups; their thanks on others' messages
        keep counting under the pseudonym. Returns the member days to recompute."""
        query = {"community_id": community_id, "member_id": member_id}
        # Announced tops may name them: those of the community are announced afresh.
        await self._db[TOPS].delete_many({"community_id": community_id, "top.member_id": member_id})
        await self._db[CONTRIBUTIONS].delete_many(query)
        await self._db[DAILY].delete_many(query)
        await self._db[MONTHLY].delete_many(query)
        await self._db[SEASONAL].delete_many(query)
        cursor = self._db[CONTRIBUTIONS].find(
            {"community_id": community_id, "source": SOURCE_THANKS, "thanks.member_id": member_id},
            {"member_id": 1, "day": 1},
        )
        touched = [(community_id, d["member_id"], d["day"]) async for d in cursor]
        if touched:
            await self._db[CONTRIBUTIONS].update_many(
                {
                    "community_id": community_id,
                    "source": SOURCE_THANKS,
                    "thanks.member_id": member_id,
                },
                {"$set": {"thanks.$[t].member_id": pseudonym}},
                array_filters=[{"t.member_id": member_id}],
            )
        return touched


def day_items(docs: Sequence[Mapping[str, Any]]) -> list[DayItem]:
    """Stored contributions as the daily cap sees them."""
    return [
        DayItem(
            contribution_id=doc["_id"],
            channel_id=doc.get("channel_id", ""),
            at=doc["at"],
            points={k: float(v) for k, v in (doc.get("points") or {}).items()},
            metrics={k: int(v) for k, v in (doc.get("metrics") or {}).items()},
            counted={k: float(v) for k, v in (doc.get("counted") or {}).items()},
        )
        for doc in docs
    ]
