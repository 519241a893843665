"""Stream Discourse topics and posts, as its REST API returns them, as Pépite events.

Accepted files (detected by their content, whatever their name):

- a topic, as ``GET /t/{id}.json`` returns it:
  ``{"post_stream": {"posts": [...], "stream": [...]}, "id": 7, "title": ..., "category_id": 3,
  "tags": [...], "details": {...}}``;
- a list of latest posts, as ``GET /posts.json`` returns it: ``{"latest_posts": [...]}``,
  each post carrying its ``topic_id``, ``topic_title`` and ``category_id``;
- a single post, as ``GET /posts/{id}.json`` returns it (with its markdown ``raw``);
- any number of the above one after the other, e.g. one per line (JSON Lines).

A folder of ``t/{id}.json`` dumps is imported file by file by the import command.

How a post maps to the contracts:

- channel = the topic's category: id ``category:<category_id>``, name from the file's
  ``category_name`` (or ``category_slug``) if any, else ``"category <id>"``; topics
  without a category (private messages) go to ``private_messages``;
- thread = the topic (id = topic id, name = its title); post #1 is the ``THREAD_STARTER``
  and carries the topic's other fields (tags, views, ...) in ``raw["topic"]``;
- message stable id ``discourse:<community>:<post id>``;
- text = the markdown ``raw`` when the file has it, else the ``cooked`` HTML as plain
  text (links keep their text; their targets go to ``raw["links"]``);
- members: Discourse mentions carry only a username, so every member, author or
  mentioned, is identified by username: native id ``user:<lowercased username>``, stable
  id ``discourse:<community>:user:<lowercased username>`` (the numeric ``user_id`` is
  kept in ``raw["author"]``). A renamed account therefore counts as a new member;
- ``reply_to_post_number`` becomes ``reply_to_id`` when the parent post is in the same
  file, else it stays in ``raw``; likes (``actions_summary`` id 2) become a ``heart``
  reaction, and reactions from the discourse-reactions plugin are kept too;
- a post edited after it was made (``version`` > 1) gets ``edited_at`` = ``updated_at``;
- a deleted post (``deleted_at`` set, or withdrawn by its author: ``user_deleted``)
  becomes a ``MessageDeleted``, so its text disappears downstream too;
- moderator actions, small actions (``closed.enabled``, ...) and unknown post types are
  ``SYSTEM`` messages with ``post_type`` / ``action_code`` in ``raw``; whispers (staff-only
  posts) are kept with ``raw["whisper"] = true``.

Memory: posts are streamed one at a time with ijson. Discourse writes the topic's title
and category *after* ``post_stream``, so a first pass reads only the topic-level fields
and each post's number (to resolve replies), then a second pass streams the posts.
"""

from __future__ import annotations

import codecs
import html
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from pepite_contracts import (
    ChannelRef,
    Member,
    MessageDeleted,
    MessageIngested,
    MessageType,
    Platform,
    ThreadRef,
    stable_id,
)
from pepite_ingestor.importers._jsonstream import (
    BACKEND,
    JSON_ERRORS,
    TrackingReader,
    build_value,
    describe_json_error,
    json_kind,
    open_export,
    skip_value,
)
from pepite_ingestor.importers.common import fast_event_id, message_ingested, validate_community_id
from pepite_ingestor.importers.errors import ExportFormatError

__all__ = [
    "CookedText",
    "DiscourseEvent",
    "cooked_to_text",
    "iter_discourse_export",
    "markdown_quotes",
    "sniff_discourse",
]

#: What a Discourse export yields.
DiscourseEvent = MessageIngested | MessageDeleted

_PLATFORM = Platform.DISCOURSE.value

_TOPIC_POSTS = "post_stream.posts.item"
_LATEST_POSTS = "latest_posts.item"
_POST_PREFIXES = frozenset({_TOPIC_POSTS, _LATEST_POSTS})
_POST_NUMBER_FIELDS = frozenset(
    f"{items}.{key}" for items in _POST_PREFIXES for key in ("id", "post_number", "topic_id")
)
_SCALARS = frozenset({"string", "number", "boolean", "null"})
_STARTS = frozenset({"start_map", "start_array"})

# Discourse post types (Post.types).
_REGULAR, _MODERATOR_ACTION, _SMALL_ACTION, _WHISPER = 1, 2, 3, 4
#: ``actions_summary`` id of a like (PostActionType.types[:like]).
_LIKE_ACTION = 2
#: Discourse's like is a heart, and the reactions plugin calls it "heart" too.
_LIKE_EMOJI = "heart"
#: A save within this long of creation is the creation, not an edit.
_EDIT_GRACE = timedelta(seconds=1)
#: Beyond this many posts, replies to posts not yet read stay as numbers in ``raw``.
_MAX_NUMBERED_POSTS = 2_000_000
_CACHE_SIZE = 4096

# Post fields the contracts model (or that this importer reads) and so never go to raw.
_POST_MODELED = frozenset(
    {
        "id",
        "username",
        "name",
        "created_at",
        "cooked",
        "raw",
        "topic_id",
        "topic_title",
        "topic_slug",
        "category_id",
        "category_name",
        "category_slug",
        "reply_to_post_number",
        "actions_summary",
        "reactions",
        "post_type",
        "deleted_at",
        "user_deleted",
    }
)
# Post fields that describe the author; kept in raw["author"].
_AUTHOR_FIELDS = frozenset(
    {
        "user_id",
        "avatar_template",
        "display_username",
        "moderator",
        "admin",
        "staff",
        "trust_level",
        "user_title",
        "title_is_group",
        "primary_group_name",
        "flair_name",
        "flair_url",
        "flair_bg_color",
        "flair_color",
        "flair_group_id",
        "user_cakedate",
        "user_birthdate",
        "badges_granted",
        "user_status",
        "animated_avatar",
    }
)
# Topic fields the thread/channel model, never repeated in raw["topic"].
_TOPIC_MODELED = frozenset({"id", "title", "fancy_title", "category_id", "category_name"})


def _is_viewer_field(key: str) -> bool:
    """Fields about the account that downloaded the JSON, not about the community.

    ``can_edit``, ``read``, ``bookmarked``... differ with whoever ran the export and
    would make two exports of the same post differ, so they are not kept.
    """
    return (
        key.startswith(("can_", "draft", "current_user", "bookmark"))
        or key
        in {
            "read",
            "yours",
            "message_bus_last_id",
            "chunk_size",
            "unpinned",
            "current_post_number",
            "notification_level",
        }
        or key.endswith("_by_current_user")
    )


def _kept(value: Any) -> bool:
    # Empty values are what the API writes when there is nothing to say.
    return value not in (None, False, "", [], {})


# ---------------------------------------------------------------------------- sniffing


def sniff_discourse(path: Path, head: bytes) -> bool:
    """Recognise Discourse API JSON: a topic, a ``latest_posts`` list or a post.

    Args:
        path: The export (unused: the head is enough).
        head: The first bytes of the file.

    Returns:
        Whether the first JSON object in the head has a ``post_stream`` or
        ``latest_posts`` key, or both ``post_number`` and ``topic_id`` (a post).
    """
    del path
    text = head.removeprefix(codecs.BOM_UTF8).lstrip(b" \t\r\n")
    if not text.startswith(b"{"):
        return False
    keys: set[str] = set()
    try:
        for prefix, event, value in BACKEND.parse(io.BytesIO(text), multiple_values=True):
            if prefix != "":
                continue
            if event == "map_key":
                if value in ("post_stream", "latest_posts"):
                    return True
                keys.add(value)
                if {"post_number", "topic_id"} <= keys:
                    return True
            elif event == "end_map":
                return False
    except JSON_ERRORS:
        # The head cut the document short, or it is not JSON: not recognisable here.
        return False
    return False


# ----------------------------------------------------------------------- cooked HTML

_BLOCK_BREAK = {
    "p": 2,
    "blockquote": 2,
    "pre": 2,
    "ul": 2,
    "ol": 2,
    "table": 2,
    "aside": 2,
    "details": 2,
    "h1": 2,
    "h2": 2,
    "h3": 2,
    "h4": 2,
    "h5": 2,
    "h6": 2,
    "hr": 2,
    "li": 1,
    "tr": 1,
    "div": 1,
    "summary": 1,
}
_SKIPPED_DIVS = frozenset({"title", "meta", "quote-controls"})
_SKIPPED_TAGS = frozenset({"script", "style", "svg", "template"})
_VOID = frozenset({"br", "img", "hr", "input", "meta", "link", "source", "wbr", "area", "col"})
_SPACES = re.compile(r"[ \t\r\n\f]+")
_BLANK_LINES = re.compile(r"\n{3,}")
_MARKDOWN_QUOTE = re.compile(
    r"\[quote(?:=\"?([^\]\"]*)\"?)?\](.*?)\[/quote\]\n?", re.DOTALL | re.IGNORECASE
)
_MARKDOWN_MENTION = re.compile(r"(?<![\w@/`])@(\w(?:[\w.-]*\w)?)")


@dataclass
class CookedText:
    """What a post's HTML says, split into what the contracts model and the rest.

    Attributes:
        text: The visible text.
        mentions: Usernames mentioned (``<a class="mention">``), as written.
        links: ``{"text", "href"}`` of every other link, in order.
        attachments: ``{"url", "filename"}`` of uploaded files and images.
        quotes: ``{"username", "post", "topic", "text"}`` of every quoted post. Quoted
            text is someone else's words, so it is here rather than in ``text``.
    """

    text: str
    mentions: list[str] = field(default_factory=list)
    links: list[dict[str, str]] = field(default_factory=list)
    attachments: list[dict[str, str]] = field(default_factory=list)
    quotes: list[dict[str, str]] = field(default_factory=list)


class _CookedParser(HTMLParser):
    """Turns Discourse's ``cooked`` HTML into text with the stdlib parser (no dependency)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        # Text, and line breaks as numbers (1 = new line, 2 = new paragraph) so that
        # nested blocks ending together make one paragraph break, not several.
        self.parts: list[str | int] = []
        # Where text goes: the post's parts, or the text of the quote being read.
        self._out = self.parts
        self._quotes: list[tuple[dict[str, str], list[str | int]]] = []
        self.result = CookedText(text="")
        self._stack: list[tuple[str, str]] = []  # (tag, role) of open elements
        self._skip = 0  # > 0 inside elements whose text is not the post's (onebox, ...)
        self._pre = 0
        self._link: dict[str, Any] | None = None

    def _break(self, lines: int) -> None:
        self._out.append(lines)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        classes = set(attributes.get("class", "").split())
        if tag in _VOID:
            if tag == "img":
                self._image(attributes, classes)
            elif tag in ("br", "hr") and not self._skip:
                self._break(1 if tag == "br" else 2)
            return
        role = "skip" if self._skip else self._role(tag, attributes, classes)
        if role == "skip":
            self._skip += 1
        elif tag in _BLOCK_BREAK:
            self._break(_BLOCK_BREAK[tag])
        if tag == "pre":
            self._pre += 1
        self._stack.append((tag, role))

    def _role(self, tag: str, attributes: dict[str, str], classes: set[str]) -> str:
        """What an opening element is to the text: "skip", "quote", "link", "lightbox" or ""."""
        if tag == "aside" and "onebox" in classes:
            # A link preview: the text is the linked page's, not the author's.
            source = attributes.get("data-onebox-src")
            if source:
                self.result.links.append({"text": "", "href": source})
            return "skip"
        if tag == "aside" and "quote" in classes:
            quote = {
                key: attributes[f"data-{key}"]
                for key in ("username", "post", "topic")
                if attributes.get(f"data-{key}")
            }
            self._quotes.append((quote, self._out))
            self._out = []
            return "quote"
        if (tag == "div" and classes & _SKIPPED_DIVS) or tag in _SKIPPED_TAGS:
            # Quote headers ("ada said:"), image captions (size, dimensions), icons.
            return "skip"
        if tag == "a":
            return self._open_link(attributes, classes)
        return ""

    def _open_link(self, attributes: dict[str, str], classes: set[str]) -> str:
        href = attributes.get("href", "")
        if "mention" in classes:
            self._link = {"kind": "mention", "href": href, "text": []}
        elif "attachment" in classes:
            self._link = {"kind": "attachment", "href": href, "text": []}
        elif "lightbox" in classes:
            # The full-size image; the <img> inside is its thumbnail.
            self.result.attachments.append(
                {"url": href, "filename": attributes.get("title", "")}
                if attributes.get("title")
                else {"url": href}
            )
            return "lightbox"
        else:
            self._link = {"kind": "link", "href": href, "text": []}
        return "link"

    def _image(self, attributes: dict[str, str], classes: set[str]) -> None:
        if self._skip:
            return
        if "emoji" in classes:
            self._out.append(attributes.get("alt") or attributes.get("title") or "")
            return
        if "avatar" in classes or any(role == "lightbox" for _tag, role in self._stack):
            return
        src = attributes.get("src")
        if src:
            image = {"url": src}
            if attributes.get("alt"):
                image["filename"] = attributes["alt"]
            self.result.attachments.append(image)

    def handle_endtag(self, tag: str) -> None:
        if tag in _VOID:
            return
        # Discourse's HTML is well formed, but close whatever was left open just in case,
        # and ignore a stray end tag rather than let it close its parents.
        if all(open_tag != tag for open_tag, _role in self._stack):
            return
        while self._stack:
            open_tag, role = self._stack.pop()
            self._close(open_tag, role)
            if open_tag == tag:
                break

    def _close(self, tag: str, role: str) -> None:
        if tag == "pre":
            self._pre -= 1
        if role == "skip":
            self._skip -= 1
            return
        if role == "link" and self._link is not None:
            self._finish_link(self._link)
            self._link = None
        elif role == "quote":
            quote, outer = self._quotes.pop()
            quoted = _join(self._out)
            if quoted:
                quote["text"] = quoted
            if quote:
                self.result.quotes.append(quote)
            self._out = outer
        if tag in _BLOCK_BREAK and not self._skip:
            self._break(_BLOCK_BREAK[tag])

    def _finish_link(self, link: dict[str, Any]) -> None:
        text = "".join(link["text"]).strip()
        href = link["href"]
        if link["kind"] == "mention":
            name = text.removeprefix("@") or href.rstrip("/").rsplit("/", 1)[-1]
            if name:
                self.result.mentions.append(name)
        elif link["kind"] == "attachment":
            self.result.attachments.append(
                {"url": href, "filename": text} if text else {"url": href}
            )
        elif href:
            self.result.links.append({"text": text, "href": href})

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        if not self._pre:
            # HTML collapses whitespace; a line does not start with the space left over.
            data = _SPACES.sub(" ", data)
            if not self._out or isinstance(self._out[-1], int):
                data = data.lstrip(" ")
            if not data:
                return
        if self._link is not None:
            self._link["text"].append(data)
        self._out.append(data)

    def finish(self) -> CookedText:
        self.close()
        while self._stack:
            self._close(*self._stack.pop())
        self.result.text = _join(self.parts)
        return self.result


def _join(parts: list[str | int]) -> str:
    """Text from pieces and breaks: the largest of adjacent breaks wins."""
    out: list[str] = []
    pending = 0
    for part in parts:
        if isinstance(part, int):
            pending = max(pending, part)
        elif part.strip():
            if pending and out:
                out.append("\n" * pending)
            pending = 0
            out.append(part)
        elif not pending:
            out.append(part)
    return _clean_text("".join(out))


def _clean_text(text: str) -> str:
    """Trim line ends, keep at most one blank line in a row, drop blank edges.

    Line starts are kept: in code blocks, indentation is meaning.
    """
    lines = [line.rstrip() for line in text.split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip("\n")


def cooked_to_text(cooked: str) -> CookedText:
    """Read a post's ``cooked`` HTML: its text, mentions, links, files and quotes.

    Args:
        cooked: The HTML Discourse rendered for the post.

    Returns:
        The text as a reader sees it (entities decoded, link text kept, link previews
        and quote headers left out) and what the markup said besides.
    """
    parser = _CookedParser()
    parser.feed(cooked)
    return parser.finish()


def markdown_quotes(markdown: str) -> tuple[str, list[dict[str, str]]]:
    """Take ``[quote="ada, post:1, topic:7"]...[/quote]`` blocks out of a post's markdown.

    Args:
        markdown: The post's ``raw`` markdown.

    Returns:
        The markdown without its quotes, and ``{"username", "post", "topic", "text"}``
        for each quote, like :func:`cooked_to_text` finds them in HTML.
    """
    quotes: list[dict[str, str]] = []

    def take(match: re.Match[str]) -> str:
        quote: dict[str, str] = {}
        for index, part in enumerate((match.group(1) or "").split(",")):
            name, colon, value = part.strip().partition(":")
            if colon and name in ("post", "topic"):
                quote[name] = value.strip()
            elif index == 0 and part.strip():
                quote["username"] = part.strip()
        text = _clean_text(match.group(2).strip())
        if text:
            quote["text"] = text
        quotes.append(quote)
        return ""

    return _clean_text(_MARKDOWN_QUOTE.sub(take, markdown)), quotes


# ---------------------------------------------------------------------- first pass


@dataclass
class _Document:
    """One top-level JSON value of the file: a topic, a latest-posts list or a post."""

    kind: str = ""  # "topic", "latest" or "post"
    meta: dict[str, Any] = field(default_factory=dict)
    # (post_number, post id, topic_id of the post) until the topic's id is known.
    numbered: list[tuple[int, str, Any]] = field(default_factory=list)

    @property
    def topic_id(self) -> Any:
        return self.meta.get("id") if self.kind == "topic" else None


@dataclass
class _Survey:
    documents: list[_Document]
    #: (topic id, post number) -> post id, for every post of the file.
    post_ids: dict[tuple[str, int], str]


def _as_id(value: Any) -> str | None:
    if isinstance(value, bool) or value in (None, ""):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


def _read_survey(path: Path) -> _Survey:
    documents: list[_Document] = []
    post_ids: dict[tuple[str, int], str] = {}
    document = _Document()
    item: dict[str, Any] = {}
    with open_export(path) as reader:
        events = BACKEND.parse(reader, multiple_values=True, use_float=True)
        try:
            for prefix, event, value in events:
                if prefix == "":
                    if event == "start_map":
                        document = _Document()
                        documents.append(document)
                    elif event == "map_key":
                        _read_top_key(document, value, events)
                    elif event == "end_map":
                        _close_document(path, document, len(documents), post_ids)
                    else:
                        raise ExportFormatError(
                            path,
                            "not a Discourse export: a top-level JSON value is "
                            f"{json_kind(event)}, not an object",
                            f"document #{len(documents) + 1}",
                        )
                elif prefix in _POST_PREFIXES:
                    if event == "start_map":
                        item = {}
                    elif event == "end_map":
                        _number_post(document, item)
                elif event in _SCALARS and prefix in _POST_NUMBER_FIELDS:
                    # Three numbers per post are all this pass needs: no post is built.
                    item[prefix.rsplit(".", 1)[-1]] = value
        except JSON_ERRORS as exc:
            if not documents and reader.at_eof:
                # Nothing but whitespace (or a byte order mark).
                raise ExportFormatError(path, "file is empty") from exc
            raise _json_error(path, reader, exc) from exc
    return _Survey(documents, post_ids)


def _survey(path: Path) -> _Survey:
    """First pass: every document's kind and topic-level fields, every post's number."""
    survey = _read_survey(path)
    if not survey.documents:
        raise ExportFormatError(path, "file is empty")
    return survey


def _read_top_key(document: _Document, key: str, events: Iterator[tuple[str, str, Any]]) -> None:
    """Read a top-level key's value if it is topic metadata; leave posts to the events."""
    if key == "post_stream":
        document.kind = "topic"
        return
    if key == "latest_posts":
        document.kind = "latest"
        return
    prefix, event, value = next(events)
    if event in _SCALARS:
        document.meta[key] = value
    elif key == "tags" and event == "start_array":
        document.meta[key] = build_value(events, opened=event)
    elif event in _STARTS:
        # details, suggested_topics, ...: not about the posts; skip without building.
        skip_value(events, opened=True)
    del prefix


def _number_post(document: _Document, item: dict[str, Any]) -> None:
    post_id = _as_id(item.get("id"))
    number = _number(item.get("post_number"))
    if post_id is not None and number is not None:
        document.numbered.append((number, post_id, item.get("topic_id")))


def _close_document(
    path: Path, document: _Document, index: int, post_ids: dict[tuple[str, int], str]
) -> None:
    meta = document.meta
    if not document.kind:
        if "post_number" in meta and "id" in meta:
            document.kind = "post"
            _number_post(document, meta)
            # The second pass reads the post itself; its text need not wait in memory.
            document.meta = {}
        else:
            shown = ", ".join(repr(key) for key in list(meta)[:8]) or "none"
            raise ExportFormatError(
                path,
                "not a Discourse topic, post list or post: no 'post_stream', "
                f"'latest_posts' or 'post_number' (top-level keys: {shown})",
                f"document #{index}",
            )
    topic_id = _as_id(document.topic_id)
    for number, post_id, post_topic in document.numbered:
        scope = topic_id or _as_id(post_topic)
        if scope is not None and len(post_ids) < _MAX_NUMBERED_POSTS:
            post_ids[(scope, number)] = post_id
    document.numbered = []


def _number(value: Any) -> int | None:
    """A post number, or None when the value is not one."""
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return int(value)
    return None


def _json_error(path: Path, reader: TrackingReader, exc: Exception) -> ExportFormatError:
    position = None if reader.is_empty else reader.error_position(exc)
    return ExportFormatError(path, describe_json_error(exc, reader), position)


# ------------------------------------------------------------------------ conversion


class _FieldError(ValueError):
    """A post field is missing or has the wrong shape."""


def _parse_time(value: Any, field_name: str) -> datetime:
    if not isinstance(value, str):
        raise _FieldError(
            f"missing required field '{field_name}'"
            if value is None
            else f"field '{field_name}' must be an ISO 8601 string"
        )
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise _FieldError(f"field '{field_name}' is not a valid timestamp ({value!r})") from exc
    if parsed.tzinfo is None:
        # The API always writes UTC with a "Z"; guessing an offset would shift times.
        raise _FieldError(f"field '{field_name}' has no UTC offset ({value!r})")
    return parsed.astimezone(UTC)


def _post_raw(post: dict[str, Any]) -> dict[str, Any]:
    """The post's fields the contracts do not model; the author's go under "author"."""
    raw: dict[str, Any] = {}
    author_raw: dict[str, Any] = {}
    for key, value in post.items():
        if key in _POST_MODELED or _is_viewer_field(key) or not _kept(value):
            continue
        if key in _AUTHOR_FIELDS:
            author_raw[key] = value
        else:
            raw[key] = value
    if author_raw:
        raw["author"] = author_raw
    return raw


def _thread(post: dict[str, Any], topic_id: str | None, meta: dict[str, Any]) -> ThreadRef | None:
    """The topic as a thread, named by its title."""
    if topic_id is None:
        return None
    title = meta.get("title") or post.get("topic_title")
    if not title and (fancy := meta.get("fancy_title")):
        # fancy_title is HTML-escaped (and has typographic quotes).
        title = html.unescape(str(fancy))
    return ThreadRef(id=topic_id, name=str(title) if title else None)


class _Converter:
    """Turns the posts of one file into events."""

    def __init__(self, path: Path, community_id: str, survey: _Survey) -> None:
        self.path = path
        self.community_id = community_id
        self.prefix = stable_id(_PLATFORM, community_id, "")
        self.post_ids = survey.post_ids
        self._members: dict[tuple[Any, ...], Member] = {}

    def member_id(self, username: str) -> str:
        """Stable id of a member: by lowercased username, for authors and mentions alike."""
        return f"{self.prefix}user:{username.lower()}"

    def _author(self, post: dict[str, Any]) -> Member:
        username = post.get("username")
        if not isinstance(username, str) or not username:
            raise _FieldError("missing required field 'username'")
        name = post.get("name") or None
        user_id = post.get("user_id")
        avatar = post.get("avatar_template")
        key = (username, name, user_id, avatar)
        member = self._members.get(key)
        if member is None:
            if len(self._members) >= _CACHE_SIZE:
                self._members.clear()
            avatar_url = None
            if isinstance(avatar, str) and avatar.startswith(("http://", "https://")):
                avatar_url = avatar.replace("{size}", "120")
            member = self._members[key] = Member(
                id=self.member_id(username),
                native_id=f"user:{username.lower()}",
                name=username,
                display_name=name if isinstance(name, str) else None,
                # Discourse's own accounts (system, discobot) have ids <= 0.
                is_bot=isinstance(user_id, int | float) and user_id <= 0,
                avatar_url=avatar_url,
            )
        return member

    def convert(self, post: Any, document: _Document, number: int) -> DiscourseEvent:
        """Turn one post into an event; errors name the post."""
        position = f"post #{number}"
        if not isinstance(post, dict):
            raise ExportFormatError(self.path, "post is not a JSON object", position)
        post_id = _as_id(post.get("id"))
        if post_id is not None:
            position += f" (id {post_id})"
        try:
            if post_id is None:
                raise _FieldError("missing required field 'id'")
            return self._convert(post, post_id, document)
        except _FieldError as exc:
            raise ExportFormatError(self.path, str(exc), position) from exc
        except ValidationError as exc:
            error = exc.errors(include_url=False)[0]
            where = ".".join(str(part) for part in error["loc"] if part != "payload")
            problem = f"invalid value for {where}: {error['msg']}"
            raise ExportFormatError(self.path, problem, position) from exc
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            problem = f"cannot read post ({type(exc).__name__}: {exc})"
            raise ExportFormatError(self.path, problem, position) from exc

    def _topic(
        self, post: dict[str, Any], document: _Document
    ) -> tuple[str | None, dict[str, Any]]:
        meta = document.meta if document.kind == "topic" else {}
        topic_id = _as_id(meta.get("id")) or _as_id(post.get("topic_id"))
        return topic_id, meta

    def _channel(self, post: dict[str, Any], meta: dict[str, Any]) -> ChannelRef:
        category_id = _as_id(meta.get("category_id")) or _as_id(post.get("category_id"))
        if category_id is None:
            archetype = meta.get("archetype") or post.get("archetype")
            if archetype == "private_message":
                return ChannelRef(id="private_messages", name="private messages")
            return ChannelRef(id="uncategorized", name="uncategorized")
        name = (
            meta.get("category_name")
            or post.get("category_name")
            or meta.get("category_slug")
            or post.get("category_slug")
            or f"category {category_id}"
        )
        return ChannelRef(id=f"category:{category_id}", name=str(name))

    def _convert(self, post: dict[str, Any], post_id: str, document: _Document) -> DiscourseEvent:
        sid = self.prefix + post_id
        topic_id, meta = self._topic(post, document)
        channel = self._channel(post, meta)
        created_at = _parse_time(post.get("created_at"), "created_at")
        if post.get("deleted_at") or meta.get("deleted_at") or post.get("user_deleted"):
            return self._deletion(post, post_id, meta, channel)

        author = self._author(post)
        raw = _post_raw(post)
        message_type = self._type(post, raw)
        text, mentions = self._text(post, raw)
        reply_to_id = self._reply_to(post, topic_id, raw)
        if message_type is MessageType.DEFAULT and _number(post.get("reply_to_post_number")):
            # A reply even when its parent is not in the file (then only its number is known).
            message_type = MessageType.REPLY
        edited_at = self._edited_at(post, created_at)
        if post.get("post_number") == 1 and meta:
            topic_raw = {
                key: value
                for key, value in meta.items()
                if key not in _TOPIC_MODELED and not _is_viewer_field(key) and _kept(value)
            }
            if topic_raw:
                raw["topic"] = topic_raw

        payload: dict[str, Any] = {
            "id": sid,
            "platform": _PLATFORM,
            "community_id": self.community_id,
            "native_id": post_id,
            "channel": channel,
            "thread": _thread(post, topic_id, meta),
            "reply_to_id": reply_to_id,
            "author": author,
            "text": text,
            "type": message_type,
            "created_at": created_at,
            "edited_at": edited_at,
            "raw": raw,
        }
        if mentions:
            payload["mentions"] = [
                {"member_id": self.member_id(name), "name": name} for name in mentions
            ]
        attachments = raw.pop("_attachments", None)
        if attachments:
            payload["attachments"] = attachments
        reactions = self._reactions(post, raw)
        if reactions:
            payload["reactions"] = reactions
        return message_ingested(
            self.community_id, payload, created_at=created_at, edited_at=edited_at
        )

    def _deletion(
        self, post: dict[str, Any], post_id: str, meta: dict[str, Any], channel: ChannelRef
    ) -> MessageDeleted:
        """A deleted post (or one in a deleted topic): only its deletion is published."""
        sid = self.prefix + post_id
        when = (
            post.get("deleted_at")
            or meta.get("deleted_at")
            or post.get("updated_at")
            or post.get("created_at")
        )
        deleted_at = _parse_time(when, "deleted_at")
        raw: dict[str, Any] = {}
        if post.get("post_number"):
            raw["post_number"] = post["post_number"]
        if post.get("user_deleted"):
            raw["user_deleted"] = True
        return MessageDeleted.model_validate(
            {
                "event_id": fast_event_id("message.deleted", sid),
                "occurred_at": deleted_at,
                "community_id": self.community_id,
                "payload": {
                    "id": sid,
                    "platform": _PLATFORM,
                    "community_id": self.community_id,
                    "native_id": post_id,
                    "channel": channel,
                    "deleted_at": deleted_at,
                    "raw": raw,
                },
            }
        )

    @staticmethod
    def _type(post: dict[str, Any], raw: dict[str, Any]) -> MessageType:
        post_type = post.get("post_type", _REGULAR)
        if post_type in (_REGULAR, _WHISPER, None):
            if post_type == _WHISPER:
                raw["whisper"] = True
            return (
                MessageType.THREAD_STARTER if post.get("post_number") == 1 else MessageType.DEFAULT
            )
        # Moderator actions, small actions ("closed.enabled", kept as action_code in raw)
        # and post types newer than this importer: all are the platform talking.
        raw["post_type"] = post_type
        return MessageType.SYSTEM

    def _text(self, post: dict[str, Any], raw: dict[str, Any]) -> tuple[str, list[str]]:
        markdown = post.get("raw")
        cooked = post.get("cooked")
        if cooked is not None and not isinstance(cooked, str):
            raise _FieldError("field 'cooked' must be a string")
        if markdown is not None and not isinstance(markdown, str):
            raise _FieldError("field 'raw' must be a string")
        mentions: list[str] = []
        quotes: list[dict[str, str]] = []
        text = ""
        if markdown:
            text, quotes = markdown_quotes(markdown)
        if cooked:
            parsed = cooked_to_text(cooked)
            if markdown is None:
                text = parsed.text
            mentions = parsed.mentions
            quotes = parsed.quotes or quotes
            if parsed.links:
                raw["links"] = parsed.links
            if parsed.attachments:
                raw["_attachments"] = parsed.attachments
        elif text:
            mentions = _MARKDOWN_MENTION.findall(text)
        if quotes:
            raw["quotes"] = quotes
        # One mention per member, in order of first appearance.
        seen: dict[str, str] = {}
        for name in mentions:
            seen.setdefault(name.lower(), name)
        return text, list(seen.values())

    def _reply_to(
        self, post: dict[str, Any], topic_id: str | None, raw: dict[str, Any]
    ) -> str | None:
        number = _number(post.get("reply_to_post_number"))
        if number is None:
            return None
        parent = self.post_ids.get((topic_id, number)) if topic_id is not None else None
        if parent is None:
            # The parent is not in this file: its number is all there is to keep.
            raw["reply_to_post_number"] = number
            return None
        return self.prefix + parent

    @staticmethod
    def _edited_at(post: dict[str, Any], created_at: datetime) -> datetime | None:
        version = post.get("version")
        updated = post.get("updated_at")
        if not isinstance(version, int | float) or version <= 1 or not updated:
            return None
        updated_at = _parse_time(updated, "updated_at")
        return updated_at if updated_at > created_at + _EDIT_GRACE else None

    @staticmethod
    def _reactions(post: dict[str, Any], raw: dict[str, Any]) -> list[dict[str, Any]]:
        counts: dict[str, int] = {}
        other_actions = []
        for action in post.get("actions_summary") or ():
            if not isinstance(action, dict):
                continue
            if action.get("id") == _LIKE_ACTION:
                count = action.get("count")
                if isinstance(count, int) and count > 0:
                    counts[_LIKE_EMOJI] = count
            elif action.get("count"):
                # Flags and other actions that happened (not what the viewer may do).
                other_actions.append({"id": action["id"], "count": action["count"]})
        if other_actions:
            raw["actions_summary"] = other_actions
        for reaction in post.get("reactions") or ():
            # discourse-reactions plugin: {"id": "+1", "type": "emoji", "count": 2}.
            if isinstance(reaction, dict) and isinstance(reaction.get("count"), int):
                emoji = str(reaction.get("id") or "")
                if emoji and reaction["count"] > 0:
                    counts[emoji] = max(counts.get(emoji, 0), reaction["count"])
        return [{"emoji": emoji, "count": count} for emoji, count in counts.items()]


# --------------------------------------------------------------------------- reading


def iter_discourse_export(path: Path | str, community_id: str) -> Iterator[DiscourseEvent]:
    """Read Discourse API JSON and yield one event per post, in file order.

    The whole file is read once before this returns (topic fields, post numbers),
    so malformed JSON is reported before any event is yielded; posts are then
    streamed one at a time as the iterator is consumed.

    Args:
        path: A topic (``/t/{id}.json``), latest posts (``/posts.json``) or post
            (``/posts/{id}.json``) file, or several of them one after the other.
        community_id: The Pépite community the posts belong to.

    Returns:
        An iterator of ``MessageIngested`` and ``MessageDeleted`` events.

    Raises:
        ValueError: ``community_id`` is not a valid community id.
        ExportFormatError: the file is missing, not JSON, not Discourse JSON, or a
            post lacks a required field (raised while iterating for posts).
    """
    validate_community_id(community_id)
    path = Path(path)
    survey = _survey(path)
    return _stream(path, _Converter(path, community_id, survey), survey)


def _stream(path: Path, converter: _Converter, survey: _Survey) -> Iterator[DiscourseEvent]:
    documents = survey.documents
    if len(documents) == 1 and documents[0].kind in ("topic", "latest"):
        # The usual file, one topic or one post list: ijson's C code builds the posts.
        items = _TOPIC_POSTS if documents[0].kind == "topic" else _LATEST_POSTS
        yield from _stream_items(path, converter, documents[0], items)
        return
    remaining = iter(documents)
    document = _Document()
    number = 0
    with open_export(path) as reader:
        events = BACKEND.parse(reader, multiple_values=True, use_float=True)
        try:
            for prefix, event, _value in events:
                if event != "start_map":
                    continue
                if prefix == "":
                    document = next(remaining)
                    if document.kind == "post":
                        number += 1
                        yield converter.convert(build_value(events, opened=event), document, number)
                elif prefix in _POST_PREFIXES:
                    number += 1
                    yield converter.convert(build_value(events, opened=event), document, number)
        except JSON_ERRORS as exc:  # pragma: no cover - the first pass read the same bytes
            raise _json_error(path, reader, exc) from exc


def _stream_items(
    path: Path, converter: _Converter, document: _Document, items: str
) -> Iterator[DiscourseEvent]:
    with open_export(path) as reader:
        try:
            for number, post in enumerate(BACKEND.items(reader, items, use_float=True), 1):
                yield converter.convert(post, document, number)
        except JSON_ERRORS as exc:  # pragma: no cover - the first pass read the same bytes
            raise _json_error(path, reader, exc) from exc
