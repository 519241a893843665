"""Stream a WhatsApp chat export as Pépite events.

WhatsApp's "Export chat" writes one chat as a text file, alone (``WhatsApp Chat
with Team.txt``) or in a zip with the media (``_chat.txt`` from iPhones,
``WhatsApp Chat with Team.txt`` from Android). Both are read in place, the zip
without extracting, line by line: memory stays flat whatever the size.

Each message starts with a date and time, whose layout depends on the phone's
system and language; these are recognised::

    12/31/23, 9:41 PM - Ada: text            Android, 12-hour clock
    31/12/2023, 21:41 - Ada: text            Android, 24-hour clock
    31/12/2023 à 21:41 - Ada: text           Android, French
    [31/12/2023, 21:41:05] Ada: text         iPhone
    [12/31/23, 9:41:05 PM] Ada: text         iPhone, 12-hour clock
    [31/12/2023 21:41:05] Ada: text          iPhone, French

as well as dots or dashes between date parts (``31.12.23``), year-first dates
(``2023-12-31``), narrow no-break spaces before AM/PM and left-to-right marks
at line starts. A line without a date continues the message above it.

Decisions, since the format leaves these open:

- **Date order.** ``01/02/2024`` is the 1st of February or January 2nd. The file
  is read from the start until a date settles it: a first number above 12 means
  day/month, a second one above 12 month/day (a 4-digit first number is a
  year-first date). If no date in the whole file settles it, 12-hour-clock
  layouts are taken as month/day (the US convention) and 24-hour ones as
  day/month.
- **Time zone.** Exports carry the phone's local time, with no zone. Times are
  read as UTC, and the text as written is kept in ``raw.local_time``.
- **Members.** Exports hold display names (or phone numbers), never ids: a
  member's native id is ``name:<first 16 hex digits of the SHA-1 of the name>``
  (bidirectional marks removed), the same for a name in every chat.
- **Chat.** The chat's name comes from the file name (``WhatsApp Chat with
  Team.txt``, ``WhatsApp Chat - Team.zip``, the French, German, Spanish,
  Italian and Portuguese equivalents; a browser's `` (1)`` suffix is dropped);
  its id is the first 16 hex digits of the SHA-1 of that name.
- **Message ids.** Line numbers change from one export to the next, so a
  message's native id is ``<chat id>:<digest>``, the digest being a SHA-1 of
  its local time, its author and its rank among the messages that author sent
  in that same minute (or second). Overlapping exports (last week's and this
  week's) thus give the same ids to the same messages; and since the text is
  not part of the id, a message edited or deleted between two exports keeps
  its id, so re-importing updates it instead of adding a copy.
- **Deleted messages** ("This message was deleted", "Ce message a été
  supprimé") are imported as messages with an empty text and ``raw.deleted``:
  there is no original to point a deletion at, and a copy imported earlier
  (same id, see above) is overwritten with the empty text.
- **Edited messages** end with "<This message was edited>": the marker is
  removed and ``raw.edited`` set; the edit time is unknown.
- **Media.** "<Media omitted>", "image omitted"... become an attachment with no
  url and no file name, ``raw.attachments`` saying what was left out; files
  shipped with the export ("IMG-20231231-WA0001.jpg (file attached)",
  "<attached: 00000012-PHOTO-2023-12-31-21-41-05.jpg>") an attachment named
  after the file.
- **System lines** (no author, or on iPhones attributed to the group with a
  left-to-right mark): joins ("X joined using this group's invite link", "X
  added Y and Z", "X a rejoint…", "X a ajouté Y") become :class:`MemberJoined`,
  departures ("X left", "X removed Y", "X est parti(e)", "X a retiré Y")
  :class:`MemberLeft`, the encryption notice is skipped, and anything else
  becomes a ``SYSTEM`` message. "You", the exporting phone's owner, cannot be
  named, so joins and departures of "you" are skipped.
"""

from __future__ import annotations

import codecs
import hashlib
import io
import re
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from pydantic import ValidationError

from pepite_contracts import (
    ChannelRef,
    Member,
    MemberJoined,
    MemberLeft,
    MessageIngested,
    MessageType,
    Platform,
    stable_id,
)
from pepite_ingestor.importers._jsonstream import open_binary
from pepite_ingestor.importers.common import fast_event_id, validate_community_id
from pepite_ingestor.importers.errors import ExportFormatError, describe_contract_error

__all__ = ["WhatsAppEvent", "chat_name_from_file", "iter_whatsapp_export", "sniff_whatsapp"]

#: What a WhatsApp export yields.
WhatsAppEvent = MessageIngested | MemberJoined | MemberLeft

_PLATFORM = Platform.WHATSAPP.value

#: Same ids as ``deterministic_event_id``, computed faster (see ``fast_event_id``).
_event_id = fast_event_id

# The start of a message line. Groups: 1 "[" (iPhone), 2 the date and time as
# written, 3-6 the date's three numbers and separator, 7-9 hours, minutes,
# seconds, 10 the A or P of AM/PM, 11 the rest of the line.
_HEADER = re.compile(
    r"[\u200e\u200f\ufeff]*"
    r"(\[)?"
    r"("
    r"(\d{1,4})([./-])(\d{1,2})\4(\d{2,4})"
    r",?\s(?:à\s|um\s|a las\s|alle\s|kl\.\s)?"
    r"(\d{1,2})[:.](\d{2})(?:[:.](\d{2}))?"
    r"(?:[\s\u202f\u00a0]?([AaPp])\.?[\s\u202f\u00a0]?[Mm]\.?)?"
    r")"
    r"(?(1)\]\s|\s[-–]\s)"
    r"(.*)",
    re.DOTALL,
)

# Bidirectional marks and embeddings WhatsApp wraps names and numbers in.
_BIDI = dict.fromkeys(
    [0x200E, 0x200F, 0x202A, 0x202B, 0x202C, 0x202D, 0x202E, 0x2066, 0x2067, 0x2068, 0x2069]
)
_LRM = "\u200e"

# How exports name the chat file (or the zip), by language.
_CHAT_FILE = re.compile(
    r"^(?:WhatsApp Chat with|WhatsApp Chat -|WhatsApp[- ]Chat mit|Discussion WhatsApp avec"
    r"|Chat de WhatsApp con|Chat WhatsApp con|Conversa do WhatsApp com"
    r"|Conversa de WhatsApp com)\s+(.+)$",
    re.IGNORECASE,
)
_DOWNLOAD_SUFFIX = re.compile(r"\s\(\d+\)$")
_IOS_CHAT_FILE = "_chat.txt"

_DELETED = frozenset(
    line + end
    for line in (
        "This message was deleted",
        "You deleted this message",
        "Ce message a été supprimé",
        "Vous avez supprimé ce message",
    )
    for end in ("", ".")  # iPhones end them with a full stop
)
_EDITED = ("<This message was edited>", "<Ce message a été modifié>")
_LAST_OF_EDITED = (">", "\u200e")
_MEDIA_OMITTED = frozenset({"<Media omitted>", "<Médias omis>", "<Média omis>"})
_KIND_OMITTED = re.compile(
    r"^(image|video|vidéo|audio|sticker|autocollant|GIF|document|Contact card|carte de contact)"
    r" (?:omitted|absente?|omise?|omis|retirée?)$",
    re.IGNORECASE,
)
_OMITTED_ENDINGS = ("omitted", "absent", "absente", "omis", "omise", "retiré", "retirée")
_KINDS = {
    "vidéo": "video",
    "autocollant": "sticker",
    "contact card": "contact",
    "carte de contact": "contact",
}
_ATTACHED = re.compile(
    r"^(?:(?P<android>.+\.\w{1,8}) \((?:file attached|fichier joint|Datei angehängt)\)"
    r"|<(?:attached|pièce jointe)\s?: (?P<ios>.+)>)$"
)

_ENCRYPTION_NOTICES = (
    "Messages and calls are end-to-end encrypted",
    "Messages to this group are now secured with end-to-end encryption",
    "Les messages et les appels sont chiffrés de bout en bout",
    "Les messages envoyés dans ce groupe sont",
)
# System lines that change membership, in the languages supported; "who" may list
# several names ("Bob, Chloé and David").
_MEMBERSHIP_LINES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^(?P<who>.+?) joined using (?:this|a|the) \w+['’]s invite link$"), "joined"),
    (re.compile(r"^(?P<who>.+?) joined(?: from the community| via an invite link)?$"), "joined"),
    (re.compile(r"^(?P<who>.+?) a rejoint\b.*$"), "joined"),
    (re.compile(r"^.+? (?:added|a ajouté) (?P<who>.+)$"), "joined"),
    (re.compile(r"^(?P<who>.+?) left$"), "left"),
    (
        re.compile(
            r"^(?P<who>.+?) (?:est parti(?:e|\(e\))?|a quitté|avez quitté)"
            r"(?: le groupe| ce groupe)?$"
        ),
        "left",
    ),
    (re.compile(r"^.+? (?:removed|a retiré) (?P<who>.+)$"), "left"),
)
_NAME_LIST = re.compile(r",\s*|\s+(?:and|et)\s+")
_YOU = frozenset({"you", "vous"})

# Bounds the caches (members, times, ranks) so memory stays flat on long chats.
_CACHE_SIZE = 4096
# Minutes whose message ranks are remembered: exports are in time order, but a
# changed phone clock can put a minute a little out of place.
_RECENT_MINUTES = 64
# Reading a text file in large chunks and splitting them is several times faster
# than reading it line by line, and works the same on zip members.
_CHUNK = 1 << 20


# --------------------------------------------------------------------------- the file


@dataclass(frozen=True)
class _Source:
    """Where the chat's text is: a text file, or a member of a zip."""

    path: Path
    member: str | None
    chat_name: str

    def where(self, number: int) -> str:
        """A line's position, for errors."""
        return f"line {number}" + (f" of {self.member}" if self.member else "")

    @contextmanager
    def open(self) -> Iterator[IO[bytes]]:
        """Open the chat's text for reading bytes."""
        if self.member is None:
            with open_binary(self.path) as raw:
                yield raw
            return
        try:
            with zipfile.ZipFile(self.path) as archive, archive.open(self.member) as raw:
                yield raw
        except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError) as exc:
            raise ExportFormatError(self.path, f"cannot read the zip ({exc})") from exc
        except (zlib.error, EOFError) as exc:
            # A damaged or truncated member shows up only while it is read.
            raise ExportFormatError(
                self.path, f"the zip is damaged ({exc or 'it ends early'})", self.member
            ) from exc

    def lines(self) -> Iterator[tuple[int, str]]:
        """The chat's lines, numbered from 1, without their line ends.

        Raises:
            ExportFormatError: the text is not UTF-8 (or UTF-16 with a byte order mark).
        """
        with self.open() as raw:
            start = _peek(raw)
            if start.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
                # Not what WhatsApp writes, but what some editors re-save a file as.
                yield from self._utf16_lines(raw)
                return
            if b"\0" in start:
                raise ExportFormatError(
                    self.path,
                    "the file is UTF-16 text without a byte order mark; WhatsApp writes "
                    "UTF-8: re-export the chat, or save the file as UTF-8",
                    self.where(1),
                )
            for number, line in enumerate(_split_lines(raw), 1):
                try:
                    text = line.decode()
                except UnicodeDecodeError as exc:
                    raise self._decode_error(number, line, exc) from None
                yield number, text.removesuffix("\r")

    def _utf16_lines(self, raw: IO[bytes]) -> Iterator[tuple[int, str]]:
        text = io.TextIOWrapper(raw, encoding="utf-16", newline=None)
        number = 0
        try:
            for number, line in enumerate(text, 1):
                yield number, line.removesuffix("\n")
        except UnicodeDecodeError as exc:
            raise ExportFormatError(
                self.path, f"invalid UTF-16 text ({exc.reason})", self.where(number + 1)
            ) from None

    def _decode_error(self, number: int, line: bytes, exc: UnicodeDecodeError) -> ExportFormatError:
        byte = line[exc.start]
        guess = " (it looks like Latin-1 or Windows-1252)" if byte >= 0x80 else ""
        return ExportFormatError(
            self.path,
            f"not UTF-8 text: cannot decode byte 0x{byte:02X} (byte {exc.start + 1} of the line)"
            f"{guess}; WhatsApp writes UTF-8: re-export the chat, or save the file as UTF-8",
            self.where(number),
        )


def _peek(raw: IO[bytes]) -> bytes:
    peek = getattr(raw, "peek", None)
    start: bytes = peek(4)[:4] if peek is not None else b""
    return start


def _split_lines(raw: IO[bytes]) -> Iterator[bytes]:
    """Split a byte stream on ``\\n``, as WhatsApp ends lines (``\\r\\n`` on some phones)."""
    rest = b""
    first = True
    while chunk := raw.read(_CHUNK):
        if first:
            first = False
            chunk = chunk.removeprefix(codecs.BOM_UTF8)
        lines = (rest + chunk).split(b"\n")
        rest = lines.pop()
        yield from lines
    if rest:
        yield rest


def _chat_member(archive: zipfile.ZipFile) -> str | None:
    """The chat's text file in a WhatsApp zip, or None."""
    texts = [
        name
        for name in archive.namelist()
        if name.lower().endswith(".txt") and not name.startswith("__MACOSX/")
    ]
    for name in texts:
        if name.rsplit("/", 1)[-1] == _IOS_CHAT_FILE:
            return name
    named = [name for name in texts if _CHAT_FILE.match(Path(name).stem)]
    if len(named) == 1:
        return named[0]
    if len(texts) == 1:
        return texts[0]
    return None


def chat_name_from_file(file_name: str) -> str:
    """The chat's name, from the name of its export file or zip.

    Args:
        file_name: E.g. ``"WhatsApp Chat with Team.txt"`` or ``"WhatsApp Chat - Team (1).zip"``.

    Returns:
        E.g. ``"Team"``; the file's stem when it is not named like an export.
    """
    stem = Path(file_name).stem
    stem = _DOWNLOAD_SUFFIX.sub("", stem.translate(_BIDI)).strip()
    named = _CHAT_FILE.match(stem)
    return (named.group(1).strip() if named else stem) or "WhatsApp chat"


def _source(path: Path) -> _Source:
    """Find the chat text of an export: the file itself, or the chat file of a zip."""
    with open_binary(path) as raw:
        is_zip = raw.read(4) == b"PK\x03\x04"
    if not is_zip:
        return _Source(path, None, chat_name_from_file(path.name))
    try:
        with zipfile.ZipFile(path) as archive:
            member = _chat_member(archive)
    except zipfile.BadZipFile as exc:
        raise ExportFormatError(path, f"not a valid zip file ({exc})") from exc
    if member is None:
        raise ExportFormatError(
            path,
            "no chat in this zip: expected _chat.txt or 'WhatsApp Chat with <name>.txt'",
        )
    stem = Path(member).name
    name = chat_name_from_file(path.name if stem == _IOS_CHAT_FILE else stem)
    return _Source(path, member, name)


# --------------------------------------------------------------------------- detection


def sniff_whatsapp(path: Path, head: bytes) -> bool:
    """Recognise a WhatsApp chat export: a ``.txt`` file, or a ``.zip`` holding one.

    WhatsApp names its exports so; a file renamed otherwise is still read when
    the format is named explicitly.

    Args:
        path: The export; a zip is opened to look at its chat file.
        head: The first bytes of the file.

    Returns:
        Whether the first non-empty line starts like a WhatsApp message line.
    """
    suffix = path.suffix.lower()
    if suffix not in (".txt", ".zip"):
        return False
    if head.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(path) as archive:
                member = _chat_member(archive)
                if member is None:
                    return False
                with archive.open(member) as raw:
                    head = raw.read(4096)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, OSError):
            return False
    for line in _head_text(head).split("\n"):
        if line.strip(" \t\r\ufeff\u200e"):
            return _HEADER.match(line) is not None
    return False


def _head_text(head: bytes) -> str:
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return head.decode("utf-16", errors="replace")
    if b"\0" in head[:4]:
        # UTF-16 without a byte order mark: recognised so the importer can say so.
        little = head[1:2] == b"\0"
        return head.decode("utf-16-le" if little else "utf-16-be", errors="replace")
    return head.decode("utf-8", errors="replace")


# --------------------------------------------------------------------------- date order


@dataclass(frozen=True)
class _DateOrder:
    """Which of a date's numbers is the day, the month and the year."""

    day: int
    month: int
    year: int
    reason: str


_DMY = (0, 1, 2)
_MDY = (1, 0, 2)
_YMD = (2, 1, 0)


def _date_order(source: _Source) -> _DateOrder:
    """Settle the date order from the file (see the module docstring)."""
    twelve_hour: bool | None = None
    for number, line in source.lines():
        header = _HEADER.match(line)
        if header is None:
            continue
        first, _sep, second = header.group(3, 4, 5)
        stamp = header.group(2)
        if twelve_hour is None:
            twelve_hour = header.group(10) is not None
        if len(first) == 4:
            return _DateOrder(*_YMD, f"year first ({stamp!r} at {source.where(number)})")
        if int(first) > 12 >= int(second):
            return _DateOrder(*_DMY, f"day/month/year ({stamp!r} at {source.where(number)})")
        if int(second) > 12 >= int(first):
            return _DateOrder(*_MDY, f"month/day/year ({stamp!r} at {source.where(number)})")
    if twelve_hour:
        return _DateOrder(*_MDY, "month/day/year (no day above 12; 12-hour clock)")
    return _DateOrder(*_DMY, "day/month/year (no day above 12; 24-hour clock)")


# --------------------------------------------------------------------------- importing


def iter_whatsapp_export(path: Path | str, community_id: str) -> Iterator[WhatsAppEvent]:
    """Read a WhatsApp chat export and yield its events, in file order.

    The community id, the file (or zip) and the date order are checked before
    this returns; lines are then read lazily as the iterator is consumed.

    Args:
        path: The ``.txt`` file, or the ``.zip`` WhatsApp wrote.
        community_id: The Pépite community the messages belong to.

    Returns:
        An iterator of events: :class:`MessageIngested` for messages and
        system lines, :class:`MemberJoined` and :class:`MemberLeft` for the
        membership changes the chat records.

    Raises:
        ValueError: ``community_id`` is not a valid community id.
        ExportFormatError: the file is missing, not UTF-8, not a WhatsApp chat,
            or a line has an impossible date. Raised while iterating for
            problems found past the lines read to settle the date order.
    """
    validate_community_id(community_id)
    path = Path(path)
    source = _source(path)
    order = _date_order(source)
    return _Converter(source, community_id, order).events()


def _name(raw: str) -> str:
    return raw.translate(_BIDI).strip()


def _name_id(name: str) -> str:
    digest = hashlib.sha1(name.encode(), usedforsecurity=False).hexdigest()
    return f"name:{digest[:16]}"


class _Converter:
    """Turns the lines of one chat into events."""

    def __init__(self, source: _Source, community_id: str, order: _DateOrder) -> None:
        self.source = source
        self.path = source.path
        self.community_id = community_id
        self.order = order
        chat_id = hashlib.sha1(source.chat_name.encode(), usedforsecurity=False).hexdigest()[:16]
        self.chat_id = chat_id
        self.channel = ChannelRef(id=chat_id, name=source.chat_name)
        self._sid_prefix = stable_id(_PLATFORM, community_id, f"{chat_id}:")
        self.system = self._new_member("system", "WhatsApp")
        self._members: dict[str, Member] = {}
        self._times: dict[str, tuple[datetime, str]] = {}
        # Local minute -> author -> messages seen, for the rank in message ids.
        self._ranks: dict[str, dict[str, int]] = {}

    def _new_member(self, native_id: str, name: str) -> Member:
        return Member(
            id=stable_id(_PLATFORM, self.community_id, native_id), native_id=native_id, name=name
        )

    def _member(self, raw_name: str) -> Member:
        member = self._members.get(raw_name)
        if member is None:
            name = _name(raw_name) or raw_name
            member = self._new_member(_name_id(name), name)
            if len(self._members) >= _CACHE_SIZE:
                self._members.clear()
            self._members[raw_name] = member
        return member

    def events(self) -> Iterator[WhatsAppEvent]:
        """Yield the chat's events, reading its lines lazily."""
        match = _HEADER.match
        pending: tuple[int, re.Match[str]] | None = None
        more: list[str] | None = None
        for number, line in self.source.lines():
            header = match(line)
            if header is None:
                if pending is None:
                    if not line.strip(" \t\ufeff\u200e"):
                        continue
                    raise ExportFormatError(
                        self.path,
                        "not a WhatsApp chat: this line should start with a date and time "
                        "such as '31/12/2023, 21:41 - ' or '[31/12/2023, 21:41:05] ', "
                        f"not {line[:40]!r}",
                        self.source.where(number),
                    )
                # A line without a date continues the message above.
                if more is None:
                    more = [line]
                else:
                    more.append(line)
                continue
            if pending is not None:
                yield from self._convert(pending[0], pending[1], more)
            pending = (number, header)
            more = None
        if pending is not None:
            yield from self._convert(pending[0], pending[1], more)

    def _convert(
        self, number: int, header: re.Match[str], more: list[str] | None
    ) -> tuple[WhatsAppEvent, ...]:
        try:
            return self._convert_message(number, header, more)
        except ValidationError as exc:
            raise ExportFormatError(
                self.path, describe_contract_error(exc), self.source.where(number)
            ) from exc

    def _time(self, number: int, header: re.Match[str]) -> tuple[datetime, str]:
        """The UTC instant (local time read as UTC) and local ISO time of a line."""
        stamp = header.group(2)
        known = self._times.get(stamp)
        if known is not None:
            return known
        first, second, third, hours, minutes, seconds, half = header.group(3, 5, 6, 7, 8, 9, 10)
        numbers = (first, second, third)
        order = self.order
        year = int(numbers[order.year])
        if year < 100:
            year += 2000
        hour = int(hours)
        if half is not None:
            if not 1 <= hour <= 12:
                raise self._bad_time(number, stamp, "hour must be 1 to 12 with AM/PM")
            hour = hour % 12 + (12 if half in "Pp" else 0)
        try:
            when = datetime(
                year,
                int(numbers[order.month]),
                int(numbers[order.day]),
                hour,
                int(minutes),
                int(seconds or 0),
                tzinfo=UTC,
            )
        except ValueError as exc:
            raise self._bad_time(number, stamp, str(exc)) from None
        # Seconds only when the layout has them, so ids match across exports of one phone.
        local = f"{when.year:04}-{when.month:02}-{when.day:02}T{when.hour:02}:{when.minute:02}"
        if seconds:
            local += f":{when.second:02}"
        if len(self._times) >= _CACHE_SIZE:
            self._times.clear()
        self._times[stamp] = (when, local)
        return when, local

    def _bad_time(self, number: int, stamp: str, why: str) -> ExportFormatError:
        return ExportFormatError(
            self.path,
            f"invalid date or time {stamp!r} ({why}; dates read as {self.order.reason})",
            self.source.where(number),
        )

    def _digest(self, local: str, author: str) -> str:
        """A digest of the local time, the author and their rank in that minute (or second)."""
        ranks = self._ranks.get(local)
        if ranks is None:
            if len(self._ranks) >= _RECENT_MINUTES:
                del self._ranks[next(iter(self._ranks))]
            ranks = self._ranks[local] = {}
        rank = ranks.get(author, 0)
        ranks[author] = rank + 1
        key = f"{local}\x1f{author}\x1f{rank}".encode()
        return hashlib.sha1(key, usedforsecurity=False).hexdigest()[:20]

    def _convert_message(
        self, number: int, header: re.Match[str], more: list[str] | None
    ) -> tuple[WhatsAppEvent, ...]:
        created_at, local = self._time(number, header)
        rest = header.group(11)
        colon = rest.find(": ")
        if colon < 0 and rest.endswith(":"):
            colon = len(rest) - 1  # an author with an empty first line
        author_part = rest[:colon] if colon > 0 else ""
        if colon <= 0 or '"' in author_part or "“" in author_part:
            # No "Name: ": a system line (a quote means a subject change, not a name).
            text = rest if more is None else "\n".join([rest, *more])
            return self._system(header.group(2), local, created_at, text)
        text = rest[colon + 2 :]
        if more is not None:
            text = "\n".join([text, *more])
        if text.startswith(_LRM):
            # iPhones mark media, deletions and system lines (which they attribute
            # to the group itself) with a left-to-right mark.
            text = text.lstrip(_LRM)
            if _is_ios_system(text, _name(author_part) == self.source.chat_name):
                return self._system(header.group(2), local, created_at, text)
        return (self._message(header.group(2), local, created_at, author_part, text),)

    def _message(
        self, stamp: str, local: str, created_at: datetime, author_part: str, text: str
    ) -> MessageIngested:
        author = self._member(author_part)
        digest = self._digest(local, author.native_id)
        sid = self._sid_prefix + digest
        raw: dict[str, Any] = {"local_time": stamp}
        payload: dict[str, Any] = {
            "id": sid,
            "platform": Platform.WHATSAPP,
            "community_id": self.community_id,
            "native_id": f"{self.chat_id}:{digest}",
            "channel": self.channel,
            "author": author,
            "created_at": created_at,
            "raw": raw,
        }
        change = ""
        if text[-1:] in _LAST_OF_EDITED and _edited(text):
            text = _edited(text) or ""
            raw["edited"] = True
            change = "edited"
        first, _newline, caption = text.partition("\n")
        marker = _marker(first)
        if marker is not None:
            kind, value = marker
            if kind == "deleted" and not caption:
                text = ""
                raw["deleted"] = True
                change = "deleted"
            elif kind == "omitted":
                payload["attachments"] = [{}]
                raw["attachments"] = [{"omitted": True, "kind": value}]
                text = caption
            elif kind == "attached":
                payload["attachments"] = [{"filename": value}]
                text = caption
        payload["text"] = text
        # A copy that changed between two exports gets its own event id, while keeping
        # the message's id: the edit time that would tell them apart is unknown.
        event_id = (
            _event_id("message.ingested", sid, "", change, text)
            if change
            else _event_id("message.ingested", sid, "")
        )
        return MessageIngested.model_validate(
            {
                "event_id": event_id,
                "occurred_at": created_at,
                "community_id": self.community_id,
                "payload": payload,
            }
        )

    def _system(
        self, stamp: str, local: str, created_at: datetime, text: str
    ) -> tuple[WhatsAppEvent, ...]:
        text = text.lstrip(_LRM)
        if text.startswith(_ENCRYPTION_NOTICES):
            return ()
        digest = self._digest(local, self.system.native_id)
        sid = self._sid_prefix + digest
        change = _membership(text)
        if change is not None:
            kind, names = change
            members = [self._member(name) for name in names]
            if kind == "joined":
                return tuple(self._joined(member, sid, created_at) for member in members)
            return tuple(self._left(member, sid, created_at) for member in members)
        payload = {
            "id": sid,
            "platform": Platform.WHATSAPP,
            "community_id": self.community_id,
            "native_id": f"{self.chat_id}:{digest}",
            "channel": self.channel,
            "author": self.system,
            "text": text,
            "type": MessageType.SYSTEM,
            "created_at": created_at,
            "raw": {"local_time": stamp},
        }
        return (
            MessageIngested.model_validate(
                {
                    "event_id": _event_id("message.ingested", sid, ""),
                    "occurred_at": created_at,
                    "community_id": self.community_id,
                    "payload": payload,
                }
            ),
        )

    def _membership_payload(self, member: Member, source_id: str, at: datetime) -> dict[str, Any]:
        return {
            "member": member,
            "platform": Platform.WHATSAPP,
            "community_id": self.community_id,
            "at": at,
            "channel": self.channel,
            "source_id": source_id,
        }

    def _joined(self, member: Member, source_id: str, at: datetime) -> MemberJoined:
        return MemberJoined.model_validate(
            {
                # One line can add several members: the member is part of the id.
                "event_id": _event_id("member.joined", source_id, member.id),
                "occurred_at": at,
                "community_id": self.community_id,
                "payload": self._membership_payload(member, source_id, at),
            }
        )

    def _left(self, member: Member, source_id: str, at: datetime) -> MemberLeft:
        return MemberLeft.model_validate(
            {
                "event_id": _event_id("member.left", source_id, member.id),
                "occurred_at": at,
                "community_id": self.community_id,
                "payload": self._membership_payload(member, source_id, at),
            }
        )


def _is_ios_system(text: str, by_the_group: bool) -> bool:
    """Whether a line an iPhone marked with a left-to-right mark is a system line."""
    if _membership(text) is not None or text.startswith(_ENCRYPTION_NOTICES):
        return True
    if not by_the_group:
        return False
    # Media, deletions and edits are marked too, but they are messages.
    return _marker(text.partition("\n")[0]) is None and _edited(text) is None


def _edited(text: str) -> str | None:
    """The text without its "edited" marker, or None when it has none."""
    bare = text.rstrip(_LRM)
    for marker in _EDITED:
        if bare.endswith(marker):
            return bare.removesuffix(marker).rstrip(f" {_LRM}")
    return None


def _marker(first: str) -> tuple[str, str] | None:
    """What a message's first line stands for when it is not text.

    Returns:
        ``("deleted", "")``, ``("omitted", kind)`` or ``("attached", file name``),
        or None for text.
    """
    first = first.lstrip(_LRM)
    # Cheap tests first: nearly every line is plain text.
    if first in _DELETED:
        return "deleted", ""
    if first in _MEDIA_OMITTED:
        return "omitted", "media"
    if first.endswith(_OMITTED_ENDINGS):
        omitted = _KIND_OMITTED.match(first)
        if omitted is not None:
            kind = omitted.group(1).lower()
            return "omitted", _KINDS.get(kind, kind)
    if first[-1:] in (")", ">"):
        attached = _ATTACHED.match(first)
        if attached is not None:
            return "attached", attached.group("android") or attached.group("ios")
    return None


def _membership(text: str) -> tuple[str, list[str]] | None:
    """``("joined" | "left", names)`` for a system line that changes membership, else None."""
    for pattern, kind in _MEMBERSHIP_LINES:
        found = pattern.match(text)
        if found is not None:
            names = [_name(name) for name in _NAME_LIST.split(found.group("who"))]
            return kind, [name for name in names if name and name.lower() not in _YOU]
    return None
