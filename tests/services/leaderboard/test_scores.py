"""Leaderboards on hand-built scenarios with known answers, on the real MongoDB and broker.

Alice answers ten questions of other members and five of them thank her: she ranks
first on helpfulness with 10 x 3 + 5 x 2 = 40 points. A bot answering more never ranks;
answering or thanking oneself gives nothing; spam, toxic messages and a burst past the
daily cap add nothing; replaying, reordering or re-analyzing messages changes nothing
that should not change; an erased member disappears.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tests.kafka_helpers import read_topic
from typer.testing import CliRunner

from pepite_contracts import (
    Analysis,
    AnalyzedMessage,
    ChannelRef,
    LeaderboardUpdated,
    Member,
    MemberErased,
    MemberErasure,
    MessageAnalyzed,
    MessageKind,
    ModerationScores,
    Platform,
    Topic,
    all_topics,
    decode_event,
    encode_event,
    partition_key,
)
from pepite_kit import Database, EventPublisher, KafkaSettings, ensure_topics, event_loop_for
from pepite_kit.mongo import ensure_indexes
from pepite_leaderboard.leaderboard_cli import app as cli_app
from pepite_leaderboard.scores_handlers import ScoresHandler
from pepite_leaderboard.scores_notices import LeaderboardNotifier
from pepite_leaderboard.scores_repository import SCORES_INDEXES, ScoresRepository
from pepite_leaderboard.scores_service import DEFAULT_DAILY_CAPS, ScoreUpdater, ScoringPolicy
from pepite_reports.leaderboards import (
    CONTRIBUTIONS,
    DAILY,
    MONTHLY,
    SEASONAL,
    LeaderboardConfigRepository,
    LeaderboardEvent,
    LeaderboardReader,
    Metric,
    Theme,
    TitleRule,
    competition_ranks,
    month_period,
    named_period,
    plan_rollups,
    range_period,
)

pytestmark = pytest.mark.asyncio

COMMUNITY = "acme"
START = datetime(2024, 5, 6, 9, tzinfo=UTC)
Q, A, G = MessageKind.QUESTION, MessageKind.ANSWER, MessageKind.GRATITUDE


def member_id(name: str, community: str = COMMUNITY) -> str:
    return f"discord:{community}:{name}"


@dataclass
class Chat:
    """Messages of a community, stored as the classifier stores them, and their events."""

    community: str = COMMUNITY
    docs: list[dict[str, Any]] = field(default_factory=list)
    events: list[MessageAnalyzed] = field(default_factory=list)

    def say(
        self,
        author: str,
        kind: MessageKind,
        at: datetime,
        *,
        text: str = "",
        reply_to: str | None = None,
        mentions: tuple[str, ...] = (),
        reactions: int = 0,
        bot: bool = False,
        toxicity: float = 0.0,
        channel: str = "c1",
    ) -> str:
        message_id = f"discord:{self.community}:{len(self.docs) + 1}"
        author_ref = Member(
            id=member_id(author, self.community), native_id=author, name=author, is_bot=bot
        )
        analysis = Analysis(kind=kind, moderation=ModerationScores(toxicity=toxicity))
        self.docs.append(
            {
                "_id": message_id,
                "community_id": self.community,
                "channel": {"id": channel, "name": channel},
                "author": author_ref.model_dump(),
                "text": text or f"{kind.value} from {author}",
                "created_at": at,
                "reply_to_id": reply_to,
                "mentions": [
                    {"member_id": member_id(m, self.community), "name": m} for m in mentions
                ],
                "reactions": [{"emoji": "👍", "count": reactions}] if reactions else [],
                "analysis": analysis.model_dump(mode="json"),
            }
        )
        self.events.append(
            MessageAnalyzed(
                community_id=self.community,
                payload=AnalyzedMessage(
                    message_id=message_id,
                    platform=Platform.DISCORD,
                    community_id=self.community,
                    channel=ChannelRef(id=channel, name=channel),
                    reply_to_id=reply_to,
                    author=author_ref,
                    created_at=at,
                    analysis=analysis,
                    analyzed_at=at,
                ),
            )
        )
        return message_id

    async def store(self, db: Database) -> None:
        await db["messages"].insert_many(self.docs)
        members = {d["author"]["id"]: d["author"] for d in self.docs}
        await db["members"].insert_many(
            [{"_id": k, "community_id": self.community, **v} for k, v in members.items()]
        )


def helpful_community() -> Chat:
    """Alice answers 10 questions (one a day) and is thanked 5 times; Bob answers 12 times
    to no one; Carol answers 4 questions; a bot answers 20; Dave answers and thanks
    himself."""
    chat = Chat()
    for n in range(10):
        day = START + timedelta(days=n)
        asker = f"asker{n}"
        question = chat.say(asker, Q, day)
        answer = chat.say("alice", A, day + timedelta(minutes=5), reply_to=question)
        if n < 5:
            chat.say(asker, G, day + timedelta(minutes=9), text="thanks!", reply_to=answer)
    for n in range(12):
        chat.say("bob", A, START + timedelta(days=n % 6, hours=3, minutes=n))
    for n in range(4):
        question = chat.say(f"asker{n}", Q, START + timedelta(days=n, hours=5))
        chat.say("carol", A, START + timedelta(days=n, hours=5, minutes=2), reply_to=question)
    for n in range(20):
        question = chat.say(f"asker{n % 10}", Q, START + timedelta(days=n % 10, hours=7))
        chat.say(
            "helpbot",
            A,
            START + timedelta(days=n % 10, hours=7, seconds=5),
            reply_to=question,
            bot=True,
        )
    own = chat.say("dave", Q, START + timedelta(hours=8))
    reply = chat.say("dave", A, START + timedelta(hours=8, minutes=1), reply_to=own)
    chat.say("dave", G, START + timedelta(hours=8, minutes=2), text="thanks me", reply_to=reply)
    return chat


async def until_scored(db: Database) -> None:
    """Wait until the consumer has scored Alice's answers and thanks."""
    expected = [(member_id("alice"), 40.0)]
    for _ in range(600):
        if (await board(db, Theme.HELPFULNESS))[:1] == expected:
            return
        await asyncio.sleep(0.1)


def updater(db: Database, **caps: float) -> ScoreUpdater:
    return ScoreUpdater(
        ScoresRepository(db), ScoringPolicy(daily_caps={**DEFAULT_DAILY_CAPS, **caps})
    )


async def scored(db: Database, chat: Chat, *, batch: int = 50, **caps: float) -> ScoresHandler:
    await ensure_indexes(db, SCORES_INDEXES)
    await chat.store(db)
    handler = ScoresHandler(updater(db, **caps))
    for start in range(0, len(chat.events), batch):
        await handler(chat.events[start : start + batch])
    return handler


async def board(db: Database, theme: Theme, period: str = "2024-05") -> list[tuple[str, float]]:
    return await LeaderboardReader(db).scores(COMMUNITY, theme, named_period(period))


async def snapshot(db: Database) -> dict[str, list[dict[str, Any]]]:
    """Every rollup and contribution's points, without write times."""
    found: dict[str, list[dict[str, Any]]] = {}
    for name in (DAILY, MONTHLY, SEASONAL, CONTRIBUTIONS):
        projection = {"updated_at": 0, "thanks": 0}
        found[name] = await db[name].find({}, projection).sort("_id", 1).to_list()
    return found


async def test_a_member_who_answers_ten_questions_and_is_thanked_five_times_ranks_first(
    mongo_db: Database,
) -> None:
    await scored(mongo_db, helpful_community())
    ranking = await board(mongo_db, Theme.HELPFULNESS)
    assert ranking[0] == (member_id("alice"), 40.0)
    assert dict(ranking)[member_id("carol")] == 12.0
    assert dict(ranking)[member_id("bob")] == 12.0
    reader = LeaderboardReader(mongo_db)
    standing, _ = await reader.standing(
        COMMUNITY, member_id("alice"), Theme.HELPFULNESS, month_period("2024-05")
    )
    assert standing.rank == 1
    assert standing.metrics[Metric.ANSWERS] == 10
    assert standing.metrics[Metric.ACCEPTED_ANSWERS] == 5
    assert standing.metrics[Metric.THANKS_RECEIVED] == 5
    assert {t.title_id for t in standing.titles} == {"helping-hand"}
    # The explanation adds up to the score: ten answers and five thanked ones.
    assert sum(c.counted for c in standing.contributions) == 40.0
    assert sum(c.source == "thanks" for c in standing.contributions) == 5
    # The community decides that five accepted answers make a Sage.
    await LeaderboardConfigRepository(mongo_db).set_titles(
        COMMUNITY,
        [
            TitleRule(
                title_id="sage",
                name="Sage",
                theme=Theme.HELPFULNESS,
                metric=Metric.ACCEPTED_ANSWERS,
                threshold=5,
            )
        ],
    )
    page, _ = await reader.leaderboard(COMMUNITY, Theme.HELPFULNESS, month_period("2024-05"))
    assert [t.title_id for t in page.entries[0].titles] == ["sage"]
    assert page.entries[1].titles == []


async def test_a_bot_never_ranks_and_self_replies_give_nothing(mongo_db: Database) -> None:
    chat = helpful_community()
    # Thanking the bot's answers, and a spammer's message, earns their authors nothing.
    bot_answer = next(e.payload for e in chat.events if e.payload.author.is_bot)
    later = START + timedelta(days=20)
    chat.say("asker0", G, later, text="thanks bot", reply_to=bot_answer.message_id)
    spam = chat.say("spammer", MessageKind.SPAM, later + timedelta(minutes=1))
    chat.say("asker1", G, later + timedelta(minutes=2), text="thx", reply_to=spam)
    await scored(mongo_db, chat)
    assert await mongo_db[CONTRIBUTIONS].count_documents({"source": "thanks"}) == 5
    bot, dave = member_id("helpbot"), member_id("dave")
    for theme in Theme:
        members = dict(await board(mongo_db, theme))
        assert bot not in members, theme
    # Dave's question counts as activity; his answer to it and his thanks to himself do not.
    assert dict(await board(mongo_db, Theme.ACTIVITY))[dave] == 1.0
    assert dave not in dict(await board(mongo_db, Theme.HELPFULNESS))
    assert dave not in dict(await board(mongo_db, Theme.KINDNESS))
    assert await mongo_db[CONTRIBUTIONS].count_documents({"member_id": bot}) == 0
    reasons = [
        c.reason
        for c in await LeaderboardReader(mongo_db).contributions(
            COMMUNITY, dave, Theme.HELPFULNESS, month_period("2024-05")
        )
    ]
    assert reasons == ["reply to one's own message: counts for nothing"] * 2


async def test_flagged_messages_and_bursts_past_the_daily_cap_count_for_nothing(
    mongo_db: Database,
) -> None:
    chat = Chat()
    chat.say("spammer", MessageKind.SPAM, START, text="buy now")
    chat.say("troll", MessageKind.TOXIC, START + timedelta(minutes=1))
    chat.say("rude", A, START + timedelta(minutes=2), mentions=("eve",), toxicity=0.95)
    # 30 answers to Eve in one morning: 60 points, capped at 40 on the day; the next day
    # starts afresh.
    for n in range(30):
        chat.say("burst", A, START + timedelta(minutes=10 + n), mentions=("eve",))
    chat.say("burst", A, START + timedelta(days=1), mentions=("eve",))
    await scored(mongo_db, chat, batch=7)
    ranking = dict(await board(mongo_db, Theme.HELPFULNESS))
    assert ranking == {member_id("burst"): 42.0}
    activity = dict(await board(mongo_db, Theme.ACTIVITY))
    assert set(activity) == {member_id("burst")}
    items = await LeaderboardReader(mongo_db).contributions(
        COMMUNITY, member_id("burst"), Theme.HELPFULNESS, month_period("2024-05")
    )
    # The first 20 answers of the day count, in the order they were written.
    assert [c.counted for c in items[:21]] == [2.0] * 20 + [0.0]
    assert sum(c.counted for c in items) == 42.0
    standing, _ = await LeaderboardReader(mongo_db).standing(
        COMMUNITY, member_id("burst"), Theme.HELPFULNESS, month_period("2024-05")
    )
    # Answers past the cap earn no title either.
    assert standing.metrics[Metric.ANSWERS] == 21
    assert standing.metrics[Metric.MESSAGES] == 31
    spam = await LeaderboardReader(mongo_db).contributions(
        COMMUNITY, member_id("spammer"), Theme.ACTIVITY, month_period("2024-05")
    )
    assert spam[0].reason.startswith("flagged spam")


async def test_replays_late_thanks_and_reanalysis_leave_the_right_scores(
    mongo_db: Database,
) -> None:
    chat = helpful_community()
    thanks = [e for e in chat.events if e.payload.analysis.kind is G]
    others = [e for e in chat.events if e.payload.analysis.kind is not G]
    await ensure_indexes(mongo_db, SCORES_INDEXES)
    await chat.store(mongo_db)
    handler = ScoresHandler(updater(mongo_db))
    # Thanks first (analyzed before the answers they thank), then the rest.
    await handler(thanks)
    await handler(others)
    assert (await board(mongo_db, Theme.HELPFULNESS))[0] == (member_id("alice"), 40.0)
    first = await snapshot(mongo_db)
    # Replayed, whole and in other batches: nothing counts twice.
    await handler(chat.events)
    for start in range(0, len(chat.events), 3):
        await handler(chat.events[start : start + 3])
    assert await snapshot(mongo_db) == first
    # A thanks re-analyzed as small talk no longer thanks: its bonus is taken back.
    social = thanks[0].payload.model_copy(update={"analysis": Analysis(kind=MessageKind.SOCIAL)})
    await mongo_db["messages"].update_one(
        {"_id": social.message_id}, {"$set": {"text": "ok", "analysis.kind": "social"}}
    )
    await handler([MessageAnalyzed(community_id=COMMUNITY, payload=social)])
    assert (await board(mongo_db, Theme.HELPFULNESS))[0] == (member_id("alice"), 38.0)


async def test_an_erased_member_disappears_and_their_thanks_keep_no_trace_of_them(
    mongo_db: Database,
) -> None:
    handler = await scored(mongo_db, helpful_community())
    erasure = MemberErasure(
        member_id=member_id("asker0"),
        community_id=COMMUNITY,
        pseudonym="erased-1",
        requested_at=START + timedelta(days=40),
    )
    alice = member_id("alice")
    await handler([MemberErased(community_id=COMMUNITY, payload=erasure)])
    await handler([MemberErased(community_id=COMMUNITY, payload=erasure)])
    for name in (CONTRIBUTIONS, DAILY, MONTHLY, SEASONAL):
        assert await mongo_db[name].count_documents({"member_id": erasure.member_id}) == 0
    assert (
        await mongo_db[CONTRIBUTIONS].count_documents({"thanks.member_id": erasure.member_id}) == 0
    )
    for theme in Theme:
        assert erasure.member_id not in dict(await board(mongo_db, theme))
    # Alice keeps the thanks the erased member gave her (not required to go).
    assert dict(await board(mongo_db, Theme.HELPFULNESS))[alice] == 40.0
    alice_erased = erasure.model_copy(update={"member_id": alice, "pseudonym": "erased-2"})
    await handler([MemberErased(community_id=COMMUNITY, payload=alice_erased)])
    assert alice not in dict(await board(mongo_db, Theme.HELPFULNESS))


async def test_months_seasons_ranges_and_channel_events(mongo_db: Database) -> None:
    chat = Chat()
    april, may = datetime(2024, 4, 28, 12, tzinfo=UTC), datetime(2024, 5, 3, 12, tzinfo=UTC)
    for n in range(3):
        chat.say("ann", MessageKind.RESOURCE, april + timedelta(hours=n), channel="c1")
    for n in range(2):
        chat.say("ben", MessageKind.RESOURCE, may + timedelta(hours=n), channel="c2")
    chat.say("ann", MessageKind.RESOURCE, datetime(2024, 7, 1, 12, tzinfo=UTC), channel="c2")
    await scored(mongo_db, chat)
    ann, ben = member_id("ann"), member_id("ben")
    reader = LeaderboardReader(mongo_db)
    assert dict(await board(mongo_db, Theme.SHARING, "2024-04")) == {ann: 9.0}
    assert await board(mongo_db, Theme.SHARING, "2024-Q2") == [(ann, 9.0), (ben, 6.0)]
    assert await board(mongo_db, Theme.SHARING, "2024-Q3") == [(ann, 3.0)]
    partial = range_period(datetime(2024, 4, 29).date(), datetime(2024, 7, 1).date())
    assert plan_rollups(partial).months == ("2024-05", "2024-06")
    # Ann's April messages fall before the range; her July one is in.
    assert await reader.scores(COMMUNITY, Theme.SHARING, partial) == [(ben, 6.0), (ann, 3.0)]
    config = LeaderboardConfigRepository(mongo_db)
    event = LeaderboardEvent(
        event_id="spring-jam",
        name="Spring jam",
        first=datetime(2024, 4, 1).date(),
        last=datetime(2024, 7, 31).date(),
        channels=["c2"],
    )
    await config.put_event(COMMUNITY, event)
    stored = await config.event(COMMUNITY, "spring-jam")
    assert stored == event
    assert await reader.scores(COMMUNITY, Theme.SHARING, stored.period()) == [
        (ben, 6.0),
        (ann, 3.0),
    ]


@pytest.mark.filterwarnings("ignore:The test <Function")
def test_ranks_and_rollup_plans() -> None:
    assert competition_ranks([("a", 5), ("b", 3), ("c", 3), ("d", 1)]) == [
        (1, "a", 5),
        (2, "b", 3),
        (2, "c", 3),
        (4, "d", 1),
    ]
    plan = plan_rollups(range_period(datetime(2024, 1, 15).date(), datetime(2024, 4, 2).date()))
    assert plan.months == ("2024-02", "2024-03")
    assert [(a.isoformat(), b.isoformat()) for a, b in plan.day_ranges] == [
        ("2024-01-15", "2024-01-31"),
        ("2024-04-01", "2024-04-02"),
    ]
    whole = plan_rollups(range_period(datetime(2024, 4, 1).date(), datetime(2024, 7, 31).date()))
    assert (whole.seasons, whole.months, whole.day_ranges) == (("2024-Q2",), ("2024-07",), ())
    with pytest.raises(ValueError, match="2024-13"):
        named_period("2024-13")


async def test_scores_follow_the_topic_and_changes_are_announced_once(
    mongo_db: Database, kafka_settings: KafkaSettings, db_name: str, stack: Any
) -> None:
    await ensure_topics(kafka_settings, kafka_settings.topic_names(all_topics()))
    await ensure_indexes(mongo_db, SCORES_INDEXES)
    chat = helpful_community()
    await chat.store(mongo_db)
    topic = kafka_settings.topic_name(Topic.MESSAGES_ANALYZED)
    notifications = kafka_settings.topic_name(Topic.NOTIFICATIONS)
    async with EventPublisher(kafka_settings) as publisher:
        for event in chat.events:
            key = partition_key(COMMUNITY, event.payload.channel.id)
            await publisher.send(topic, encode_event(event), key=key)
        await publisher.flush()
        loop = event_loop_for(
            name="scores",
            settings=kafka_settings,
            group_id=f"{kafka_settings.kafka_topic_prefix}scores",
            handlers={topic: ScoresHandler(updater(mongo_db))},
            publisher=publisher,
        )
        task = asyncio.create_task(loop.run())
        try:
            async with asyncio.timeout(60):
                await until_scored(mongo_db)
        finally:
            loop.stop()
            await task
        notifier = LeaderboardNotifier(
            mongo_db, publisher, notifications_topic=notifications, interval_s=60, top_size=3
        )
        sent = await notifier.run_once()
        assert await notifier.run_once() == 0
    # Every theme with points, for the month and its season.
    assert sent == 2 * 3
    notices = [decode_event(v) for v in await read_topic(kafka_settings, notifications)]
    assert len(notices) == sent
    helpfulness = [
        n
        for n in notices
        if isinstance(n, LeaderboardUpdated)
        and n.payload.leaderboard_id == "acme:helpfulness:2024-05"
    ]
    assert len(helpfulness) == 1
    assert helpfulness[0].payload.top[0]["member_id"] == member_id("alice")
    assert helpfulness[0].payload.top[0]["points"] == 40.0
    # The command line reads the same ranking.
    # (In a thread: the command runs its own event loop.)
    result = await asyncio.to_thread(
        CliRunner().invoke,
        cli_app,
        [
            *("--community", COMMUNITY, "--theme", "helpfulness"),
            *("--from", "2024-05-01", "--to", "2024-05-31", "--format", "json"),
        ],
        env={"PEPITE_MONGODB_DB": db_name, "MONGODB_URI": stack.mongodb_uri},
    )
    assert result.exit_code == 0, result.output
    assert '"member_id": "discord:acme:alice"' in result.output
    assert result.output.index("alice") < result.output.index("carol")
