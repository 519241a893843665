"""The Lore Keeper on the whole sample community: a digest for each of its weeks, every
statement citing messages that exist and lie inside the week; personalized digests and
journals of consenting members that name nobody who has not consented."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import ClassifiedSample, Env

# Whichever test comes first waits for the sample to be analyzed (about four minutes).
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

COMMUNITY = "sample"


def weeks(first: date, last: date) -> list[tuple[date, date]]:
    """Monday-to-Sunday weeks covering ``first`` to ``last``."""
    monday = first - timedelta(days=first.weekday())
    spans = []
    while monday <= last:
        spans.append((monday, monday + timedelta(days=6)))
        monday += timedelta(days=7)
    return spans


def sample_weeks(sample: ClassifiedSample) -> list[tuple[date, date]]:
    first = datetime.fromisoformat(sample.truth.first).astimezone(UTC).date()
    last = datetime.fromisoformat(sample.truth.last).astimezone(UTC).date()
    return weeks(first, last)


def test_a_digest_for_every_week_cites_only_messages_of_that_week(
    classified_sample: ClassifiedSample, tmp_path: Path
) -> None:
    env, sync_db = classified_sample.env, classified_sample.db
    spans = sample_weeks(classified_sample)
    assert len(spans) == 7
    sections_seen: set[str] = set()
    for monday, sunday in spans:
        out = tmp_path / f"{monday}.json"
        env.pepite(
            "digest",
            "--community",
            COMMUNITY,
            "--from",
            str(monday),
            "--to",
            str(sunday),
            "--format",
            "json",
            "--output",
            str(out),
        )
        digest = json.loads(out.read_text())
        start = datetime.fromisoformat(digest["period_start"])
        end = datetime.fromisoformat(digest["period_end"])
        assert (start, end) == (
            datetime.combine(monday, datetime.min.time(), UTC),
            datetime.combine(sunday + timedelta(days=1), datetime.min.time(), UTC),
        )
        cited = {
            message_id
            for section in digest["sections"]
            for statement in section["statements"]
            for message_id in statement["message_ids"]
        }
        assert cited, f"the week of {monday} cites nothing"
        assert all(
            statement["message_ids"]
            for section in digest["sections"]
            for statement in section["statements"]
        ), "a statement without a source"
        stored = {
            doc["_id"]: doc
            for doc in sync_db["messages"].find(
                {"_id": {"$in": sorted(cited)}}, {"created_at": 1, "author.is_bot": 1}
            )
        }
        assert set(stored) == cited, f"cited ids that do not exist: {cited - set(stored)}"
        for message_id, doc in stored.items():
            created = doc["created_at"].replace(tzinfo=UTC)
            assert start <= created < end, f"{message_id} is outside the week of {monday}"
        assert {s["message_id"] for s in digest["sources"]} == cited
        sections_seen.update(section["kind"] for section in digest["sections"])
        # The digest is stored for the API too.
        assert sync_db["digests"].find_one({"_id": digest["digest_id"]}) is not None
    # Over the seven weeks, every part of a digest had something to say.
    assert sections_seen >= {
        "highlights",
        "announcements",
        "trending_topics",
        "top_questions",
        "unanswered_questions",
        "new_members",
        "shout_outs",
    }


def test_personal_digests_and_journals_name_only_consenting_members(
    classified_sample: ClassifiedSample,
) -> None:
    # The last full week of the sample.
    week = sample_weeks(classified_sample)[-2]
    check_members_named_only_with_consent(classified_sample.env, classified_sample.db, week)


#: What a member's name looks like where a chat text addresses them: "nick: ...",
#: "nick, ...", "@nick".
_ADDRESS = re.compile(r"^\s*@?([^\s:,]+)[:,]\s")
_AT = re.compile(r"@([^\s:,]+)")
_MEMBER_ID = re.compile(rf"discord:{COMMUNITY}:\d+")
_WORD = re.compile(r"[^\s:,;!?()\"'<>]+")


def _strings(value: Any, key: str = "") -> Iterator[tuple[str, str]]:
    """Every string of a JSON document, with the key it is under."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(v, k)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v, key)
    elif isinstance(value, str):
        yield key, value


def check_members_named_only_with_consent(env: Env, sync_db: Any, week: tuple[date, date]) -> None:
    """The three most active members of a week turn their journal and personalization on;
    their personalized digests and journals of that week must not name anyone else.

    "Naming" is checked three ways: a member id anywhere; a name as an author, in
    address position ("nick: ...") or after "@"; and, for names that are not ordinary
    words of the community (used in at most two messages of all), anywhere at all.
    Names that are everyday words ("test", "ubuntu") are bound to appear as words.
    """
    monday, sunday = week
    start = datetime.combine(monday, datetime.min.time())
    end = start + timedelta(days=7)
    active = sync_db["messages"].aggregate(
        [
            {"$match": {"community_id": COMMUNITY, "created_at": {"$gte": start, "$lt": end}}},
            {"$match": {"author.is_bot": {"$ne": True}}},
            {"$group": {"_id": "$author.id", "n": {"$sum": 1}}},
            {"$sort": {"n": -1, "_id": 1}},
            {"$limit": 3},
        ]
    )
    consenting = [doc["_id"] for doc in active]
    for member_id in consenting:
        sync_db["digest_consents"].insert_one(
            {
                "_id": member_id,
                "community_id": COMMUNITY,
                "changed_at": datetime.now(UTC),
                "journal": True,
                "personalization": True,
                "ai_processing": True,
            }
        )
    outputs: list[Any] = []
    period = ("--community", COMMUNITY, "--from", str(monday), "--to", str(sunday))
    for member_id in consenting:
        digest = env.pepite("digest", *period, "--member", member_id, "--format", "json")
        outputs.append(json.loads(digest.stdout))
        journal = env.pepite("journal", *period, "--member", member_id, "--format", "json")
        outputs.append(json.loads(journal.stdout))
    assert all(outputs[0::2]), "a consenting member got no personalized digest"
    assert any(outputs[1::2]), "no consenting member got a journal"

    names: dict[str, str] = {}
    ordinary: Counter[str] = Counter()
    for doc in sync_db["messages"].find({"community_id": COMMUNITY}, {"author": 1, "text": 1}):
        ordinary.update({w.lower() for w in _WORD.findall(doc.get("text") or "")})
        author = doc["author"]
        if author.get("is_bot") or author["id"] in consenting:
            continue
        for name in (author.get("name"), author.get("display_name")):
            if name and len(name) >= 2:
                names[name.lower()] = author["id"]
    others = set(names.values())
    distinctive = {name for name in names if len(name) >= 4 and ordinary[name] <= 2}
    assert len(distinctive) > 100, "the check would prove nothing"

    named: list[str] = []
    for key, text in (pair for output in outputs for pair in _strings(output)):
        lowered = text.lower()
        named += [f"id {text[:60]!r}" for member in _MEMBER_ID.findall(text) if member in others]
        if "author" in key and lowered in names:
            named.append(f"author {text!r}")
        if (address := _ADDRESS.match(lowered)) and address.group(1) in names:
            named.append(f"addressed {text[:60]!r}")
        named += [f"@ {text[:60]!r}" for at in _AT.findall(lowered) if at in names]
        named += [
            f"{word!r} in {text[:60]!r}"
            for word in {w.lower() for w in _WORD.findall(text)}
            if word in distinctive
        ]
    assert not named, f"non-consenting members named: {named[:10]}"
