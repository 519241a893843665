"""The labeling prompt: many messages per call, each under a short numeric id.

Token economy drives the format. Instructions are said once per call and shared by the
whole batch; a message is one line, ``<id>: <text>``; the text it replies to is a line
``<id>^ <text>`` above it, or, when that text is itself in the batch, just ``<id>><j>:``
pointing at it, so a conversation is not paid for twice.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

#: Part of every cache key: a new prompt or label set must not reuse old answers.
PROMPT_VERSION = "labels-v1"

SYSTEM_PROMPT = """\
Label each chat message of an online community.
Input lines: "id: text". "id^ text" above it is the message it replies to (context only). \
"id>j: text" replies to message j.
For every id return i=id and:
k: 1-3 kinds, best first: question, problem (bug, error, something broken), \
feature (request, idea), praise (satisfied with the product), complaint, answer (help, \
solution), resource (link, doc), cheer (encouragement), thanks, news (announcement), \
social (chit-chat), spam, scam, promo (self-promotion), toxic (insult, harassment), \
hate (hate speech).
s: sentiment, -2 very negative to 2 very positive.
m: mood: joyful grateful confident curious neutral confused frustrated anxious sad angry.
l: ISO 639-1 language code."""

_WHITESPACE = re.compile(r"\s+")


def clip(text: str, limit: int) -> str:
    """``text`` on one line, cut to ``limit`` characters (an ellipsis marks the cut).

    Line breaks become spaces: a message must stay on its line of the prompt.
    """
    flat = _WHITESPACE.sub(" ", text).strip()
    if len(flat) <= limit:
        return flat
    return flat[: max(limit - 1, 0)].rstrip() + "…"


@dataclass(frozen=True)
class PromptMessage:
    """A message as the model sees it: its text and the text it replies to, both cut."""

    text: str
    context: str | None = None
    #: The replied-to text cut like a message's text, to recognise it when it is in the batch.
    parent_text: str | None = field(default=None, compare=False)

    @classmethod
    def of(
        cls, text: str, context: Sequence[str], *, text_chars: int, context_chars: int
    ) -> PromptMessage:
        """The nearest replied-to text is enough to tell an answer from a question."""
        if not context or not context_chars or not context[-1].strip():
            return cls(clip(text, text_chars))
        return cls(
            clip(text, text_chars),
            clip(context[-1], context_chars),
            parent_text=clip(context[-1], text_chars),
        )

    def cache_key(self, model: str) -> str:
        """What identifies the answer: same model, prompt, text and context, same labels."""
        payload = json.dumps([model, PROMPT_VERSION, self.text, self.context], ensure_ascii=False)
        return hashlib.sha256(payload.encode()).hexdigest()


@dataclass(frozen=True)
class CacheKeys:
    """How the analyzer keys its answer cache, to find the answers about given texts."""

    model: str
    text_chars: int
    context_chars: int

    def of(self, text: str, context: str | None = None) -> str:
        """The key of the answer about ``text`` replying to ``context``."""
        message = PromptMessage.of(
            text,
            (context,) if context else (),
            text_chars=self.text_chars,
            context_chars=self.context_chars,
        )
        return message.cache_key(self.model)


def render_batch(messages: Sequence[PromptMessage]) -> str:
    """The user turn of a call: message ``n`` of the sequence gets id ``n + 1``."""
    lines: list[str] = []
    first_id_of_text: dict[str, int] = {}
    for index, message in enumerate(messages, start=1):
        parent = first_id_of_text.get(message.parent_text) if message.parent_text else None
        if message.context is None:
            lines.append(f"{index}: {message.text}")
        elif parent is not None:
            lines.append(f"{index}>{parent}: {message.text}")
        else:
            lines.append(f"{index}^ {message.context}")
            lines.append(f"{index}: {message.text}")
        first_id_of_text.setdefault(message.text, index)
    return "\n".join(lines)


def max_completion_tokens(count: int) -> int:
    """A ceiling on the answer's length, to bound what a runaway answer can cost.

    An item such as ``{"i":12,"k":["question","problem"],"s":-1,"m":"frustrated","l":"en"}``
    is about 30 tokens; the ceiling leaves twice that, so an honest answer never hits it
    (a cut answer is paid for and then asked again).
    """
    return 64 * count + 32
