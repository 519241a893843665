"""Crisis signals a human must see at once: a member in distress, a scam wave. Pure.

The classifier gives a mood (sad, anxious...) but no notion of danger, and a sad mood is
mostly "that's sad, sorry" in a help channel. So distress is told by a short lexicon of
explicit phrases, in English and French, kept small on purpose: precise rather than
exhaustive, since each hit pages a human. Explicit phrases ("I want to die") are enough
alone; softer ones ("I can't go on") only count when the analyzer also found the
author sad or anxious. Links are left out before matching (page titles in URLs are not
the author's words).

A scam wave is several scam-flagged messages from different authors within a short
window: one scammer is the moderation queue's business, several at once is an attack.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

_URL = re.compile(r"\S+://\S+|www\.\S+", re.IGNORECASE)

_EXPLICIT = re.compile(
    r"\b("
    r"kill(?:ing)? my ?self|want(?:ed)? to die|wanna die|end(?:ing)? my (?:own )?life"
    r"|take my (?:own )?life|suicidal|(?:commit|committing|considering|thinking about)"
    r" suicide|hurt(?:ing)? my ?self|self[- ]harm(?:ing)?|cut(?:ting)? my ?self"
    r"|better off dead|no reason to live|(?:do not|don'?t) want to (?:live|be alive)"
    r"|me suicider|me tuer|envie de mourir|mettre fin à mes jours"
    r"|en finir avec (?:la vie|tout)"
    r")\b",
    re.IGNORECASE,
)

_SOFT = re.compile(
    r"\b("
    r"can'?t go on|cannot go on|can'?t take (?:it|this) any ?more|hopeless"
    r"|nobody would (?:miss|care about) me|give up on everything"
    r"|je n'?en peux plus|plus envie de rien"
    r")\b",
    re.IGNORECASE,
)

#: Moods under which a soft phrase is read as distress.
DISTRESS_MOODS = frozenset({"sad", "anxious"})


def distress_cue(text: str, mood: str) -> str | None:
    """The phrase that shows the author in distress, if any.

    Args:
        text: The message's text.
        mood: The analyzer's mood for it.
    """
    words = _URL.sub(" ", text)
    found = _EXPLICIT.search(words)
    if found is not None:
        return found.group(0)
    if mood in DISTRESS_MOODS:
        soft = _SOFT.search(words)
        if soft is not None:
            return soft.group(0)
    return None


@dataclass(frozen=True)
class ScamSighting:
    """One scam-flagged message."""

    message_id: str
    author_id: str
    created_at: datetime


def scam_wave(
    sightings: Sequence[ScamSighting], *, min_authors: int, window: timedelta
) -> list[ScamSighting]:
    """The first wave among ``sightings``: scam messages from at least ``min_authors``
    authors within ``window``; empty when there is none.

    The wave holds every sighting of its window, oldest first (the earliest sighting
    names it, so it is the same however often it is computed on the same messages).
    """
    ordered = sorted(sightings, key=lambda s: (s.created_at, s.message_id))
    start = 0
    for end, sighting in enumerate(ordered):
        while sighting.created_at - ordered[start].created_at > window:
            start += 1
        group = ordered[start : end + 1]
        if len({s.author_id for s in group}) >= min_authors:
            # Take in the rest of the window too: they are the same wave.
            tail = [
                s for s in ordered[end + 1 :] if s.created_at - ordered[start].created_at <= window
            ]
            return [*group, *tail]
    return []
