"""The OpenAI analyzer with the real SDK, against a fake server and a real MongoDB."""

from __future__ import annotations

import json
import math
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.fakes.openai_server import (
    BadJson,
    Billed,
    FakeOpenAIServer,
    HttpError,
    MissingIds,
    RateLimited,
    SchemaViolation,
    Slow,
)

from pepite_classifier.analysis.base import AnalysisOutcome, AnalysisRequest
from pepite_classifier.analysis.factory import LLM_INDEXES, build_analyzer
from pepite_classifier.analysis.llm.prompt import PromptMessage, render_batch
from pepite_classifier.analysis.llm.schema import Label, parse_items, to_analysis
from pepite_classifier.analysis.llm.topic_namer import OpenAITopicNamer
from pepite_classifier.analysis.llm_repository import LlmRepository, UsageDelta, month_of
from pepite_classifier.analysis.openai_analyzer import OpenAIAnalyzer
from pepite_classifier.settings import Settings
from pepite_contracts import Analysis, AnalyzerName, MessageKind, Mood, Sentiment
from pepite_kit import Database
from pepite_kit.mongo import ensure_indexes
from pepite_llm.client import retry_after_s
from pepite_llm.errors import LlmConfigError
from pepite_llm.pricing import ModelPrice

COMMUNITY = "discord:acme"
OTHER = "discord:other"
PRICE = ModelPrice(input_per_mtok=0.15, output_per_mtok=0.60)


class StubLocal:
    """A deterministic stand-in for the local analyzer that records what it was given."""

    name = AnalyzerName.LOCAL

    def __init__(self) -> None:
        self.seen: list[AnalysisRequest] = []

    async def analyze(self, requests: Sequence[AnalysisRequest]) -> list[AnalysisOutcome]:
        self.seen.extend(requests)
        return [AnalysisOutcome(Analysis(kind=MessageKind.SOCIAL, model="stub")) for _ in requests]

    async def aclose(self) -> None:
        return None


@pytest.fixture(scope="module")
def fake_server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as server:
        yield server


@pytest.fixture
def fake(fake_server: FakeOpenAIServer) -> FakeOpenAIServer:
    fake_server.reset()
    return fake_server


@pytest.fixture
def settings(fake: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name in ("OPENAI_BASE_URL", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    return make_settings(fake)


def make_settings(fake: FakeOpenAIServer, **overrides: Any) -> Settings:
    fields: dict[str, Any] = {
        "analyzer": AnalyzerName.OPENAI,
        "openai_base_url": fake.base_url,
        "openai_api_key": "test-key",
        "openai_timeout_s": 5.0,
        "openai_max_attempts": 3,
        "openai_backoff_s": 0.01,
        "openai_backoff_max_s": 0.05,
        "openai_retry_after_max_s": 2.0,
        "openai_concurrency": 2,
        "llm_batch_size": 4,
        "llm_invalid_attempts": 2,
        **overrides,
    }
    return Settings(**fields)


@pytest.fixture
async def repository(mongo_db: Database) -> LlmRepository:
    await ensure_indexes(mongo_db, LLM_INDEXES)
    return LlmRepository(mongo_db)


@pytest.fixture
def local() -> StubLocal:
    return StubLocal()


@pytest.fixture
async def analyzer(
    settings: Settings, repository: LlmRepository, local: StubLocal
) -> AsyncIterator[OpenAIAnalyzer]:
    analyzer = OpenAIAnalyzer(settings, repository, local)
    yield analyzer
    await analyzer.aclose()


def request(n: int, text: str, *, community: str = COMMUNITY, **fields: Any) -> AnalysisRequest:
    return AnalysisRequest(
        message_id=f"{community}:{n}", community_id=community, text=text, **fields
    )


TEXTS = [
    "how do I mount a usb drive on ubuntu?",
    "apt says: E: Unable to locate package foo, install failed",
    "thanks a lot, that fixed it",
    "lol same here",
    "it would be nice to have a dark theme in the installer",
    "see https://help.ubuntu.com/community/Mount for the details",
    "great release, everything works perfectly",
    "anyone around who knows grub?",
    "my wifi driver crashes after resume",
    "good morning everyone",
]


def requests_for(texts: Sequence[str], *, community: str = COMMUNITY) -> list[AnalysisRequest]:
    return [request(n, text, community=community) for n, text in enumerate(texts)]


def sent_texts(fake: FakeOpenAIServer) -> list[str]:
    return [item.text for call in fake.completions() for item in call.items]


def analyzers_of(outcomes: Sequence[AnalysisOutcome]) -> list[AnalyzerName]:
    return [outcome.analysis.analyzer for outcome in outcomes]


async def usage(repository: LlmRepository, community: str = COMMUNITY) -> UsageDelta:
    return await repository.usage(community, month_of(datetime.now(UTC)))


# ----- batching -----
async def test_sends_batches_of_messages_with_their_reply_context(
    analyzer: OpenAIAnalyzer, fake: FakeOpenAIServer, local: StubLocal
) -> None:
    requests = requests_for(TEXTS)
    requests[3] = request(3, "lol same here", context=("my laptop fan is so loud",))
    requests[2] = request(2, "thanks a lot, that fixed it", context=(TEXTS[1],))

    outcomes = await analyzer.analyze(requests)

    calls = fake.completions()
    assert len(calls) == math.ceil(len(TEXTS) / 4)
    assert all(len(call.items) <= 4 for call in calls)
    assert sorted(sent_texts(fake)) == sorted(TEXTS)
    # A parent outside the batch is sent as context; one inside is pointed at by its id.
    # Batches are sent concurrently, so the first batch is found by what it holds.
    (first_call,) = [c for c in calls if any(i.text == "lol same here" for i in c.items)]
    first = {item.text: item for item in first_call.items}
    assert first["lol same here"].context == "my laptop fan is so loud"
    assert first["thanks a lot, that fixed it"].reply_to == 2
    assert first["thanks a lot, that fixed it"].context is None
    assert "2^" not in first_call.user
    assert all(call.body["model"] == "gpt-4o-mini" for call in calls)
    assert calls[0].headers["authorization"] == "Bearer test-key"

    assert analyzers_of(outcomes) == [AnalyzerName.OPENAI] * len(TEXTS)
    assert local.seen == []
    kinds = [outcome.analysis.kind for outcome in outcomes]
    assert kinds[0] is MessageKind.QUESTION
    assert kinds[1] is MessageKind.PROBLEM
    assert kinds[2] is MessageKind.GRATITUDE
    assert kinds[4] is MessageKind.FEATURE_REQUEST
    assert kinds[5] is MessageKind.RESOURCE
    assert outcomes[0].analysis.model == "gpt-4o-mini"
    assert outcomes[0].analysis.language == "en"
    assert outcomes[1].analysis.sentiment_score < 0


async def test_each_call_holds_one_community(
    analyzer: OpenAIAnalyzer, fake: FakeOpenAIServer, repository: LlmRepository
) -> None:
    requests = requests_for(TEXTS[:3]) + requests_for(TEXTS[3:6], community=OTHER)

    await analyzer.analyze(requests)

    calls = fake.completions()
    assert [len(call.items) for call in calls] == [3, 3]
    assert {tuple(sorted(item.text for item in call.items)) for call in calls} == {
        tuple(sorted(TEXTS[:3])),
        tuple(sorted(TEXTS[3:6])),
    }
    assert (await usage(repository)).calls == 1
    assert (await usage(repository, OTHER)).calls == 1


# ----- invalid answers -----
async def test_malformed_answers_are_retried_then_the_batch_goes_local(
    analyzer: OpenAIAnalyzer,
    fake: FakeOpenAIServer,
    local: StubLocal,
    repository: LlmRepository,
) -> None:
    fake.fail(BadJson(), times=2)
    requests = requests_for(TEXTS[:3])

    outcomes = await analyzer.analyze(requests)

    assert len(fake.completions()) == 2  # llm_invalid_attempts
    assert analyzers_of(outcomes) == [AnalyzerName.LOCAL] * 3
    assert [r.message_id for r in local.seen] == [r.message_id for r in requests]
    spent = await usage(repository)
    assert (spent.calls, spent.invalid_answers, spent.local_failure, spent.messages) == (2, 2, 3, 0)
    # Unusable answers were still paid for.
    billed = [call.usage for call in fake.completions()]
    assert spent.prompt_tokens == sum(u["prompt_tokens"] for u in billed)


async def test_a_schema_violation_is_asked_again(
    analyzer: OpenAIAnalyzer, fake: FakeOpenAIServer, local: StubLocal
) -> None:
    fake.fail(SchemaViolation())

    outcomes = await analyzer.analyze(requests_for(TEXTS[:3]))

    assert len(fake.completions()) == 2
    assert analyzers_of(outcomes) == [AnalyzerName.OPENAI] * 3
    assert local.seen == []


async def test_only_missing_ids_are_asked_again(
    analyzer: OpenAIAnalyzer, fake: FakeOpenAIServer, repository: LlmRepository
) -> None:
    fake.fail(MissingIds(count=2))

    outcomes = await analyzer.analyze(requests_for(TEXTS[:4]))

    first, second = fake.completions()
    assert len(first.items) == 4
    assert [item.text for item in second.items] == TEXTS[2:4]
    assert [item.id for item in second.items] == [1, 2]  # ids are short again
    assert analyzers_of(outcomes) == [AnalyzerName.OPENAI] * 4
    spent = await usage(repository)
    assert (spent.calls, spent.messages_sent, spent.messages, spent.invalid_answers) == (2, 6, 4, 1)


async def test_missing_ids_still_missing_go_local(
    analyzer: OpenAIAnalyzer, fake: FakeOpenAIServer, local: StubLocal
) -> None:
    fake.fail(MissingIds(count=1), times=2)

    outcomes = await analyzer.analyze(requests_for(TEXTS[:3]))

    assert analyzers_of(outcomes) == [AnalyzerName.OPENAI] * 2 + [AnalyzerName.LOCAL]
    assert [r.text for r in local.seen] == [TEXTS[2]]


# ----- transport failures -----
async def test_429_waits_as_long_as_retry_after_says(
    analyzer: OpenAIAnalyzer, fake: FakeOpenAIServer
) -> None:
    fake.fail(RateLimited(retry_after_s=0.4))

    outcomes = await analyzer.analyze(requests_for(TEXTS[:2]))

    first, second = fake.completions()
    assert first.status == 429
    assert second.received_at - first.received_at >= 0.4
    assert analyzers_of(outcomes) == [AnalyzerName.OPENAI] * 2


async def test_retry_after_in_seconds_is_capped(
    fake: FakeOpenAIServer, repository: LlmRepository, local: StubLocal
) -> None:
    analyzer = OpenAIAnalyzer(make_settings(fake, openai_retry_after_max_s=0.3), repository, local)
    fake.fail(RateLimited(retry_after_s=60, header="s"))
    started = time.monotonic()

    outcomes = await analyzer.analyze(requests_for(TEXTS[:2]))

    await analyzer.aclose()
    first, second = fake.completions()
    assert 0.3 <= second.received_at - first.received_at < 5
    assert time.monotonic() - started < 5
    assert analyzers_of(outcomes) == [AnalyzerName.OPENAI] * 2


async def test_server_errors_are_retried(analyzer: OpenAIAnalyzer, fake: FakeOpenAIServer) -> None:
    fake.fail(HttpError(500))
    fake.fail(HttpError(503))

    outcomes = await analyzer.analyze(requests_for(TEXTS[:2]))

    assert [call.status for call in fake.completions()] == [500, 503, 200]
    assert analyzers_of(outcomes) == [AnalyzerName.OPENAI] * 2


async def test_when_retries_are_spent_the_batch_goes_local(
    analyzer: OpenAIAnalyzer,
    fake: FakeOpenAIServer,
    local: StubLocal,
    repository: LlmRepository,
) -> None:
    fake.fail_always(HttpError(502))

    outcomes = await analyzer.analyze(requests_for(TEXTS[:3]))

    assert len(fake.completions()) == 3  # openai_max_attempts
    assert analyzers_of(outcomes) == [AnalyzerName.LOCAL] * 3
    assert len(local.seen) == 3
    spent = await usage(repository)
    assert (spent.failed_calls, spent.local_failure, spent.calls) == (1, 3, 0)


async def test_errors_retrying_cannot_fix_are_not_retried(
    analyzer: OpenAIAnalyzer, fake: FakeOpenAIServer
) -> None:
    fake.fail(HttpError(401, code="invalid_api_key"))
    fake.fail(RateLimited(retry_after_s=0.01, code="insufficient_quota"))

    first = await analyzer.analyze(requests_for(TEXTS[:2]))
    second = await analyzer.analyze(requests_for(TEXTS[2:4]))

    assert [call.status for call in fake.completions()] == [401, 429]
    assert analyzers_of(first + second) == [AnalyzerName.LOCAL] * 4


async def test_timeouts_are_retried_then_the_batch_goes_local(
    fake: FakeOpenAIServer, repository: LlmRepository, local: StubLocal
) -> None:
    settings = make_settings(fake, openai_timeout_s=0.2, openai_max_attempts=2)
    analyzer = OpenAIAnalyzer(settings, repository, local)
    fake.fail_always(Slow(delay_s=1.0))
    started = time.monotonic()

    outcomes = await analyzer.analyze(requests_for(TEXTS[:3]))

    await analyzer.aclose()
    assert time.monotonic() - started < 1.5
    assert len(fake.completions()) == 2
    assert analyzers_of(outcomes) == [AnalyzerName.LOCAL] * 3


# ----- cache -----
async def test_a_message_is_never_paid_for_twice(
    analyzer: OpenAIAnalyzer, fake: FakeOpenAIServer, repository: LlmRepository
) -> None:
    requests = requests_for(TEXTS[:5])
    first = await analyzer.analyze(requests)
    calls = len(fake.completions())

    again = await analyzer.analyze([request(100 + n, r.text) for n, r in enumerate(requests)])

    assert len(fake.completions()) == calls
    assert [o.analysis for o in again] == [o.analysis for o in first]
    assert analyzers_of(again) == [AnalyzerName.OPENAI] * 5
    assert (await usage(repository)).cache_hits == 5


async def test_the_same_text_in_other_context_is_a_different_question(
    analyzer: OpenAIAnalyzer, fake: FakeOpenAIServer, repository: LlmRepository
) -> None:
    await analyzer.analyze([request(1, "yes", context=("is it fixed?",))])
    await analyzer.analyze([request(2, "yes", context=("do you want spam?",))])
    await analyzer.analyze([request(3, "yes", context=("is it fixed?",))])

    assert len(fake.completions()) == 2


async def test_identical_messages_of_a_call_are_sent_once(
    analyzer: OpenAIAnalyzer, fake: FakeOpenAIServer, repository: LlmRepository
) -> None:
    outcomes = await analyzer.analyze([request(n, "thanks!") for n in range(6)])

    assert sent_texts(fake) == ["thanks!"]
    assert all(o.analysis == outcomes[0].analysis for o in outcomes)
    spent = await usage(repository)
    assert (spent.messages, spent.cache_hits) == (1, 5)


# ----- privacy -----
async def test_opted_out_members_text_is_never_sent(
    analyzer: OpenAIAnalyzer, fake: FakeOpenAIServer, local: StubLocal, repository: LlmRepository
) -> None:
    secret = "my private medical situation, please do not share"
    requests = [
        request(1, TEXTS[0]),
        request(2, secret, ai_opt_out=True),
        request(3, TEXTS[1]),
        request(4, "another private note from me", ai_opt_out=True),
    ]

    outcomes = await analyzer.analyze(requests)

    bodies = json.dumps([call.body for call in fake.requests])
    assert "private" not in bodies
    assert analyzers_of(outcomes) == [
        AnalyzerName.OPENAI,
        AnalyzerName.LOCAL,
        AnalyzerName.OPENAI,
        AnalyzerName.LOCAL,
    ]
    assert [r.message_id for r in local.seen] == [requests[1].message_id, requests[3].message_id]
    assert (await usage(repository)).local_opt_out == 2


async def test_bots_and_empty_messages_are_not_paid_for(
    analyzer: OpenAIAnalyzer, fake: FakeOpenAIServer, local: StubLocal
) -> None:
    requests = [request(1, "  "), request(2, "!ping reply", author_is_bot=True)]

    outcomes = await analyzer.analyze(requests)

    assert fake.requests == []
    assert analyzers_of(outcomes) == [AnalyzerName.LOCAL] * 2


# ----- accounting and budget -----
async def test_usage_is_booked_per_community_and_month(
    fake: FakeOpenAIServer, settings: Settings, repository: LlmRepository, local: StubLocal
) -> None:
    january = datetime(2026, 1, 31, 23, 59, tzinfo=UTC)
    analyzer = OpenAIAnalyzer(settings, repository, local, clock=lambda: january)
    await analyzer.analyze(requests_for(TEXTS[:6]) + requests_for(TEXTS[6:], community=OTHER))
    await analyzer.aclose()

    calls = fake.completions()
    by_community: dict[str, list[Any]] = {COMMUNITY: [], OTHER: []}
    for call in calls:
        community = COMMUNITY if call.items[0].text in TEXTS[:6] else OTHER
        by_community[community].append(call)
    for community, count in ((COMMUNITY, 6), (OTHER, 4)):
        spent = await repository.usage(community, "2026-01")
        mine = by_community[community]
        prompt = sum(call.usage["prompt_tokens"] for call in mine)
        completion = sum(call.usage["completion_tokens"] for call in mine)
        assert spent.calls == len(mine) == math.ceil(count / 4)
        assert (spent.messages, spent.messages_sent) == (count, count)
        assert (spent.prompt_tokens, spent.completion_tokens) == (prompt, completion)
        assert spent.cost_usd == pytest.approx(PRICE.cost_usd(prompt, completion))
        assert spent.cost_usd > 0
    assert (await repository.usage(COMMUNITY, "2026-02")).calls == 0


async def test_a_community_over_budget_is_analyzed_locally(
    fake: FakeOpenAIServer, repository: LlmRepository, local: StubLocal
) -> None:
    settings = make_settings(fake, openai_concurrency=1, llm_budget_overrides={COMMUNITY: 0.10})
    analyzer = OpenAIAnalyzer(settings, repository, local)
    fake.fail(Billed(prompt_tokens=1_000_000))  # $0.15: over the $0.10 budget at once

    outcomes = await analyzer.analyze(
        requests_for(TEXTS[:8]) + requests_for(TEXTS[:2], community=OTHER)
    )

    assert (
        analyzers_of(outcomes)
        == [AnalyzerName.OPENAI] * 4 + [AnalyzerName.LOCAL] * 4 + [AnalyzerName.OPENAI] * 2
    )
    spent = await usage(repository)
    assert spent.cost_usd == pytest.approx(0.15)
    assert (spent.calls, spent.local_budget) == (1, 4)

    calls = len(fake.completions())
    later = await analyzer.analyze(requests_for(TEXTS[8:]))
    await analyzer.aclose()
    assert len(fake.completions()) == calls
    assert analyzers_of(later) == [AnalyzerName.LOCAL] * 2


async def test_a_zero_budget_sends_nothing(
    fake: FakeOpenAIServer, repository: LlmRepository, local: StubLocal
) -> None:
    analyzer = OpenAIAnalyzer(make_settings(fake, llm_monthly_budget_usd=0), repository, local)

    outcomes = await analyzer.analyze(requests_for(TEXTS[:3]))

    await analyzer.aclose()
    assert fake.requests == []
    assert analyzers_of(outcomes) == [AnalyzerName.LOCAL] * 3


# ----- start-up -----
async def test_local_is_the_default(
    mongo_db: Database, local: StubLocal, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PEPITE_ANALYZER", raising=False)
    assert build_analyzer(Settings(), mongo_db, local) is local


async def test_openai_is_built_when_configured(
    settings: Settings, mongo_db: Database, local: StubLocal
) -> None:
    analyzer = build_analyzer(settings, mongo_db, local)
    assert isinstance(analyzer, OpenAIAnalyzer)
    await analyzer.aclose()


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"openai_base_url": None}, "OPENAI_BASE_URL"),
        ({"openai_api_key": None}, "OPENAI_API_KEY"),
        ({"openai_model": "gpt-unpriced"}, "PEPITE_LLM_PRICES"),
    ],
)
async def test_misconfiguration_is_named_at_start_up(
    *,
    fake: FakeOpenAIServer,
    mongo_db: Database,
    local: StubLocal,
    monkeypatch: pytest.MonkeyPatch,
    overrides: dict[str, Any],
    named: str,
) -> None:
    for name in ("OPENAI_BASE_URL", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(LlmConfigError, match=named):
        build_analyzer(make_settings(fake, **overrides), mongo_db, local)


def test_settings_read_the_sdk_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PEPITE_ANALYZER", "openai")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://llm.internal/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("PEPITE_LLM_BUDGET_OVERRIDES", '{"discord:big": 50}')

    settings = Settings()

    assert settings.analyzer is AnalyzerName.OPENAI
    assert settings.openai_base_url == "http://llm.internal/v1"
    assert settings.openai_api_key is not None
    assert settings.openai_api_key.get_secret_value() == "sk-test"
    assert settings.llm_budget_usd("discord:big") == 50
    assert settings.llm_budget_usd("discord:small") == settings.llm_monthly_budget_usd


# ----- topic names -----
async def test_topic_names_come_in_one_call(
    settings: Settings, fake: FakeOpenAIServer, repository: LlmRepository
) -> None:
    namer = OpenAITopicNamer(settings, repository)
    clusters = [
        (["wifi drops after resume", "no wifi since upgrade"], ["wifi", "resume", "driver"]),
        (["grub menu missing"], ["grub", "boot"]),
    ]

    names = await namer.name_clusters(COMMUNITY, clusters)

    await namer.aclose()
    assert names == ["Wifi Resume", "Grub Boot"]
    assert len(fake.completions("topic_names")) == 1
    spent = await usage(repository)
    assert (spent.calls, spent.topic_calls) == (1, 1)
    assert spent.cost_usd > 0


async def test_topic_names_fall_back_to_keywords(
    settings: Settings, fake: FakeOpenAIServer, repository: LlmRepository
) -> None:
    namer = OpenAITopicNamer(settings, repository)
    fake.fail_always(HttpError(500))

    names = await namer.name_clusters(
        COMMUNITY, [(["a"], ["wifi", "resume", "driver", "x"]), ([], [])]
    )

    await namer.aclose()
    assert names == ["wifi, resume, driver", None]


async def test_topic_names_missing_from_the_answer_keep_their_keywords(
    settings: Settings, fake: FakeOpenAIServer, repository: LlmRepository
) -> None:
    namer = OpenAITopicNamer(settings, repository)
    fake.fail(MissingIds(count=1), times=2)

    names = await namer.name_clusters(COMMUNITY, [(["a"], ["wifi", "resume"]), (["b"], ["grub"])])

    await namer.aclose()
    assert names == ["Wifi Resume", "grub"]


# ----- token economy -----
async def test_batched_labeling_averages_at_most_150_tokens_per_message(
    fake: FakeOpenAIServer,
    repository: LlmRepository,
    local: StubLocal,
    sample_community: Path,
) -> None:
    export = json.loads((sample_community / "rust.json").read_text())
    messages = [m for m in export["messages"] if m["type"] in {"Default", "Reply"}][:160]
    texts = {m["id"]: m["content"] for m in export["messages"]}
    requests = [
        request(
            n,
            m["content"],
            context=(texts[m["reference"]["messageId"]],)
            if m.get("reference") and m["reference"]["messageId"] in texts
            else (),
        )
        for n, m in enumerate(messages)
    ]
    analyzer = OpenAIAnalyzer(make_settings(fake, llm_batch_size=40), repository, local)

    await analyzer.analyze(requests)

    await analyzer.aclose()
    spent = await usage(repository)
    assert spent.messages == spent.messages_sent > 100
    per_message = (spent.prompt_tokens + spent.completion_tokens) / spent.messages
    assert per_message <= 150


# ----- the pieces -----
def test_the_compact_label_becomes_an_analysis() -> None:
    label = Label.model_validate({"i": 1, "k": ["hate", "spam"], "s": -2, "m": "angry", "l": "FR"})

    analysis = to_analysis(label, "gpt-4o-mini")

    assert analysis.kind is MessageKind.TOXIC
    assert analysis.kind_scores == {MessageKind.TOXIC: 0.9, MessageKind.SPAM: 0.7}
    assert (analysis.moderation.toxicity, analysis.moderation.hate) == (0.9, 0.9)
    assert analysis.moderation.spam == 0.7
    assert (analysis.sentiment, analysis.sentiment_score) == (Sentiment.NEGATIVE, -1.0)
    assert (analysis.mood, analysis.language) == (Mood.ANGRY, "fr")
    assert (analysis.analyzer, analysis.model) == (AnalyzerName.OPENAI, "gpt-4o-mini")
    odd = Label.model_validate({"i": 1, "k": ["social"], "s": 0, "m": "neutral", "l": "english"})
    assert to_analysis(odd, "m").language == "und"


def test_answers_are_checked_item_by_item() -> None:
    content = json.dumps(
        {
            "r": [
                {"i": 1, "k": ["question"], "s": 0, "m": "curious", "l": "en"},
                {"i": 2, "k": ["nonsense"], "s": 0, "m": "curious", "l": "en"},
                {"i": 9, "k": ["social"], "s": 0, "m": "neutral", "l": "en"},
            ]
        }
    )

    parsed = parse_items(f"```json\n{content}\n```", Label, {1, 2, 3})

    assert list(parsed.items) == [1]
    assert parsed.problem is not None
    assert parse_items('{"r": [', Label, {1}).items == {}
    assert parse_items(None, Label, {1}).problem == "empty answer"


def test_retry_after_forms() -> None:
    assert retry_after_s(httpx.Headers({"retry-after-ms": "1500", "retry-after": "9"})) == 1.5
    assert retry_after_s(httpx.Headers({"retry-after": "2"})) == 2.0
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 < (retry_after_s(httpx.Headers({"retry-after": later})) or 0) <= 30
    assert retry_after_s(httpx.Headers({"retry-after": "soon"})) is None
    assert retry_after_s(httpx.Headers()) is None


def test_the_prompt_keeps_messages_on_one_line_and_short() -> None:
    long = PromptMessage.of("a\nb  c " + "x" * 600, ("q?\nreally",), text_chars=50, context_chars=8)

    assert "\n" not in long.text
    assert len(long.text) == 50
    assert long.text.endswith("…")
    assert long.context == "q? real…"
    assert PromptMessage.of("hi", ("parent",), text_chars=50, context_chars=0).context is None
    assert render_batch([PromptMessage("a"), PromptMessage("b", "zz")]) == "1: a\n2^ zz\n2: b"
    assert long.cache_key("m1") != long.cache_key("m2")
