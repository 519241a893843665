"""Builders for Slack-export-shaped test data, and a generator of large realistic exports.

Shapes follow Slack's documented workspace export: ``users.json``, ``channels.json``
(and friends), then one folder per conversation with one ``YYYY-MM-DD.json`` array
of message objects per day.
"""

from __future__ import annotations

import json
import random
import uuid
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "slack"

TEAM_ID = "T0PEPITE01"

#: 2024-03-01T09:00:00Z, the day most test messages are posted.
T0 = 1709283600


def ts(seconds: float, micros: int = 0) -> str:
    """A Slack ``ts`` for ``T0 + seconds`` (plus microseconds, which make it unique)."""
    return f"{int(T0 + seconds)}.{micros:06d}"


def slack_user(
    user_id: str, name: str, real_name: str | None = None, **overrides: Any
) -> dict[str, Any]:
    """A member as users.json lists it."""
    real = real_name if real_name is not None else name.title()
    user: dict[str, Any] = {
        "id": user_id,
        "team_id": TEAM_ID,
        "name": name,
        "deleted": False,
        "color": "9f69e7",
        "real_name": real,
        "tz": "Europe/Paris",
        "tz_label": "Central European Time",
        "tz_offset": 3600,
        "profile": {
            "title": "",
            "phone": "",
            "skype": "",
            "real_name": real,
            "real_name_normalized": real,
            "display_name": name,
            "display_name_normalized": name,
            "fields": None,
            "status_text": "",
            "status_emoji": "",
            "status_expiration": 0,
            "avatar_hash": "g1a2b3c4d5e6",
            "first_name": real.split(" ")[0],
            "last_name": " ".join(real.split(" ")[1:]),
            "image_24": f"https://avatars.slack-edge.com/{user_id}_24.png",
            "image_32": f"https://avatars.slack-edge.com/{user_id}_32.png",
            "image_48": f"https://avatars.slack-edge.com/{user_id}_48.png",
            "image_72": f"https://avatars.slack-edge.com/{user_id}_72.png",
            "image_192": f"https://avatars.slack-edge.com/{user_id}_192.png",
            "image_512": f"https://avatars.slack-edge.com/{user_id}_512.png",
            "status_text_canonical": "",
            "team": TEAM_ID,
        },
        "is_admin": False,
        "is_owner": False,
        "is_primary_owner": False,
        "is_restricted": False,
        "is_ultra_restricted": False,
        "is_bot": False,
        "is_app_user": False,
        "updated": 1700000000,
        "is_email_confirmed": True,
        "who_can_share_contact_card": "EVERYONE",
    }
    user.update(overrides)
    return user


def user_profile(user: dict[str, Any]) -> dict[str, Any]:
    """The ``user_profile`` Slack embeds in a message: the author at the time."""
    profile = user["profile"]
    return {
        "avatar_hash": profile["avatar_hash"],
        "image_72": profile["image_72"],
        "first_name": profile["first_name"],
        "real_name": profile["real_name"],
        "display_name": profile["display_name"],
        "team": TEAM_ID,
        "name": user["name"],
        "is_restricted": False,
        "is_ultra_restricted": False,
    }


def slack_channel_item(
    channel_id: str, name: str, members: list[str] | None = None, topic: str = ""
) -> dict[str, Any]:
    """A conversation as channels.json (or groups.json, mpims.json) lists it."""
    return {
        "id": channel_id,
        "name": name,
        "created": T0 - 86400 * 30,
        "creator": (members or ["U00000000"])[0],
        "is_archived": False,
        "is_general": name == "general",
        "members": members or [],
        "pins": [],
        "topic": {"value": topic, "creator": "", "last_set": 0},
        "purpose": {"value": f"Talk about {name}", "creator": "", "last_set": 0},
    }


def rich_text_blocks(text: str) -> list[dict[str, Any]]:
    """The ``blocks`` Slack clients attach to a message, for plain text."""
    return [
        {
            "type": "rich_text",
            "block_id": "a1B2c",
            "elements": [
                {"type": "rich_text_section", "elements": [{"type": "text", "text": text}]}
            ],
        }
    ]


def slack_message(user: dict[str, Any], text: str, at: str, **overrides: Any) -> dict[str, Any]:
    """A message object as a Slack export day file holds it, sent from a Slack client."""
    message: dict[str, Any] = {
        "client_msg_id": str(uuid.uuid5(uuid.NAMESPACE_OID, f"{user['id']}:{at}")),
        "type": "message",
        "text": text,
        "user": user["id"],
        "ts": at,
        "blocks": rich_text_blocks(text),
        "team": TEAM_ID,
        "user_team": TEAM_ID,
        "source_team": TEAM_ID,
        "user_profile": user_profile(user),
    }
    message.update(overrides)
    return message


def write_folder_export(
    root: Path,
    *,
    users: list[dict[str, Any]],
    channels: list[dict[str, Any]],
    days: dict[str, dict[str, list[Any]]],
    extra_files: dict[str, Any] | None = None,
) -> Path:
    """Write an unzipped export: metadata, then ``days[folder][date]`` as day files."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "users.json").write_text(json.dumps(users, indent=4), encoding="utf-8")
    (root / "channels.json").write_text(json.dumps(channels, indent=4), encoding="utf-8")
    (root / "integration_logs.json").write_text("[]", encoding="utf-8")
    for name, content in (extra_files or {}).items():
        (root / name).write_text(json.dumps(content, indent=4), encoding="utf-8")
    for folder, by_day in days.items():
        (root / folder).mkdir(exist_ok=True)
        for day, messages in by_day.items():
            text = json.dumps(messages, indent=4, ensure_ascii=False)
            (root / folder / f"{day}.json").write_text(text, encoding="utf-8")
    return root


def zip_folder(root: Path, target: Path, *, prefix: str = "") -> Path:
    """Zip an unzipped export the way Slack ships it (deflated, metadata first)."""
    files = sorted(p for p in root.rglob("*") if p.is_file())
    # Slack writes the metadata files before the conversation folders.
    files.sort(key=lambda p: (p.parent != root, str(p.relative_to(root))))
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in files:
            archive.write(path, prefix + path.relative_to(root).as_posix())
    return target


# -- large realistic exports -------------------------------------------------------

_VOCABULARY = (
    "the a to is it and of you for in that this on with I we can have be not are do "
    "but if just so what how when there about my your it's don't get one thanks help "
    "error install update server config deploy build release docs issue bug fix version "
    "python slack api token channel message thread works working broken again please "
    "anyone know why does try tried check log logs output test tests merge branch "
    "review PR ticket meeting tomorrow today later sure great nice cool ok yes no maybe "
    "idea feature request question answer problem solution database query index cache "
    "memory cpu latency timeout retry network proxy docker kubernetes cluster node"
)
_FRENCH_VOCABULARY = "merci bonjour salut ça marche très bien problème déjà réglé où est la doc"
_WORDS = _VOCABULARY.split()
_FRENCH = _FRENCH_VOCABULARY.split()
_EMOJI = ("🙂", "🎉", "👍", "🔥", "🙏", "😅", "🚀", "❤️", "🤔", "✅")
_REACTIONS = (
    "+1",
    "heart",
    "joy",
    "eyes",
    "tada",
    "white_check_mark",
    "pray",
    "rocket",
    "thinking_face",
    "+1::skin-tone-2",
    "partyparrot",
)
_CHANNEL_NAMES = ("general", "random", "help", "dev", "announcements", "showcase", "jobs")


#: Distinct texts a generated export draws from.
_POOL_SIZE = 20_000


def _uuid4(rng: random.Random) -> str:
    """A random version 4 UUID from ``rng``, as Slack clients put in ``client_msg_id``."""
    digits = f"{rng.getrandbits(128):032x}"
    return f"{digits[:8]}-{digits[8:12]}-4{digits[13:16]}-a{digits[17:20]}-{digits[20:]}"


def _slack_id(rng: random.Random, first: str) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    return first + "".join(rng.choice(alphabet) for _ in range(10))


class _Generator:
    """Makes realistic messages: chat-like lengths, threads, reactions, files, bots."""

    def __init__(self, rng: random.Random, users: list[dict[str, Any]]) -> None:
        self.rng = rng
        self.users = users
        self.profiles = {user["id"]: user_profile(user) for user in users}
        self.bot_id = _slack_id(rng, "B")
        # Texts and reactions are drawn from pools made once: writing a million messages
        # then costs little more than serializing them.
        self.texts = [self.new_text() for _ in range(_POOL_SIZE)]
        self.reaction_sets = [self.new_reactions() for _ in range(_POOL_SIZE // 10)]

    def text(self) -> str:
        return self.texts[int(self.rng.random() * _POOL_SIZE)]

    def new_text(self) -> str:
        rng = self.rng
        length = min(int(rng.lognormvariate(2.2, 0.9)) + 1, 400)
        words = rng.choices(_WORDS, k=length)
        roll = rng.random()
        if roll < 0.08:
            words.insert(rng.randrange(len(words) + 1), f"<@{rng.choice(self.users)['id']}>")
        elif roll < 0.12:
            words.append("<https://docs.example.com/guide|the guide>")
        elif roll < 0.15:
            words.extend(rng.choices(_FRENCH, k=3))
        if rng.random() < 0.1:
            words.append(rng.choice(_EMOJI))
        return " ".join(words)

    def user_message(self, at: str) -> dict[str, Any]:
        rng = self.rng
        user = rng.choice(self.users)
        text = self.text()
        message: dict[str, Any] = {
            "client_msg_id": _uuid4(rng),
            "type": "message",
            "text": text,
            "user": user["id"],
            "ts": at,
            "blocks": rich_text_blocks(text),
            "team": TEAM_ID,
            "user_team": TEAM_ID,
            "source_team": TEAM_ID,
            "user_profile": self.profiles[user["id"]],
        }
        if rng.random() < 0.05:
            message["edited"] = {"user": user["id"], "ts": f"{float(at) + 60:.6f}"}
        if rng.random() < 0.15:
            message["reactions"] = self.reactions()
        if rng.random() < 0.02:
            message["files"] = [self.file(user["id"], at)]
            message["subtype"] = "file_share"
            message["upload"] = False
            message["display_as_bot"] = False
        return message

    def reactions(self) -> list[dict[str, Any]]:
        return self.reaction_sets[int(self.rng.random() * len(self.reaction_sets))]

    def new_reactions(self) -> list[dict[str, Any]]:
        rng = self.rng
        out = []
        for name in rng.sample(_REACTIONS, rng.randint(1, 3)):
            users = [user["id"] for user in rng.sample(self.users, min(len(self.users), 4))]
            users = users[: rng.randint(1, len(users))]
            out.append({"name": name, "users": users, "count": len(users)})
        return out

    def file(self, user_id: str, at: str) -> dict[str, Any]:
        file_id = _slack_id(self.rng, "F")
        name = f"screenshot-{file_id[-4:]}.png"
        base = f"https://files.slack.com/files-pri/{TEAM_ID}-{file_id}"
        return {
            "id": file_id,
            "created": int(float(at)),
            "timestamp": int(float(at)),
            "name": name,
            "title": name,
            "mimetype": "image/png",
            "filetype": "png",
            "pretty_type": "PNG",
            "user": user_id,
            "user_team": TEAM_ID,
            "editable": False,
            "size": self.rng.randint(10_000, 4_000_000),
            "mode": "hosted",
            "is_external": False,
            "external_type": "",
            "is_public": True,
            "public_url_shared": False,
            "display_as_bot": False,
            "username": "",
            "url_private": f"{base}/{name}",
            "url_private_download": f"{base}/download/{name}",
            "thumb_64": f"{base}/{name[:-4]}_64.png",
            "thumb_360": f"{base}/{name[:-4]}_360.png",
            "thumb_360_w": 360,
            "thumb_360_h": 202,
            "original_w": 1920,
            "original_h": 1080,
            "permalink": f"https://pepite.slack.com/files/{user_id}/{file_id}/{name}",
            "is_starred": False,
            "has_rich_preview": False,
        }

    def bot_message(self, at: str) -> dict[str, Any]:
        text = f"Deployed build {self.rng.randint(1000, 9999)} to production :rocket:"
        return {
            "type": "message",
            "subtype": "bot_message",
            "text": text,
            "ts": at,
            "username": "deploybot",
            "icons": {"image_48": "https://example.com/deploybot_48.png"},
            "bot_id": self.bot_id,
        }

    def join(self, at: str) -> dict[str, Any]:
        user = self.rng.choice(self.users)
        return {
            "type": "message",
            "subtype": "channel_join",
            "ts": at,
            "user": user["id"],
            "text": f"<@{user['id']}> has joined the channel",
        }

    def day(self, start: float, count: int) -> list[dict[str, Any]]:
        """One day file of one channel: ``count`` messages, threads answered that day."""
        rng = self.rng
        messages: list[dict[str, Any]] = []
        open_threads: list[dict[str, Any]] = []
        step = 80_000 / (count + 1)
        for index in range(count):
            at = f"{start + step * index:.0f}.{rng.randrange(1_000_000):06d}"
            roll = rng.random()
            if open_threads and roll < 0.3:
                parent = rng.choice(open_threads)
                reply = self.user_message(at)
                reply["thread_ts"] = parent["ts"]
                reply["parent_user_id"] = parent["user"]
                parent["reply_count"] += 1
                parent["reply_users_count"] = len(set(parent["reply_users"]) | {reply["user"]})
                if reply["user"] not in parent["reply_users"]:
                    parent["reply_users"].append(reply["user"])
                parent["latest_reply"] = at
                messages.append(reply)
                continue
            roll = rng.random()
            if roll < 0.03:
                messages.append(self.bot_message(at))
            elif roll < 0.04:
                messages.append(self.join(at))
            else:
                message = self.user_message(at)
                if rng.random() < 0.12 and "subtype" not in message:
                    message.update(
                        thread_ts=at,
                        reply_count=0,
                        reply_users_count=0,
                        latest_reply=at,
                        reply_users=[],
                        is_locked=False,
                        subscribed=False,
                    )
                    open_threads.append(message)
                messages.append(message)
        return messages


class _Writer:
    """Writes export files to a folder, or into a zip as it goes (nothing is held)."""

    def __init__(self, target: Path) -> None:
        self.target = target
        self.archive: zipfile.ZipFile | None = None
        if target.suffix == ".zip":
            target.parent.mkdir(parents=True, exist_ok=True)
            # Level 1: the export is written fast; reading it costs the same.
            self.archive = zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED, compresslevel=1)
        else:
            target.mkdir(parents=True, exist_ok=True)

    def write(self, name: str, data: Any) -> None:
        # Slack escapes non-ASCII characters in its exports, and so does this.
        text = json.dumps(data, separators=(",", ":")).encode()
        if self.archive is not None:
            self.archive.writestr(name, text)
        else:
            path = self.target / name
            path.parent.mkdir(exist_ok=True)
            path.write_bytes(text)

    def close(self) -> None:
        if self.archive is not None:
            self.archive.close()


def _day_sizes(rng: random.Random, total: int) -> Iterator[int]:
    while total > 0:
        size = min(total, rng.randint(50, 400))
        total -= size
        yield size


def write_slack_export(
    folder_or_zip_path: Path | str, n_messages: int, channels: int = 5, seed: int = 0
) -> Path:
    """Write a realistic Slack workspace export, streaming it to disk.

    Messages are spread over ``channels`` channels and days of 50 to 400
    messages, with chat-like text lengths, mentions, emoji, some French, thread
    parents and replies, reactions, edits, file shares, bot posts and channel
    joins, and the ``blocks``, ``user_profile`` and ids a Slack client adds. One
    day file is built at a time, so memory stays flat: a million messages take
    well under a minute.

    Args:
        folder_or_zip_path: Where to write; a path ending in ``.zip`` gets a zip,
            anything else an unzipped folder.
        n_messages: How many message objects in all (joins and bot posts included).
        channels: How many channels.
        seed: Same seed, same export.

    Returns:
        The path written.
    """
    target = Path(folder_or_zip_path)
    rng = random.Random(seed)
    n_users = min(4000, max(20, n_messages // 250))
    users = [
        slack_user(_slack_id(rng, "U"), f"member{index}", f"Member {index} Lastname")
        for index in range(n_users)
    ]
    channel_items = [
        slack_channel_item(
            _slack_id(rng, "C"),
            _CHANNEL_NAMES[index] if index < len(_CHANNEL_NAMES) else f"channel-{index}",
            [user["id"] for user in users[:50]],
            topic="Be nice" if index == 0 else "",
        )
        for index in range(channels)
    ]
    generator = _Generator(rng, users)
    writer = _Writer(target)
    try:
        writer.write("users.json", users)
        writer.write("channels.json", channel_items)
        writer.write("integration_logs.json", [])
        per_channel = [n_messages // channels] * channels
        per_channel[0] += n_messages - sum(per_channel)
        first_day = datetime(2023, 1, 2, tzinfo=UTC)
        for item, total in zip(channel_items, per_channel, strict=True):
            day = first_day
            for size in _day_sizes(rng, total):
                messages = generator.day(day.timestamp() + 3600, size)
                writer.write(f"{item['name']}/{day:%Y-%m-%d}.json", messages)
                day += timedelta(days=1)
    finally:
        writer.close()
    return target
