"""The LLM writer of the digest, against the fake OpenAI server and the hand-built week."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import REGISTRY
from tests.fakes.openai_server import BadCitation, BadJson, FakeOpenAIServer, HttpError
from tests.services.digest import test_lore as week

from pepite_contracts import ConsentChange, ConsentFlags
from pepite_digest.consent import ConsentRepository
from pepite_digest.repository import DigestRepository
from pepite_digest.service import DigestService
from pepite_digest.settings import DigestWriterName, Settings
from pepite_digest.writer import SCHEMA_NAME, LlmDigestWriter, build_writer
from pepite_kit import Database
from pepite_llm.errors import LlmConfigError
from pepite_llm.pricing import model_price
from pepite_llm.usage import UsageDelta, UsageRepository, month_of
from pepite_reports.digests.models import Digest, SectionKind

pytestmark = pytest.mark.asyncio

MODEL = "gpt-4o-mini"
LAST = week.MONDAY + timedelta(days=6)
#: The hand-built week, stored (fixture of test_lore).
db = week.db


@pytest.fixture(scope="module")
def fake_server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as server:
        yield server


@pytest.fixture
def fake(fake_server: FakeOpenAIServer) -> FakeOpenAIServer:
    fake_server.reset()
    return fake_server


def settings_for(fake: FakeOpenAIServer, **overrides: Any) -> Settings:
    fields: dict[str, Any] = {
        "digest_writer": DigestWriterName.OPENAI,
        "openai_base_url": fake.base_url,
        "openai_api_key": "test-key",
        "openai_model": MODEL,
        "openai_timeout_s": 5.0,
        "openai_max_attempts": 2,
        "openai_backoff_s": 0.01,
        "openai_backoff_max_s": 0.02,
        **overrides,
    }
    return Settings(**fields)


@pytest.fixture
async def writer(fake: FakeOpenAIServer, db: Database) -> AsyncIterator[LlmDigestWriter]:
    built = build_writer(settings_for(fake), db)
    assert built is not None
    yield built
    await built.aclose()


async def written_week(db: Database, writer: LlmDigestWriter) -> Digest:
    return await DigestService(db, writer=writer).community_digest("acme", week.MONDAY, LAST)


async def extractive_week(db: Database) -> Digest:
    return await DigestService(db).community_digest("acme", week.MONDAY, LAST)


def requests(fake: FakeOpenAIServer) -> list[str]:
    return [r.user for r in fake.completions(SCHEMA_NAME)]


async def assert_cites_only_the_weeks_messages(db: Database, digest: Digest) -> None:
    start, end = digest.period_start, digest.period_end
    cited = digest.cited_ids()
    found = {
        doc["_id"]: doc["created_at"].replace(tzinfo=UTC)
        async for doc in db["messages"].find({"_id": {"$in": sorted(cited)}})
    }
    assert set(found) == cited
    assert all(start <= created < end for created in found.values())
    assert {s.message_id for s in digest.sources} == cited


def tokens(kind: str) -> float:
    return REGISTRY.get_sample_value("pepite_llm_tokens_total", {"model": MODEL, "kind": kind}) or 0


async def test_a_week_written_by_the_llm_cites_only_its_own_messages(
    fake: FakeOpenAIServer, db: Database, writer: LlmDigestWriter
) -> None:
    prompt_before = tokens("prompt")

    digest = await written_week(db, writer)

    assert digest.writer == MODEL
    stored = await db["digests"].find_one({"_id": digest.digest_id})
    assert stored is not None
    assert stored["writer"] == MODEL
    assert stored["sections"][0]["statements"][0]["text"].startswith("In short: ")
    extractive = await extractive_week(db)
    assert [s.kind for s in digest.sections] == [s.kind for s in extractive.sections]
    for section in digest.sections:
        assert section.statements
        assert all(s.text.startswith("In short: ") for s in section.statements)
    await assert_cites_only_the_weeks_messages(db, digest)
    # The aliases of the prompt are mapped back to the messages' own ids.
    assert week.statements(digest, SectionKind.UNANSWERED_QUESTIONS)[0][1] == week.ids(4)
    [user] = requests(fake)
    assert "discord:acme:" not in user
    assert tokens("prompt") > prompt_before


async def test_every_call_is_booked_to_the_community_s_month(
    fake: FakeOpenAIServer, db: Database, writer: LlmDigestWriter
) -> None:
    prompt_before, completion_before = tokens("prompt"), tokens("completion")

    await written_week(db, writer)

    usage = await UsageRepository(db).usage("acme", month_of(datetime.now(UTC)))
    assert len(requests(fake)) == 1
    assert usage.digest_calls == 1
    assert usage.calls == 1
    # The same tokens as the metrics count, priced at the model's price.
    assert usage.prompt_tokens == tokens("prompt") - prompt_before > 0
    assert usage.completion_tokens == tokens("completion") - completion_before > 0
    price = model_price(settings_for(fake).llm_prices, MODEL)
    assert usage.cost_usd == pytest.approx(
        price.cost_usd(usage.prompt_tokens, usage.completion_tokens)
    )
    assert usage.digests_over_budget == 0


async def test_a_community_at_its_budget_keeps_the_extractive_digest(
    fake: FakeOpenAIServer, db: Database
) -> None:
    month = month_of(datetime.now(UTC))
    # What labeling spent this month already leaves less than one digest call.
    await UsageRepository(db).add_usage("acme", month, UsageDelta(calls=40, cost_usd=0.2))
    built = build_writer(
        settings_for(fake, llm_monthly_budget_usd=5.0, llm_budget_overrides={"acme": 0.2}), db
    )
    assert built is not None
    try:
        digest = await written_week(db, built)
    finally:
        await built.aclose()

    assert requests(fake) == []
    assert digest.writer == "extractive"
    assert digest.sections == (await extractive_week(db)).sections
    usage = await UsageRepository(db).usage("acme", month)
    assert usage.digests_over_budget == 1
    assert usage.digest_calls == 0
    assert usage.cost_usd == pytest.approx(0.2)


async def test_another_community_s_spending_does_not_count(
    fake: FakeOpenAIServer, db: Database
) -> None:
    month = month_of(datetime.now(UTC))
    await UsageRepository(db).add_usage("other", month, UsageDelta(cost_usd=100.0))
    built = build_writer(settings_for(fake, llm_monthly_budget_usd=1.0), db)
    assert built is not None
    try:
        digest = await written_week(db, built)
    finally:
        await built.aclose()

    assert digest.writer == MODEL
    assert len(requests(fake)) == 1


@pytest.mark.parametrize(
    "bad_id",
    ["m999", "discord:acme:999", "discord:acme:0"],
    ids=["unknown-alias", "unknown-id", "real-message-of-the-week-before"],
)
async def test_a_bad_citation_is_rejected_and_the_second_answer_used(
    fake: FakeOpenAIServer, db: Database, writer: LlmDigestWriter, bad_id: str
) -> None:
    fake.fail(BadCitation(bad_id, section="announcements"))

    digest = await written_week(db, writer)

    first, second = requests(fake)
    assert first.count("\ng") > second.count("\ng")  # only the rejected group again
    assert re.search(rf"- g\d+: it cites {bad_id}, which is no message of this period", second)
    assert week.statements(digest, SectionKind.ANNOUNCEMENTS) == [
        (
            "In short: dee in #news: “We decided to move the community meetup to Friday evening”",
            week.ids(6),
        )
    ]
    assert digest.writer == MODEL
    await assert_cites_only_the_weeks_messages(db, digest)


async def test_a_message_outside_the_period_cannot_be_cited(
    fake: FakeOpenAIServer, db: Database, writer: LlmDigestWriter
) -> None:
    extractive = await extractive_week(db)
    repository = DigestRepository(db)
    start, end = extractive.period_start, extractive.period_end
    before = await repository.messages("acme", start - timedelta(days=7), start)
    current = await repository.messages("acme", start, end)
    fake.fail(BadCitation("discord:acme:0"), times=2)

    digest = await writer.write(extractive, [*before, *current])

    _, second = requests(fake)
    assert "it cites discord:acme:0, which was written outside the period" in second
    assert "discord:acme:0" not in digest.cited_ids()
    assert digest.writer == MODEL


async def test_a_statement_that_keeps_citing_a_bad_id_is_dropped(
    fake: FakeOpenAIServer, db: Database, writer: LlmDigestWriter
) -> None:
    fake.fail(BadCitation(section="unanswered_questions"), times=2)

    digest = await written_week(db, writer)

    assert len(requests(fake)) == 2
    # Of the two unanswered questions, the first one's statement was refused twice.
    unanswered = week.statements(digest, SectionKind.UNANSWERED_QUESTIONS)
    assert [message_ids for _, message_ids in unanswered] == [week.ids(11)]
    assert unanswered[0][0].startswith("In short: ")
    await assert_cites_only_the_weeks_messages(db, digest)


async def test_a_section_the_model_failed_entirely_stays_extractive(
    fake: FakeOpenAIServer, db: Database, writer: LlmDigestWriter
) -> None:
    fake.fail(BadCitation(section="announcements"), times=2)

    digest = await written_week(db, writer)

    extractive = await extractive_week(db)
    assert week.statements(digest, SectionKind.ANNOUNCEMENTS) == week.statements(
        extractive, SectionKind.ANNOUNCEMENTS
    )
    assert week.statements(digest, SectionKind.NEW_MEMBERS)[0][0].startswith("In short: ")
    assert digest.writer == MODEL


@pytest.mark.parametrize("fault", [HttpError(500), BadJson()], ids=["http-500", "bad-json"])
async def test_an_unavailable_llm_leaves_the_extractive_digest(
    fake: FakeOpenAIServer,
    db: Database,
    writer: LlmDigestWriter,
    fault: HttpError | BadJson,
) -> None:
    fake.fail_always(fault)

    digest = await written_week(db, writer)

    assert fake.completions(SCHEMA_NAME)  # it was asked
    assert digest.writer == "extractive"
    stored = await db["digests"].find_one({"_id": digest.digest_id})
    assert stored is not None
    assert stored["writer"] == "extractive"
    extractive = await extractive_week(db)
    assert digest.sections == extractive.sections
    assert digest.sources == extractive.sources


async def test_a_member_who_opted_out_of_ai_processing_is_never_sent(
    fake: FakeOpenAIServer, db: Database, writer: LlmDigestWriter
) -> None:
    await ConsentRepository(db).record(
        [
            ConsentChange(
                member_id="discord:acme:ann",
                community_id="acme",
                consent=ConsentFlags(ai_processing=False),
                changed_at=datetime(2024, 5, 1, tzinfo=UTC),
            )
        ]
    )

    digest = await written_week(db, writer)

    anns = [m["text"] for m in week.WEEK if m["author"]["name"] == "ann"]
    assert anns
    sent = [r.system + "\n" + r.user for r in fake.requests]
    assert sent
    for body in sent:
        assert not re.search(r"\bann\b", body)
        for text in anns:
            assert text not in body
            assert text[:30] not in body
    # Her statements stay as the extractive digest wrote them; the others are rewritten.
    extractive = await extractive_week(db)
    top = week.statements(digest, SectionKind.TOP_QUESTIONS)
    assert [s for s in top if s[1] == week.ids(1, 2)] == [
        s for s in week.statements(extractive, SectionKind.TOP_QUESTIONS) if s[1] == week.ids(1, 2)
    ]
    assert all(text.startswith("In short: ") for text, ids in top if ids != week.ids(1, 2))
    assert digest.writer == MODEL


async def test_settings_choose_the_writer_and_name_what_is_missing(
    fake: FakeOpenAIServer, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("OPENAI_BASE_URL", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    assert Settings().digest_writer is DigestWriterName.EXTRACTIVE
    assert build_writer(Settings(), db) is None
    with pytest.raises(LlmConfigError, match=r"PEPITE_DIGEST_WRITER=openai needs OPENAI_API_KEY"):
        build_writer(settings_for(fake, openai_api_key=None), db)
    with pytest.raises(LlmConfigError, match="no price for model 'my-model'"):
        build_writer(settings_for(fake, openai_model="my-model"), db)
    monkeypatch.setenv("PEPITE_DIGEST_WRITER", "openai")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://llm.internal/v1")
    env = Settings()
    assert env.digest_writer is DigestWriterName.OPENAI
    assert env.openai_base_url == "http://llm.internal/v1"
