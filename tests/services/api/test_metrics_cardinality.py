"""Metric names and label values stay bounded, whatever ids flow through the services.

The services' own code paths run twice: the API app and a worker's health app answer
requests on parametrized routes with distinct member, message, webhook and community
ids; the kit's consumer loop handles and dead-letters records of distinct messages; the
API worker's gauge refresher covers more communities than its cap. The exposition
(``generate_latest``, parsed back) must then follow the label rules below, and the
second round, with several times more distinct ids, must add no series.

Rules:

- every metric is named ``pepite_*`` (the client's ``process_*``/``python_*`` aside);
- label names come from ``LABEL_RULES``; each value matches its rule: an enum of the
  contracts, a topic of the contracts behind the deployment's prefix, a route template
  of the apps, a community id (of the contracts' shape, at most the cap of them);
- no value other than routes and communities looks like an id, an address or text
  (``ID_LIKE``): long digit runs, hex tokens, UUIDs, ``platform:community:native``
  ids, URLs, e-mail addresses, whitespace.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from tests.conftest import Stack
from tests.services.api.conftest import Api

from pepite_api.community_gauges import ALERT_KINDS, OTHER_ALERT_KIND
from pepite_api.community_gauges_refresher import (
    COMMUNITIES_PART,
    DEAD_LETTERS_PART,
    GaugeRefresher,
)
from pepite_api.keys import Scope
from pepite_api.settings import Settings
from pepite_contracts import (
    COMMUNITY_ID_PATTERN,
    AnalyzerName,
    ChannelRef,
    Event,
    Member,
    MessageIngested,
    MessageKind,
    NormalizedMessage,
    Platform,
    Sentiment,
    Topic,
    all_topics,
    encode_event,
    partition_key,
    stable_id,
)
from pepite_contracts.notifications import NotificationType
from pepite_kit import Database, EventPublisher, KafkaSettings, ensure_topics
from pepite_kit.consumer import event_loop_for
from pepite_kit.http import health_app
from pepite_kit.offsets import TopicSizes

#: Communities the refresher exports at most in this test (the setting's default is 200).
CAP = 6
#: Series each exported community adds per gauge family.
PER_COMMUNITY = {
    "pepite_community_messages_24h": 1,
    "pepite_community_last_ingested_timestamp_seconds": 1,
    "pepite_community_insights_7d": 5,
    "pepite_community_sentiment_7d": len(Sentiment),
    "pepite_community_open_alerts": len(ALERT_KINDS) + 1,
}

ID_LIKE: list[re.Pattern[str]] = [
    re.compile(r"\d{6,}"),  # native ids, snowflakes, phone numbers, timestamps
    re.compile(r"[0-9a-fA-F]{12,}"),  # hex tokens: uuids without dashes, digests, keys
    re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-"),  # uuids
    re.compile(r"^[a-z]+:[^:]+:"),  # stable ids platform:community:native
    re.compile(r"://|@|\s|\?|="),  # urls, e-mail addresses, free text, queries
]

_NAME = r"[a-z][a-z0-9_]{0,47}"
_SLUG = r"[a-z][a-z0-9-]{0,31}"
#: Everything a deployment's topic prefix may hold (``KafkaSettings.kafka_topic_prefix``).
_PREFIX = r"[A-Za-z0-9._-]*"
_TOPIC = re.compile(rf"^{_PREFIX}?(?:{'|'.join(re.escape(t) for t in all_topics())})$")
_DLQ_LABELS = {Topic(t).dlq for t in Topic}
_ROUTE_GRAMMAR = re.compile(r"^(?:/(?:[a-z][a-z0-9._-]*|\{[a-z_]+\}))+/?$")


def enum(values: Iterable[str]) -> Callable[[str], bool]:
    allowed = frozenset(values)
    return lambda value: value in allowed


def pattern(regex: str) -> Callable[[str], bool]:
    compiled = re.compile(regex)
    return lambda value: compiled.fullmatch(value) is not None


def routes_of(apps_templates: frozenset[str]) -> Callable[[str], bool]:
    # A template of the apps, or (another service's app) a path of literal segments
    # and {parameters} whose literals look like no id.
    return lambda value: (
        value in apps_templates
        or (_ROUTE_GRAMMAR.fullmatch(value) is not None and not looks_like_an_id(value))
    )


def looks_like_an_id(value: str) -> bool:
    return any(rule.search(value) for rule in ID_LIKE)


def label_rules(templates: frozenset[str]) -> dict[str, Callable[[str], bool]]:
    """What each label may hold."""
    alert_kinds = {*ALERT_KINDS, OTHER_ALERT_KIND, "moderation_strike"}
    alert_kinds |= {"unanswered_question", "needs_human"}
    return {
        "topic": lambda v: _TOPIC.fullmatch(v) is not None,
        # Consumer groups are settings (a prefix may precede them in tests).
        "group": pattern(r"[A-Za-z0-9._-]{1,100}"),
        "stage": enum({"decode", "handler"}),
        "kind": enum(
            {"transient", "error", "prompt", "completion"}
            | {k.value for k in MessageKind}
            | alert_kinds
        ),
        "service": pattern(_SLUG),
        "method": enum({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}),
        "route": routes_of(templates),
        "status": pattern(r"[1-5][0-9]{2}"),
        "format": pattern(_SLUG),
        "type": pattern(r"[a-z_]+(?:\.[a-z_]+)+"),
        "analyzer": enum({a.value for a in AnalyzerName}),
        "model": pattern(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}"),
        "reason": pattern(_NAME),
        "event_type": enum({t.value for t in NotificationType} | {"other"}),
        "outcome": enum({"success", "failure"}),
        "severity": enum({"info", "warning", "critical"}),
        "theme": pattern(_NAME),
        "community": pattern(COMMUNITY_ID_PATTERN.strip("^$")),
        "sentiment": enum({s.value for s in Sentiment}),
        "part": enum({COMMUNITIES_PART, DEAD_LETTERS_PART}),
    }


#: Labels the client adds itself to histogram buckets and summaries.
_CLIENT_LABELS = {"le", "quantile"}
#: Label values checked by their own rule rather than by ``ID_LIKE``: a route holds
#: ``{member_id}``, a community is an operator's slug, a topic or group may follow a
#: test's random prefix.
_OWN_RULE = {"route", "community", "topic", "group"}

SeriesKey = tuple[tuple[str, str], ...]


def exposition() -> dict[str, set[SeriesKey]]:
    """Series of every metric family, as Prometheus would scrape them."""
    text = generate_latest(REGISTRY).decode()
    families: dict[str, set[SeriesKey]] = defaultdict(set)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = tuple(
                sorted((k, v) for k, v in sample.labels.items() if k not in _CLIENT_LABELS)
            )
            families[family.name].add(labels)
    return families


def violations(
    families: dict[str, set[SeriesKey]], rules: dict[str, Callable[[str], bool]]
) -> list[str]:
    found: list[str] = []
    for name, all_series in families.items():
        if not name.startswith("pepite_"):
            if not name.startswith(("process_", "python_")):
                found.append(f"{name}: not a pepite_ metric")
            continue
        for labels in all_series:
            for label, value in labels:
                rule = rules.get(label)
                if rule is None:
                    found.append(f"{name}: label {label!r} is not an allowed label name")
                elif not rule(value):
                    found.append(f"{name}: {label}={value!r} breaks its rule")
                elif label not in _OWN_RULE and looks_like_an_id(value):
                    found.append(f"{name}: {label}={value!r} looks like an id or text")
    return found


# --- the workload -----------------------------------------------------------------

COMMUNITY = "acme"
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def message_event(native_id: str, text: str) -> MessageIngested:
    message = NormalizedMessage(
        id=stable_id("discord", COMMUNITY, native_id),
        platform=Platform.DISCORD,
        community_id=COMMUNITY,
        native_id=native_id,
        channel=ChannelRef(id="c1", name="general"),
        author=Member(
            id=stable_id("discord", COMMUNITY, f"u{native_id}"), native_id=f"u{native_id}", name="x"
        ),
        text=text,
        created_at=T0,
    )
    return MessageIngested(community_id=COMMUNITY, payload=message)


def snowflake() -> str:
    return str(uuid.uuid4().int % 10**18 + 10**18)


async def http_round(api: Api, worker_app: Any, distinct: int) -> list[int]:
    """Requests with ``distinct`` new ids on each parametrized route; the statuses seen."""
    statuses: list[int] = []
    client = await api.client_for(COMMUNITY, Scope.READ, rate_limit_per_minute=1_000_000)
    async with (
        client,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=worker_app), base_url="http://w") as w,
    ):
        for _ in range(distinct):
            member = stable_id("discord", COMMUNITY, snowflake())
            message = stable_id("discord", COMMUNITY, snowflake())
            other = f"c{uuid.uuid4().hex[:12]}"
            for path in (
                f"/v1/communities/{COMMUNITY}/members/{member}",
                f"/v1/communities/{COMMUNITY}/messages/{message}",
                f"/v1/communities/{COMMUNITY}/moderation/{message}",
                f"/v1/communities/{COMMUNITY}/leaderboards/helpfulness/members/{member}",
                f"/v1/communities/{COMMUNITY}/webhooks/wh_{uuid.uuid4().hex[:16]}",
                f"/v1/communities/{other}/status",
                f"/v1/{uuid.uuid4().hex}/nowhere?to={uuid.uuid4().hex}",
            ):
                statuses.append((await client.get(path)).status_code)
            for path in ("/healthz", f"/healthz/{member}", f"/{uuid.uuid4()}"):
                statuses.append((await w.get(path)).status_code)
    return statuses


class Handled:
    """A handler that stores nothing and refuses the messages saying ``poison``."""

    def __init__(self) -> None:
        self.seen: set[str] = set()

    async def __call__(self, events: Sequence[Event]) -> None:
        for event in events:
            assert isinstance(event, MessageIngested)
            if event.payload.text == "poison":
                raise ValueError(f"refused {event.payload.id}")
        self.seen.update(e.payload.id for e in events if isinstance(e, MessageIngested))


async def consumer_round(
    settings: KafkaSettings, handler: Handled, distinct: int, poison: int
) -> None:
    """Publish ``distinct`` new messages, ``poison`` of them refused and ``poison``
    undecodable records, and wait until the loop handled them."""
    events = [message_event(snowflake(), "hello") for _ in range(distinct)]
    events += [message_event(snowflake(), "poison") for _ in range(poison)]
    topic = settings.topic_name(Topic.MESSAGES_RAW)
    async with EventPublisher(settings) as publisher:
        for event in events:
            key = partition_key(COMMUNITY, event.payload.channel.id)
            await publisher.send(topic, encode_event(event), key=key)
        for _ in range(poison):
            await publisher.send(topic, f"not json {uuid.uuid4()}".encode())
        await publisher.flush()
    wanted = {e.payload.id for e in events if e.payload.text != "poison"}
    for _ in range(600):
        if wanted <= handler.seen:
            break
        await asyncio.sleep(0.05)
    assert wanted <= handler.seen


async def seed_communities(db: Database, communities: Sequence[str]) -> None:
    now = datetime.now(UTC)
    await db["messages"].insert_many(
        [
            {
                "_id": stable_id("discord", community, snowflake()),
                "community_id": community,
                "created_at": now - timedelta(minutes=n),
                "stored_at": now,
            }
            for community in communities
            for n in range(1 + len(community) % 3)
        ]
    )


# --- the test -----------------------------------------------------------------------


async def test_labels_stay_bounded_whatever_ids_go_through(
    api: Api, stack: Stack, kafka_settings: KafkaSettings
) -> None:
    settings: Settings = api.settings.model_copy(update={"community_gauges_max_communities": CAP})
    db = api.state.db
    await ensure_topics(kafka_settings, kafka_settings.topic_names(all_topics()))

    async def ready() -> bool:
        return True

    worker_app = health_app(service="api-worker", liveness={"ok": ready}, readiness={"ok": ready})
    handler = Handled()
    loop = event_loop_for(
        name="cardinality",
        settings=kafka_settings,
        group_id=f"{kafka_settings.kafka_topic_prefix}cardinality",
        handlers={kafka_settings.topic_name(Topic.MESSAGES_RAW): handler},
        publisher=api.state.publisher,
    )
    loop_task = asyncio.create_task(loop.run())
    refresher = GaugeRefresher(db, settings)
    templates = frozenset(api.app.openapi()["paths"]) | {
        "/metrics",
        "/healthz",
        "/readyz",
        "unmatched",
    }
    rules = label_rules(templates)
    rounds: list[dict[str, set[SeriesKey]]] = []
    try:
        async with TopicSizes(kafka_settings) as sizes:
            for distinct, poison, communities in ((8, 1, CAP + 2), (40, 3, 4 * CAP)):
                await seed_communities(
                    db, [f"community-{uuid.uuid4().hex[:6]}" for _ in range(communities)]
                )
                statuses = await http_round(api, worker_app, distinct)
                await consumer_round(kafka_settings, handler, distinct, poison)
                report = await refresher.refresh_once(sizes)
                assert report.communities is not None
                assert report.dead_letters is not None
                rounds.append(exposition())
    finally:
        loop.stop()
        await asyncio.gather(loop_task, return_exceptions=True)

    assert {s // 100 for s in statuses} <= {2, 4}
    first, second = rounds
    assert violations(second, rules) == []
    # Parametrized routes are counted under their templates, unknown paths as one.
    routes = {v for labels in second["pepite_http_requests"] for k, v in labels if k == "route"}
    assert {
        "/v1/communities/{community_id}/members/{member_id}",
        "/v1/communities/{community_id}/messages/{message_id}",
        "/v1/communities/{community_id}/moderation/{message_id}",
        "/v1/communities/{community_id}/leaderboards/{theme}/members/{member_id}",
        "/v1/communities/{community_id}/webhooks/{webhook_id}",
        "/v1/communities/{community_id}/status",
        "/healthz",
        "unmatched",
    } <= routes
    # Both poison kinds of each round wait on the dead-letter topic, labelled unprefixed.
    dead = REGISTRY.get_sample_value("pepite_dead_letter_records", {"topic": "messages.raw.dlq"})
    assert dead == 2 * (1 + 3)
    dlq_labels = {v for labels in second["pepite_dead_letter_records"] for _, v in labels}
    assert dlq_labels == _DLQ_LABELS

    # Five times the ids, not one series more (the community gauges swap, capped).
    community_gauges = set(PER_COMMUNITY)
    for name, series in second.items():
        if name in community_gauges:
            assert len(series) <= CAP * PER_COMMUNITY[name], name
            continue
        assert series <= first.get(name, set()), (
            name,
            sorted(series - first.get(name, set()))[:5],
        )
    exported = {
        v
        for labels in second["pepite_community_messages_24h"]
        for k, v in labels
        if k == "community"
    }
    assert len(exported) == CAP
