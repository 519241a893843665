"""The Discourse importer: topics, latest posts and posts as the REST API returns them."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from tests.services.ingestor.dce_helpers import FIXTURES as DISCORD_FIXTURES

from pepite_contracts import (
    MessageDeleted,
    MessageIngested,
    MessageType,
    Platform,
    decode_event,
    deterministic_event_id,
    encode_event,
)
from pepite_ingestor.importers import ExportFormatError, detect_format, iter_export
from pepite_ingestor.importers.discourse import (
    cooked_to_text,
    iter_discourse_export,
    markdown_quotes,
    sniff_discourse,
)

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "discourse"
COMMUNITY = "forum"


def post(post_id: int, number: int, **overrides: Any) -> dict[str, Any]:
    """A post as ``GET /t/{id}.json`` returns it, with the usual noise."""
    data: dict[str, Any] = {
        "id": post_id,
        "name": "",
        "username": "ann",
        "avatar_template": "/user_avatar/forum.example.org/ann/{size}/1_2.png",
        "created_at": "2024-05-01T10:00:00.000Z",
        "cooked": f"<p>post {number}</p>",
        "post_number": number,
        "post_type": 1,
        "updated_at": "2024-05-01T10:00:00.000Z",
        "reply_to_post_number": None,
        "version": 1,
        "can_edit": False,
        "read": True,
        "user_id": 1,
        "actions_summary": [],
        "deleted_at": None,
        "user_deleted": False,
    }
    data.update(overrides)
    return data


def topic(posts: list[dict[str, Any]], **meta: Any) -> dict[str, Any]:
    """A topic with its metadata after ``post_stream``, as Discourse writes it."""
    document: dict[str, Any] = {
        "post_stream": {"posts": posts, "stream": [p.get("id") for p in posts]},
        "id": 7,
        "title": "A topic",
        "category_id": 3,
    }
    document.update(meta)
    return document


def write(path: Path, *documents: Any, indent: int | None = None) -> Path:
    text = "\n".join(json.dumps(d, ensure_ascii=False, indent=indent) for d in documents)
    path.write_text(text + "\n", encoding="utf-8")
    return path


def read_all(path: Path) -> list[Any]:
    return list(iter_discourse_export(path, COMMUNITY))


def by_id(events: list[Any]) -> dict[str, Any]:
    return {event.payload.native_id: event for event in events}


# ------------------------------------------------------------------------ topic file


def test_topic_file_maps_posts_with_metadata_written_after_them() -> None:
    events = read_all(FIXTURES / "topic.json")

    assert [e.payload.native_id for e in events] == [str(n) for n in range(1001, 1010)]
    first = events[0]
    assert isinstance(first, MessageIngested)
    msg = first.payload
    assert msg.id == "discourse:forum:1001"
    assert msg.platform is Platform.DISCOURSE
    assert (msg.channel.id, msg.channel.name) == ("category:5", "category 5")
    assert msg.thread is not None
    assert (msg.thread.id, msg.thread.name) == ("77", "Install behind a proxy")
    assert msg.type is MessageType.THREAD_STARTER
    assert msg.created_at == datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
    assert msg.text == (
        "How do I install Pépite behind a proxy? I read the install guide & asked @bob :thinking:"
    )
    assert [(m.member_id, m.name) for m in msg.mentions] == [("discourse:forum:user:bob", "bob")]
    assert [(r.emoji, r.count) for r in msg.reactions] == [("heart", 3)]
    assert [(a.url, a.filename) for a in msg.attachments] == [
        ("https://forum.example.org/uploads/default/original/1X/abc.png", "error.png")
    ]
    assert msg.raw["links"] == [
        {"text": "the install guide", "href": "https://example.org/docs/install"}
    ]
    # Flags that happened are kept; what the exporting account may do is not.
    assert msg.raw["actions_summary"] == [{"id": 8, "count": 1}]
    assert msg.raw["post_number"] == 1
    assert not any(key.startswith("can_") for key in msg.raw)
    assert "read" not in msg.raw
    assert "yours" not in msg.raw
    assert msg.raw["author"] == {
        "avatar_template": "/user_avatar/forum.example.org/ada/{size}/12_2.png",
        "display_username": "Ada Lovelace",
        "user_title": "Regular",
        "user_id": 12,
        "trust_level": 2,
    }
    # The thread starter carries the topic's own fields, minus viewer and session noise.
    assert msg.raw["topic"]["tags"] == ["install", "proxy"]
    assert msg.raw["topic"]["views"] == 321
    assert msg.raw["topic"]["closed"] is True
    for noise in ("draft_key", "message_bus_last_id", "current_post_number", "bookmarked"):
        assert noise not in msg.raw["topic"]
    assert "details" not in msg.raw["topic"]
    assert "suggested_topics" not in msg.raw["topic"]

    author = msg.author
    assert (author.id, author.native_id) == ("discourse:forum:user:ada", "user:ada")
    assert (author.name, author.display_name) == ("ada", "Ada Lovelace")
    assert author.avatar_url is None  # relative templates stay in raw
    assert not author.is_bot


def test_replies_quotes_code_and_edits() -> None:
    events = by_id(read_all(FIXTURES / "topic.json"))

    reply = events["1002"].payload
    assert reply.type is MessageType.REPLY
    assert reply.reply_to_id == "discourse:forum:1001"
    # Quoted words are someone else's: out of the text, kept in raw.
    assert reply.text.startswith("Set HTTPS_PROXY first, then:\n\nuv sync --frozen\n  make up\n")
    assert "behind a proxy?" not in reply.text
    assert reply.raw["quotes"] == [
        {
            "username": "ada",
            "post": "1",
            "topic": "77",
            "text": "How do I install Pépite behind a proxy?",
        }
    ]
    assert "See proxy.pdf (12.3 KB) and @carol, @ada." in reply.text
    assert "Community insights" not in reply.text  # link preview (onebox) left out
    assert reply.raw["links"] == [{"text": "", "href": "https://github.com/example/pepite"}]
    assert [(a.url, a.filename) for a in reply.attachments] == [
        ("/uploads/short-url/proxy.pdf", "proxy.pdf")
    ]
    assert [m.member_id for m in reply.mentions] == [
        "discourse:forum:user:carol",
        "discourse:forum:user:ada",
    ]
    # Likes and the reactions plugin: one heart, not two.
    assert [(r.emoji, r.count) for r in reply.reactions] == [("heart", 1), ("+1", 2)]
    assert reply.edited_at == datetime(2024, 5, 1, 12, 30, tzinfo=UTC)
    assert reply.raw["edit_reason"] == "typo"
    assert reply.author.id == "discourse:forum:user:bob"  # "Bob" lowercased
    assert reply.author.name == "Bob"
    assert reply.author.display_name is None
    assert reply.author.avatar_url == "https://avatars.example.org/bob/120.png"
    assert reply.raw["author"]["moderator"] is True

    thanks = events["1003"].payload
    assert thanks.text == "Thanks! שלום, это работает 🎉"
    assert thanks.reply_to_id == "discourse:forum:1002"
    # Version 2 but saved within a second of creation: not an edit.
    assert thanks.edited_at is None


def test_system_deleted_whisper_and_unknown_posts() -> None:
    events = by_id(read_all(FIXTURES / "topic.json"))

    closed = events["1004"].payload
    assert closed.type is MessageType.SYSTEM
    assert closed.raw["action_code"] == "closed.enabled"
    assert closed.raw["post_type"] == 3
    assert closed.author.is_bot  # the system user has id -1

    deleted = events["1005"]
    assert isinstance(deleted, MessageDeleted)
    assert deleted.payload.id == "discourse:forum:1005"
    assert deleted.payload.deleted_at == datetime(2024, 5, 2, 12, 0, tzinfo=UTC)
    assert deleted.payload.channel.id == "category:5"
    assert deleted.event_id == deterministic_event_id("message.deleted", "discourse:forum:1005")

    withdrawn = events["1006"]
    assert isinstance(withdrawn, MessageDeleted)
    assert withdrawn.payload.raw == {"post_number": 6, "user_deleted": True}
    assert withdrawn.payload.deleted_at == datetime(2024, 5, 2, 13, 30, tzinfo=UTC)

    whisper = events["1007"].payload
    assert whisper.raw["whisper"] is True
    assert whisper.type is MessageType.REPLY

    orphan = events["1008"].payload
    assert orphan.type is MessageType.REPLY
    assert orphan.reply_to_id is None
    assert orphan.raw["reply_to_post_number"] == 8

    future = events["1009"].payload
    assert future.type is MessageType.SYSTEM
    assert future.raw["post_type"] == 99


def test_event_ids_are_deterministic() -> None:
    first = read_all(FIXTURES / "topic.json")
    again = read_all(FIXTURES / "topic.json")

    assert [e.event_id for e in first] == [e.event_id for e in again]
    assert first[0].event_id == deterministic_event_id(
        "message.ingested", "discourse:forum:1001", ""
    )
    assert first[1].event_id == deterministic_event_id(
        "message.ingested", "discourse:forum:1002", "2024-05-01T12:30:00+00:00"
    )


def test_events_survive_encoding() -> None:
    for name in ("topic.json", "latest_posts.json", "post.json", "topics.jsonl"):
        for event in read_all(FIXTURES / name):
            assert decode_event(encode_event(event)) == event


# ------------------------------------------------------------- other API responses


def test_latest_posts_resolve_replies_to_posts_later_in_the_file() -> None:
    events = read_all(FIXTURES / "latest_posts.json")

    assert [e.payload.native_id for e in events] == ["2003", "2002", "2001", "3001"]
    agreed, dark_mode, question, private = (e.payload for e in events)
    assert agreed.reply_to_id == "discourse:forum:2002"  # newest first: parent comes after
    assert [m.member_id for m in agreed.mentions] == ["discourse:forum:user:ben"]
    assert dark_mode.author.id == "discourse:forum:user:ben"
    assert (agreed.channel.id, agreed.thread and agreed.thread.name) == (
        "category:9",
        "Roadmap ideas",
    )
    assert question.type is MessageType.THREAD_STARTER
    assert dark_mode.type is MessageType.DEFAULT
    assert (private.channel.id, private.channel.name) == ("uncategorized", "uncategorized")
    assert private.thread is not None
    assert private.thread.id == "99"


def test_single_post_with_markdown_raw() -> None:
    (event,) = read_all(FIXTURES / "post.json")

    msg = event.payload
    assert msg.text == "That fixed it, thanks @bob!"
    assert msg.raw["quotes"] == [
        {"username": "bob", "post": "2", "topic": "77", "text": "Set HTTPS_PROXY first"}
    ]
    assert [m.member_id for m in msg.mentions] == ["discourse:forum:user:bob"]
    assert msg.reply_to_id is None
    assert msg.raw["reply_to_post_number"] == 2
    assert msg.thread is not None
    assert msg.thread.name == "Install behind a proxy"
    assert [(r.emoji, r.count) for r in msg.reactions] == [("heart", 2)]


def test_markdown_without_cooked_finds_mentions(tmp_path: Path) -> None:
    path = write(
        tmp_path / "t.json",
        topic([post(1, 1, cooked=None, raw="Hi @Zoë_K and @bob.smith, mail me@example.org")]),
    )

    (event,) = read_all(path)

    assert [m.name for m in event.payload.mentions] == ["Zoë_K", "bob.smith"]
    assert event.payload.text == "Hi @Zoë_K and @bob.smith, mail me@example.org"


def test_topics_one_per_line() -> None:
    events = read_all(FIXTURES / "topics.jsonl")

    assert [e.payload.native_id for e in events] == ["1001", "1002", "5001"]
    assert events[1].payload.reply_to_id == "discourse:forum:1001"
    second = events[2].payload
    assert (second.channel.id, second.channel.name) == ("category:3", "Announcements")
    assert second.thread is not None
    assert (second.thread.id, second.thread.name) == ("500", "Second")


def test_replies_do_not_cross_topics(tmp_path: Path) -> None:
    path = write(
        tmp_path / "two.jsonl",
        topic([post(10, 1), post(11, 2)], id=1),
        topic([post(20, 1), post(21, 3, reply_to_post_number=2)], id=2),
    )

    events = by_id(read_all(path))

    assert events["21"].payload.reply_to_id is None
    assert events["21"].payload.raw["reply_to_post_number"] == 2


def test_posts_pages_without_topic_fields(tmp_path: Path) -> None:
    # GET /t/{id}/posts.json: only the post stream; posts carry their topic id.
    path = write(
        tmp_path / "posts.json",
        {"post_stream": {"posts": [post(5, 1, topic_id=9, category_id=4), post(6, 2, topic_id=9)]}},
    )

    first, second = read_all(path)

    assert first.payload.thread.id == "9"
    assert first.payload.thread.name is None
    assert first.payload.channel.id == "category:4"
    assert second.payload.channel.id == "uncategorized"


def test_deleted_topic_deletes_its_posts(tmp_path: Path) -> None:
    path = write(
        tmp_path / "t.json",
        topic([post(1, 1), post(2, 2)], deleted_at="2024-06-01T00:00:00Z"),
    )

    events = read_all(path)

    assert all(isinstance(e, MessageDeleted) for e in events)
    assert events[0].payload.deleted_at == datetime(2024, 6, 1, tzinfo=UTC)


def test_private_messages_channel(tmp_path: Path) -> None:
    path = write(
        tmp_path / "pm.json", topic([post(1, 1)], category_id=None, archetype="private_message")
    )

    (event,) = read_all(path)

    assert (event.payload.channel.id, event.payload.channel.name) == (
        "private_messages",
        "private messages",
    )


def test_category_name_and_fancy_title(tmp_path: Path) -> None:
    path = write(
        tmp_path / "t.json",
        topic(
            [post(1, 1)], title=None, fancy_title="Tom &amp; Jerry&rsquo;s", category_name="Help"
        ),
    )

    (event,) = read_all(path)

    assert event.payload.thread.name == "Tom & Jerry’s"
    assert event.payload.channel.name == "Help"


def test_unicode_and_a_long_post(tmp_path: Path) -> None:
    long_text = "é🙂ب" * 3334
    path = write(
        tmp_path / "t.json",
        topic(
            [
                post(1, 1, cooked=f"<p>{long_text}</p>"),
                post(2, 2, cooked="<p>مرحبا <strong>שלום</strong> 👋🏽</p>", username="زينب"),
            ],
            title="عنوان 🌍",
        ),
        indent=2,
    )

    first, second = read_all(path)

    assert first.payload.text == long_text
    assert len(first.payload.text) == 10_002
    assert second.payload.text == "مرحبا שלום 👋🏽"
    assert second.payload.author.id == "discourse:forum:user:زينب"
    assert second.payload.thread.name == "عنوان 🌍"


def test_missing_optional_fields(tmp_path: Path) -> None:
    bare = {"id": 1, "username": "ann", "created_at": "2024-05-01T10:00:00Z", "post_number": 2}
    path = write(tmp_path / "t.json", topic([bare]))

    (event,) = read_all(path)

    msg = event.payload
    assert msg.text == ""
    assert msg.type is MessageType.DEFAULT
    assert (msg.mentions, msg.reactions, msg.attachments) == ([], [], [])
    assert msg.raw == {"post_number": 2}
    assert msg.author.display_name is None


def test_the_same_post_twice_has_one_stable_id(tmp_path: Path) -> None:
    path = write(tmp_path / "dup.json", topic([post(1, 1), post(1, 1)]))

    first, second = read_all(path)

    assert first.payload.id == second.payload.id == "discourse:forum:1"
    assert first.event_id == second.event_id


def test_a_big_topic_streams(tmp_path: Path) -> None:
    posts = [
        post(n, n, reply_to_post_number=n - 1 if n > 1 else None, cooked=f"<p>reply {n}</p>")
        for n in range(1, 5001)
    ]
    path = write(tmp_path / "big.json", topic(posts))

    events = read_all(path)

    assert len(events) == 5000
    assert events[-1].payload.reply_to_id == "discourse:forum:4999"
    assert events[-1].payload.text == "reply 5000"


# -------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("content", "problem", "position"),
    [
        (b"", "file is empty", None),
        (b"   \n", "file is empty", None),
        (b'{"post_stream": {"posts": [{"id": 1,', "file is truncated", "end of file"),
        (b'{"post_stream": {"posts": [}}', "invalid JSON", "byte"),
        (b"[1, 2]", "not a Discourse export: a top-level JSON value is an array", "document #1"),
        (b'{"name": "x"}', "not a Discourse topic, post list or post", "document #1"),
    ],
)
def test_broken_files(tmp_path: Path, content: bytes, problem: str, position: str | None) -> None:
    path = tmp_path / "t.json"
    path.write_bytes(content)

    with pytest.raises(ExportFormatError) as caught:
        read_all(path)

    assert caught.value.problem.startswith(problem), caught.value.problem
    if position is None:
        assert caught.value.position is None
    else:
        assert caught.value.position is not None
        assert position in caught.value.position


def test_broken_json_is_refused_before_any_event(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    path.write_text(json.dumps(topic([post(1, 1), post(2, 2)]))[:-40])

    with pytest.raises(ExportFormatError, match="truncated"):
        iter_discourse_export(path, COMMUNITY)


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"username": None}, "missing required field 'username'"),
        ({"created_at": None}, "missing required field 'created_at'"),
        ({"created_at": "2024-05-01T10:00:00"}, "field 'created_at' has no UTC offset"),
        ({"created_at": "soon"}, "field 'created_at' is not a valid timestamp"),
        ({"cooked": 3}, "field 'cooked' must be a string"),
    ],
)
def test_bad_posts_are_named(tmp_path: Path, overrides: dict[str, Any], problem: str) -> None:
    path = write(tmp_path / "t.json", topic([post(1, 1), post(2, 2, **overrides)]))
    events = iter_discourse_export(path, COMMUNITY)
    next(events)

    with pytest.raises(ExportFormatError) as caught:
        next(events)

    assert caught.value.problem.startswith(problem), caught.value.problem
    assert caught.value.position == "post #2 (id 2)"


def test_post_without_id(tmp_path: Path) -> None:
    path = write(tmp_path / "t.json", topic([post(1, 1, id=None)]))

    with pytest.raises(ExportFormatError) as caught:
        read_all(path)

    assert caught.value.problem == "missing required field 'id'"
    assert caught.value.position == "post #1"


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ExportFormatError, match="file not found"):
        iter_discourse_export(tmp_path / "nope.json", COMMUNITY)


def test_invalid_community_id() -> None:
    with pytest.raises(ValueError, match="invalid community id"):
        iter_discourse_export(FIXTURES / "topic.json", "no spaces")


# ----------------------------------------------------------------------- detection


@pytest.mark.parametrize("name", ["topic.json", "latest_posts.json", "post.json", "topics.jsonl"])
def test_fixtures_are_detected(name: str) -> None:
    assert detect_format(FIXTURES / name) == "discourse"
    assert list(iter_export(FIXTURES / name, COMMUNITY))


def test_a_topic_larger_than_the_head_is_detected(tmp_path: Path) -> None:
    posts = [post(n, n, cooked="<p>" + "x" * 1000 + "</p>") for n in range(1, 200)]
    path = write(tmp_path / "big.json", topic(posts), indent=2)

    assert path.stat().st_size > 64 * 1024
    assert detect_format(path) == "discourse"


def test_a_folder_of_topic_dumps_is_imported_file_by_file(tmp_path: Path) -> None:
    folder = tmp_path / "t"
    folder.mkdir()
    write(folder / "1.json", topic([post(1, 1)], id=1))
    write(folder / "2.json", topic([post(2, 1)], id=2))

    # The folder itself is no export: the import command expands it into its files.
    assert not sniff_discourse(folder, b"")
    assert [detect_format(f) for f in sorted(folder.iterdir())] == ["discourse", "discourse"]


@pytest.mark.parametrize("name", sorted(p.name for p in DISCORD_FIXTURES.iterdir()))
def test_discord_exports_are_not_taken(name: str) -> None:
    path = DISCORD_FIXTURES / name

    assert not sniff_discourse(path, path.read_bytes()[: 64 * 1024])


def test_generic_jsonl_is_not_taken() -> None:
    path = Path(__file__).resolve().parent / "fixtures" / "jsonl" / "community.jsonl"

    assert not sniff_discourse(path, path.read_bytes())


# ------------------------------------------------------------------- cooked HTML


def test_cooked_to_text_details() -> None:
    parsed = cooked_to_text(
        "<h2>Title</h2>\n<p>a&nbsp;b &lt;tag&gt; &#x1F600;<br>\nnext line</p>\n"
        "<ul>\n<li>one</li>\n<li>two</li>\n</ul>\n"
        '<p><a class="hashtag-cooked" href="/c/help/5">#help</a> '
        '<a class="mention-group" href="/groups/team">@team</a></p>'
        "<details><summary>Spoiler</summary><p>hidden</p></details>"
    )

    assert parsed.text == (
        "Title\n\na\xa0b <tag> 😀\nnext line\n\none\ntwo\n\n#help @team\n\nSpoiler\n\nhidden"
    )
    assert parsed.links == [
        {"text": "#help", "href": "/c/help/5"},
        {"text": "@team", "href": "/groups/team"},
    ]
    assert parsed.mentions == []


def test_cooked_to_text_survives_broken_html() -> None:
    parsed = cooked_to_text("<p>open <b>bold <i>both</p><p>after</b> <a href='x'>link")

    assert parsed.text == "open bold both\n\nafter link"
    assert parsed.links == [{"text": "link", "href": "x"}]


def test_markdown_quotes() -> None:
    text, quotes = markdown_quotes(
        '[quote="ann, post:3, topic:9"]\nfirst\n[/quote]\nmiddle\n[quote]\nanon\n[/quote]\nend'
    )

    assert text == "middle\nend"
    assert quotes == [
        {"username": "ann", "post": "3", "topic": "9", "text": "first"},
        {"text": "anon"},
    ]


def test_posts_one_per_line_resolve_replies_across_lines(tmp_path: Path) -> None:
    path = write(
        tmp_path / "posts.jsonl",
        post(2, 2, topic_id=5, reply_to_post_number=1, raw="Answer"),
        post(1, 1, topic_id=5, topic_title="Question", category_id=2, raw="Question?"),
    )

    answer, question = read_all(path)

    assert detect_format(path) == "discourse"
    assert answer.payload.reply_to_id == "discourse:forum:1"
    assert answer.payload.text == "Answer"
    assert question.payload.thread.name == "Question"
    assert question.payload.channel.id == "category:2"
