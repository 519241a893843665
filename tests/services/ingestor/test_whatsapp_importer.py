"""The WhatsApp chat importer: layouts, date order, ids across exports, and clear errors."""

from __future__ import annotations

import hashlib
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pepite_contracts import (
    Attachment,
    ChannelRef,
    MemberJoined,
    MemberLeft,
    MessageIngested,
    MessageType,
    Platform,
    decode_event,
    deterministic_event_id,
    encode_event,
)
from pepite_ingestor.importers import (
    ExportFormatError,
    ImportedEvent,
    UnknownFormatError,
    detect_format,
    iter_export,
)
from pepite_ingestor.importers.detect import HEAD_SIZE
from pepite_ingestor.importers.whatsapp import (
    chat_name_from_file,
    iter_whatsapp_export,
    sniff_whatsapp,
)

COMMUNITY = "test-community"
HERE = Path(__file__).resolve().parent
FIXTURES = HERE / "fixtures" / "whatsapp"
ANDROID = FIXTURES / "WhatsApp Chat with Pépite Testers.txt"
ANDROID_24H = FIXTURES / "WhatsApp Chat with Family.txt"
ANDROID_FR = FIXTURES / "Discussion WhatsApp avec Les Copains.txt"
IOS_12H = FIXTURES / "WhatsApp Chat - Book Club.txt"
IOS_FR = FIXTURES / "Discussion WhatsApp avec Voisins.txt"
QUIET = FIXTURES / "WhatsApp Chat with Quiet.txt"
WEEK1 = FIXTURES / "overlap" / "week1" / "WhatsApp Chat with Standup.txt"
WEEK2 = FIXTURES / "overlap" / "week2" / "WhatsApp Chat with Standup.txt"
NNBSP = "\u202f"
LRM = "\u200e"


def sha16(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def member_id(name: str) -> str:
    return f"whatsapp:{COMMUNITY}:name:{sha16(name)}"


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def read_all(path: Path) -> list[ImportedEvent]:
    return list(iter_whatsapp_export(path, COMMUNITY))


def messages(path: Path) -> list[MessageIngested]:
    return [event for event in read_all(path) if isinstance(event, MessageIngested)]


def texts(path: Path) -> list[tuple[str, str]]:
    return [(event.payload.author.name, event.payload.text) for event in messages(path)]


def memberships(path: Path) -> list[tuple[str, str]]:
    return [
        (event.type, event.payload.member.name)
        for event in read_all(path)
        if isinstance(event, MemberJoined | MemberLeft)
    ]


def write_chat(
    directory: Path, lines: list[str], name: str = "WhatsApp Chat with Test.txt"
) -> Path:
    path = directory / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def ios_zip(tmp_path: Path) -> Path:
    """An iPhone export as WhatsApp shares it: a zip with _chat.txt and the media."""
    path = tmp_path / "WhatsApp Chat - Team.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.write(FIXTURES / "ios" / "_chat.txt", "_chat.txt")
        archive.writestr("00000012-PHOTO-2023-12-31-21-41-07.jpg", b"\xff\xd8\xff\xe0")
    return path


@pytest.fixture(scope="module")
def android() -> list[ImportedEvent]:
    return read_all(ANDROID)


# --------------------------------------------------------------------------- Android, English


def test_android_message(android: list[ImportedEvent]) -> None:
    event = next(
        e for e in android if isinstance(e, MessageIngested) and e.payload.text.startswith("Welc")
    )
    message = event.payload
    chat_id = sha16("Pépite Testers")

    assert message.platform is Platform.WHATSAPP
    assert message.community_id == COMMUNITY
    assert message.channel == ChannelRef(id=chat_id, name="Pépite Testers")
    assert message.native_id.startswith(f"{chat_id}:")
    assert message.id == f"whatsapp:{COMMUNITY}:{message.native_id}"
    assert message.text == "Welcome everyone! 🎉"
    assert message.type is MessageType.DEFAULT
    # 12/1/23 is December 1st: "12/13/23" further down settles month/day/year.
    assert message.created_at == utc("2023-12-01T09:05:00")
    assert message.author.id == member_id("Ada Lovelace")
    assert message.author.native_id == f"name:{sha16('Ada Lovelace')}"
    assert message.author.name == "Ada Lovelace"
    # Times have no zone: read as UTC, and kept as written.
    assert message.raw == {"local_time": f"12/1/23, 9:05{NNBSP}AM"}
    assert event.event_id == deterministic_event_id("message.ingested", message.id, "")
    assert event.occurred_at == message.created_at


def test_android_messages_in_order() -> None:
    assert texts(ANDROID) == [
        ("WhatsApp", 'Ada Lovelace created group "Pépite Testers"'),
        ("Ada Lovelace", "Welcome everyone! 🎉"),
        (
            "Bob",
            "Thanks! Quick question:\nhow do I reset my password?\n\nI tried the usual link.",
        ),
        ("Bob", ""),
        ("Chloé Martin", ""),
        ("Ada Lovelace", "Use Settings → Account"),
        ("Bob", "Here is the screenshot"),
        ("+33 6 12 34 56 78", "שלום! مرحبا"),
        ("Ada Lovelace", "ok"),
        ("Ada Lovelace", "ok"),
        ("WhatsApp", 'Bob changed the subject from "Pépite Testers" to "Testers: season 2"'),
        ("WhatsApp", "Ada Lovelace changed this group's icon"),
    ]


def test_twelve_hour_clock_with_narrow_spaces() -> None:
    times = [event.payload.created_at for event in messages(ANDROID)]

    assert times[-1] == utc("2023-12-13T22:20:00")


def test_media_omitted(android: list[ImportedEvent]) -> None:
    message = [e for e in android if isinstance(e, MessageIngested)][3].payload

    assert message.text == ""
    assert message.attachments == [Attachment()]
    assert message.raw["attachments"] == [{"omitted": True, "kind": "media"}]


def test_deleted_message_is_kept_empty(android: list[ImportedEvent]) -> None:
    message = [e for e in android if isinstance(e, MessageIngested)][4].payload

    assert message.author.name == "Chloé Martin"
    assert message.text == ""
    assert message.raw["deleted"] is True
    assert message.type is MessageType.DEFAULT


def test_edited_marker_is_removed(android: list[ImportedEvent]) -> None:
    event = [e for e in android if isinstance(e, MessageIngested)][5]

    assert event.payload.text == "Use Settings → Account"
    assert event.payload.raw["edited"] is True
    assert event.payload.edited_at is None
    # A changed copy gets its own event id; the message keeps its id.
    assert event.event_id != deterministic_event_id("message.ingested", event.payload.id, "")


def test_attached_file_with_caption(android: list[ImportedEvent]) -> None:
    message = [e for e in android if isinstance(e, MessageIngested)][6].payload

    assert message.attachments == [Attachment(filename="IMG-20231201-WA0001.jpg")]
    assert message.text == "Here is the screenshot"
    assert message.raw == {"local_time": f"12/1/23, 9:09{NNBSP}AM"}


def test_phone_numbers_lose_their_direction_marks(android: list[ImportedEvent]) -> None:
    message = [e for e in android if isinstance(e, MessageIngested)][7].payload

    assert message.author.name == "+33 6 12 34 56 78"
    assert message.author.id == member_id("+33 6 12 34 56 78")
    assert message.text == "שלום! مرحبا"


def test_duplicated_lines_are_two_messages(android: list[ImportedEvent]) -> None:
    first, second = [e.payload for e in android if isinstance(e, MessageIngested)][8:10]

    assert (first.text, first.created_at) == (second.text, second.created_at)
    assert first.id != second.id


def test_android_system_lines() -> None:
    assert memberships(ANDROID) == [
        ("member.joined", "Bob"),
        ("member.joined", "Chloé Martin"),
        ("member.joined", "+44 7700 900123"),
        ("member.joined", "+33 6 12 34 56 78"),
        ("member.left", "Chloé Martin"),
        ("member.left", "Bob"),
    ]
    system = [m.payload for m in messages(ANDROID) if m.payload.type is MessageType.SYSTEM]
    assert {message.author.native_id for message in system} == {"system"}


def test_membership_events(android: list[ImportedEvent]) -> None:
    added = [e for e in android if isinstance(e, MemberJoined)][:3]
    source = added[0].payload.source_id

    assert source is not None
    assert source.startswith(f"whatsapp:{COMMUNITY}:{sha16('Pépite Testers')}:")
    assert {event.payload.source_id for event in added} == {source}
    assert len({event.event_id for event in added}) == 3
    change = added[0].payload
    assert change.member.id == member_id("Bob")
    assert change.platform is Platform.WHATSAPP
    assert change.at == utc("2023-12-01T09:01:00")
    assert change.channel == ChannelRef(id=sha16("Pépite Testers"), name="Pépite Testers")
    assert added[0].event_id == deterministic_event_id("member.joined", source, member_id("Bob"))


def test_events_round_trip_through_the_contracts(android: list[ImportedEvent]) -> None:
    for event in android:
        assert decode_event(encode_event(event)) == event


# --------------------------------------------------------------------------- other layouts


def test_android_24_hour_with_bom_and_crlf() -> None:
    found = messages(ANDROID_24H)

    assert [(m.payload.author.name, m.payload.text) for m in found] == [
        ("Mum", "Happy new year everyone!"),
        ("Dad", "🥂"),
        ("Grandma", "Bonne année !"),
    ]
    assert found[0].payload.created_at == utc("2023-12-31T21:41:00")
    assert found[2].payload.created_at == utc("2024-01-01T00:01:00")
    # "You added Grandma": the member is Grandma.
    assert memberships(ANDROID_24H) == [("member.joined", "Grandma")]


def test_android_french() -> None:
    assert texts(ANDROID_FR) == [
        ("WhatsApp", "Alice a créé le groupe « Les Copains »"),
        ("Alice", "Salut tout le monde ! On se retrouve où ?"),
        ("Benoît", ""),
        ("Chloé", ""),
        ("Damien", "Chez moi à 20h"),
    ]
    found = [m.payload for m in messages(ANDROID_FR)]
    assert found[1].created_at == utc("2023-12-31T21:44:00")
    assert found[1].raw == {"local_time": "31/12/2023 à 21:44"}
    assert found[2].raw["attachments"] == [{"omitted": True, "kind": "media"}]
    assert found[3].raw["deleted"] is True
    assert found[4].raw["edited"] is True
    # "Vous avez quitté le groupe": the exporting phone's owner cannot be named.
    assert memberships(ANDROID_FR) == [
        ("member.joined", "Benoît"),
        ("member.joined", "Chloé"),
        ("member.joined", "Damien"),
        ("member.left", "Benoît"),
        ("member.left", "Damien"),
    ]


def test_iphone_zip(ios_zip: Path) -> None:
    events = read_all(ios_zip)
    found = [e.payload for e in events if isinstance(e, MessageIngested)]

    assert [(m.author.name, m.text, m.type) for m in found] == [
        ("WhatsApp", "Ada created group “Team”", MessageType.SYSTEM),
        ("Ada", "Hello team 👋", MessageType.DEFAULT),
        ("Bob", "", MessageType.DEFAULT),
        ("Bob", "", MessageType.DEFAULT),
        ("Ada", "", MessageType.DEFAULT),
        ("Ada", "Fixed the typo", MessageType.DEFAULT),
        ("WhatsApp", "Bob changed the group description", MessageType.SYSTEM),
    ]
    assert found[0].channel == ChannelRef(id=sha16("Team"), name="Team")
    assert found[1].created_at == utc("2023-12-31T21:41:05")
    assert found[1].raw == {"local_time": "31/12/2023, 21:41:05"}
    assert found[2].raw["attachments"] == [{"omitted": True, "kind": "image"}]
    assert found[3].attachments == [Attachment(filename="00000012-PHOTO-2023-12-31-21-41-07.jpg")]
    assert found[4].raw["deleted"] is True
    assert found[5].raw["edited"] is True
    # System lines attributed to the group ("Team: ‎Bob left").
    changes = [
        (e.type, e.payload.member.name) for e in events if not isinstance(e, MessageIngested)
    ]
    assert changes == [("member.joined", "Bob"), ("member.left", "Bob")]


def test_iphone_twelve_hour_clock() -> None:
    found = [m.payload for m in messages(IOS_12H)]

    assert [(m.author.name, m.text) for m in found] == [
        ("Ada", "Which book next?"),
        ("Bob", "Dune"),
    ]
    assert found[0].created_at == utc("2023-12-31T21:41:05")
    assert found[1].created_at == utc("2024-01-02T10:00:00")
    assert found[0].channel.name == "Book Club"


def test_iphone_french() -> None:
    found = [m.payload for m in messages(IOS_FR)]

    assert [(m.author.name, m.text) for m in found] == [
        ("Alice", "Qui a vu mon chat ?"),
        ("Benoît", ""),
    ]
    assert found[0].created_at == utc("2023-12-31T21:41:05")
    assert found[1].raw["attachments"] == [{"omitted": True, "kind": "image"}]
    assert memberships(IOS_FR) == [("member.joined", "Chloé")]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("12/31/23, 9:41 PM - Ada: hi", "2023-12-31T21:41:00"),
        (f"12/31/23, 9:41{NNBSP}PM - Ada: hi", "2023-12-31T21:41:00"),
        ("31/12/2023, 21:41 - Ada: hi", "2023-12-31T21:41:00"),
        ("[31/12/2023, 21:41:05] Ada: hi", "2023-12-31T21:41:05"),
        (f"[12/31/23, 9:41:05{NNBSP}PM] Ada: hi", "2023-12-31T21:41:05"),
        ("31/12/2023 à 21:41 - Ada: hi", "2023-12-31T21:41:00"),
        ("[31/12/2023 21:41:05] Ada: hi", "2023-12-31T21:41:05"),
        (f"{LRM}[31/12/2023, 21:41:05] Ada: hi", "2023-12-31T21:41:05"),
        ("31.12.23, 21:41 - Ada: hi", "2023-12-31T21:41:00"),
        ("2023-12-31, 21:41 - Ada: hi", "2023-12-31T21:41:00"),
        ("12/31/23, 12:05 AM - Ada: hi", "2023-12-31T00:05:00"),
        ("12/31/23, 12:05 PM - Ada: hi", "2023-12-31T12:05:00"),
        ("31/12/2023, 9:41 p. m. - Ada: hi", "2023-12-31T21:41:00"),
    ],
)
def test_every_layout(tmp_path: Path, line: str, expected: str) -> None:
    path = write_chat(tmp_path, [line])

    assert detect_format(path) == "whatsapp"
    (event,) = read_all(path)
    assert isinstance(event, MessageIngested)
    assert (event.payload.author.name, event.payload.text) == ("Ada", "hi")
    assert event.payload.created_at == utc(expected)


# --------------------------------------------------------------------------- date order


def test_date_order_is_settled_late_in_the_file(tmp_path: Path) -> None:
    lines = [f"01/02/2024, 10:{minute:02} - Ada: hi" for minute in range(50)]
    lines.append("13/02/2024, 10:00 - Ada: the day is first")
    first, *_rest, last = messages(write_chat(tmp_path, lines))

    assert first.payload.created_at == utc("2024-02-01T10:00:00")
    assert last.payload.created_at == utc("2024-02-13T10:00:00")


def test_month_first_when_the_second_number_is_above_12(tmp_path: Path) -> None:
    path = write_chat(tmp_path, ["01/02/2024, 10:00 - Ada: hi", "02/14/2024, 10:00 - Ada: hi"])

    assert [m.payload.created_at.date().isoformat() for m in messages(path)] == [
        "2024-01-02",
        "2024-02-14",
    ]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        # Nothing settles it: 24-hour layouts are day/month, 12-hour ones month/day.
        ("01/02/2024, 10:00 - Ada: hi", "2024-02-01"),
        ("[01/02/2024, 10:00:00] Ada: hi", "2024-02-01"),
        ("01/02/24, 10:00 AM - Ada: hi", "2024-01-02"),
        ("[01/02/24, 10:00:00 AM] Ada: hi", "2024-01-02"),
    ],
)
def test_ambiguous_dates_default_by_layout(tmp_path: Path, line: str, expected: str) -> None:
    (event,) = messages(write_chat(tmp_path, [line]))

    assert event.payload.created_at.date().isoformat() == expected


def test_contradicting_dates_are_an_error(tmp_path: Path) -> None:
    path = write_chat(
        tmp_path, ["13/01/2024, 10:00 - Ada: day first", "01/13/2024, 10:00 - Ada: month first"]
    )

    with pytest.raises(ExportFormatError) as caught:
        read_all(path)

    assert caught.value.position == "line 2"
    assert "invalid date or time '01/13/2024, 10:00'" in caught.value.problem
    assert "day/month/year ('13/01/2024, 10:00' at line 1)" in caught.value.problem


def test_impossible_time(tmp_path: Path) -> None:
    path = write_chat(tmp_path, ["31/12/2023, 21:41 - Ada: ok", "31/12/2023, 25:00 - Ada: no"])

    with pytest.raises(ExportFormatError) as caught:
        read_all(path)

    assert caught.value.position == "line 2"
    assert "invalid date or time" in caught.value.problem


# --------------------------------------------------------------------------- ids across exports


def test_overlapping_exports_give_identical_ids() -> None:
    week1 = messages(WEEK1)
    week2 = messages(WEEK2)

    ids1 = [m.payload.id for m in week1]
    ids2 = [m.payload.id for m in week2]
    # 15/01 (twice "ok", then a two-line message) and 16/01 are in both exports.
    assert ids2[:4] == ids1[1:5]
    assert len(set(ids1) | set(ids2)) == 7
    # Unchanged messages are the very same events: re-importing is a no-op.
    assert [encode_event(m) for m in week2[:3]] == [encode_event(m) for m in week1[1:4]]


def test_a_message_deleted_between_exports_keeps_its_id() -> None:
    before = messages(WEEK1)[4]
    after = messages(WEEK2)[3]

    assert before.payload.text == "Anyone for a drink?"
    assert after.payload.text == ""
    assert after.payload.raw["deleted"] is True
    assert after.payload.id == before.payload.id
    assert after.event_id != before.event_id


def test_ids_do_not_depend_on_the_file_layout(tmp_path: Path) -> None:
    # Same chat, exported from the same phone as a text file and as a zip.
    zipped = tmp_path / "WhatsApp Chat with Standup.zip"
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.write(WEEK1, WEEK1.name)

    assert [encode_event(e) for e in read_all(zipped)] == [encode_event(e) for e in read_all(WEEK1)]


def test_importing_twice_gives_the_same_events() -> None:
    assert [encode_event(e) for e in read_all(ANDROID)] == [
        encode_event(e) for e in read_all(ANDROID)
    ]


def test_a_member_has_the_same_id_in_every_chat(ios_zip: Path) -> None:
    bob_here = next(m.payload.author for m in messages(ANDROID) if m.payload.author.name == "Bob")
    bob_there = next(m.payload.author for m in messages(ios_zip) if m.payload.author.name == "Bob")

    assert bob_here == bob_there


# --------------------------------------------------------------------------- edge cases


def test_empty_chat() -> None:
    assert read_all(QUIET) == []
    assert detect_format(QUIET) == "whatsapp"


def test_empty_file_with_the_format_named(tmp_path: Path) -> None:
    path = tmp_path / "WhatsApp Chat with Nobody.txt"
    path.write_bytes(b"")

    assert list(iter_export(path, COMMUNITY, fmt="whatsapp")) == []


def test_ten_thousand_character_message(tmp_path: Path) -> None:
    text = ("Lorem ipsum dolor sit amet, 🦀 ñ ü. " * 300)[:10_000]
    (event,) = messages(write_chat(tmp_path, [f"31/12/2023, 21:41 - Ada: {text}"]))

    assert event.payload.text == text


def test_author_with_an_empty_first_line(tmp_path: Path) -> None:
    (event,) = messages(write_chat(tmp_path, ["31/12/2023, 21:41 - Ada:", "second line"]))

    assert (event.payload.author.name, event.payload.text) == ("Ada", "\nsecond line")


def test_utf16_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    path = tmp_path / "WhatsApp Chat with Test.txt"
    path.write_bytes("31/12/2023, 21:41 - Ada: héllo\r\n".encode("utf-16"))

    assert detect_format(path) == "whatsapp"
    assert texts(path) == [("Ada", "héllo")]


def test_chat_names_from_file_names() -> None:
    assert chat_name_from_file("WhatsApp Chat with Team.txt") == "Team"
    assert chat_name_from_file("WhatsApp Chat - Team (1).zip") == "Team"
    assert chat_name_from_file("Discussion WhatsApp avec Les Copains.txt") == "Les Copains"
    assert chat_name_from_file("WhatsApp-Chat mit Familie.zip") == "Familie"
    assert chat_name_from_file("Chat de WhatsApp con Amigos.txt") == "Amigos"
    assert chat_name_from_file("my chat.txt") == "my chat"


def test_lines_are_read_lazily(tmp_path: Path) -> None:
    path = tmp_path / "WhatsApp Chat with Test.txt"
    path.write_bytes(
        b"31/12/2023, 21:41 - Ada: one\n"
        b"31/12/2023, 21:42 - Ada: two\n"
        b"31/12/2023, 21:43 - Ada: caf\xe9\n"
    )

    events = iter_whatsapp_export(path, COMMUNITY)
    first = next(events)
    assert isinstance(first, MessageIngested)
    assert first.payload.text == "one"
    # "two" is complete only once the next line shows it does not continue it.
    with pytest.raises(ExportFormatError):
        next(events)


# --------------------------------------------------------------------------- errors


def test_latin1_bytes_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "WhatsApp Chat with Test.txt"
    path.write_bytes(
        "31/12/2023, 21:41 - Ada: ok\n31/12/2023, 21:42 - Ada: café\n".encode("latin-1")
    )

    with pytest.raises(ExportFormatError) as caught:
        read_all(path)

    assert caught.value.path == str(path)
    assert caught.value.position == "line 2"
    assert caught.value.problem.startswith(
        "not UTF-8 text: cannot decode byte 0xE9 (byte 29 of the line)"
    )
    assert "Latin-1" in caught.value.problem


def test_utf16_without_a_byte_order_mark(tmp_path: Path) -> None:
    path = tmp_path / "WhatsApp Chat with Test.txt"
    path.write_bytes("31/12/2023, 21:41 - Ada: hi\n".encode("utf-16-le"))

    # Recognised, so that the error says what is wrong with it.
    assert detect_format(path) == "whatsapp"
    with pytest.raises(ExportFormatError) as caught:
        read_all(path)

    assert "UTF-16 text without a byte order mark" in caught.value.problem
    assert caught.value.position == "line 1"


def test_errors_in_a_zip_name_the_member(tmp_path: Path) -> None:
    path = tmp_path / "WhatsApp Chat - Team.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(
            "_chat.txt", b"[31/12/2023, 21:41:05] Ada: ok\n[31/12/2023, 21:41:06] Ada: caf\xe9\n"
        )

    with pytest.raises(ExportFormatError) as caught:
        read_all(path)

    assert caught.value.position == "line 2 of _chat.txt"


def test_not_a_chat(tmp_path: Path) -> None:
    path = write_chat(tmp_path, ["", "Hello, this is not an export", "31/12/2023, 21:41 - Ada: hi"])

    with pytest.raises(ExportFormatError) as caught:
        read_all(path)

    assert caught.value.position == "line 2"
    assert caught.value.problem.startswith("not a WhatsApp chat: this line should start")


def test_zip_without_a_chat(tmp_path: Path) -> None:
    path = tmp_path / "photos.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("a.jpg", b"\xff\xd8")

    assert not sniff_whatsapp(path, path.read_bytes()[:HEAD_SIZE])
    with pytest.raises(ExportFormatError, match="no chat in this zip"):
        iter_whatsapp_export(path, COMMUNITY)


def test_damaged_zip_member(tmp_path: Path) -> None:
    path = tmp_path / "WhatsApp Chat - Team.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("_chat.txt", "[31/12/2023, 21:41:05] Ada: hello\n" * 2000)
    data = bytearray(path.read_bytes())
    start = data.index(b"_chat.txt") + len("_chat.txt")
    data[start + 40 : start + 60] = b"\x00" * 20
    path.write_bytes(bytes(data))

    with pytest.raises(ExportFormatError) as caught:
        read_all(path)

    assert caught.value.path == str(path)
    assert "zip" in caught.value.problem


def test_broken_zip(tmp_path: Path) -> None:
    path = tmp_path / "WhatsApp Chat - Team.zip"
    path.write_bytes(b"PK\x03\x04 this is not really a zip")

    assert not sniff_whatsapp(path, path.read_bytes())
    with pytest.raises(ExportFormatError, match="not a valid zip file"):
        iter_whatsapp_export(path, COMMUNITY)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ExportFormatError, match="file not found"):
        iter_whatsapp_export(tmp_path / "WhatsApp Chat with Nobody.txt", COMMUNITY)


def test_bad_community_id() -> None:
    with pytest.raises(ValueError, match="invalid community id"):
        iter_whatsapp_export(ANDROID, "no:colons")


# --------------------------------------------------------------------------- detection


@pytest.mark.parametrize(
    "path",
    [
        ANDROID,
        ANDROID_24H,
        ANDROID_FR,
        IOS_12H,
        IOS_FR,
        QUIET,
        WEEK1,
        FIXTURES / "ios" / "_chat.txt",
    ],
    ids=lambda p: p.name,
)
def test_fixtures_are_detected(path: Path) -> None:
    assert detect_format(path) == "whatsapp"
    assert [encode_event(e) for e in iter_export(path, COMMUNITY)] == [
        encode_event(e) for e in read_all(path)
    ]


def test_zip_is_detected(ios_zip: Path) -> None:
    assert detect_format(ios_zip) == "whatsapp"
    assert len(list(iter_export(ios_zip, COMMUNITY))) == 9


@pytest.mark.parametrize(
    "path",
    sorted((HERE / "fixtures" / "discord").glob("*"))
    + sorted((HERE / "fixtures" / "telegram").glob("*")),
    ids=lambda p: p.name,
)
def test_other_exports_are_not_whatsapp(path: Path) -> None:
    # Discord's not-json.json holds a WhatsApp line, but WhatsApp never names a file .json.
    assert not sniff_whatsapp(path, path.read_bytes()[:HEAD_SIZE])


@pytest.mark.parametrize(
    "content",
    [
        b'{"id": 1, "text": "31/12/2023, 21:41 - Ada: hi"}\n',
        b"Ada: hi\n31/12/2023, 21:41 - Ada: hi\n",
        b"2023-12-31T21:41:00Z Ada hi\n",
        b"",
        b"\n\n",
    ],
)
def test_other_text_is_not_whatsapp(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "chat.txt"
    path.write_bytes(content)

    assert not sniff_whatsapp(path, content)
    if content.strip():
        with pytest.raises(UnknownFormatError):
            detect_format(path)
