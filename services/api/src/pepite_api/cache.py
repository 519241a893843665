"""An in-process cache for answers that are costly and shared (insights reports).

Three rules keep a busy dashboard cheap: a fresh answer is served from memory; an
expired one is still served while one background task recomputes it (stale while
revalidate); and when nothing is cached, concurrent requests for the same key wait for
one computation instead of each starting their own.

Given a ``version`` (a cheap read that changes whenever the data behind the answers
does), an expired answer whose version has not moved is kept for another lifetime
instead of being recomputed: unchanged data is never recomputed. Background
refreshes run one at a time, and each entry's lifetime is shortened by a
random part of up to a fifth: answers computed together (a dashboard's first load) do
not all expire together and get recomputed at once, which would take the database
from every other request for as long.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")

logger = logging.getLogger(__name__)


class SharedCache(Generic[V]):
    """Values for ``ttl_s`` seconds, then served stale up to ``stale_s`` while refreshed."""

    def __init__(self, ttl_s: float, *, stale_s: float | None = None, max_entries: int = 1024):
        self._ttl_s = ttl_s
        self._stale_s = stale_s if stale_s is not None else 10 * ttl_s
        self._max_entries = max_entries
        #: key -> (monotonic time it expires, value, version of the data it was computed at)
        self._entries: OrderedDict[Hashable, tuple[float, V, Hashable]] = OrderedDict()
        self._refreshing = asyncio.Semaphore(1)
        self._running: dict[Hashable, asyncio.Future[V]] = {}
        self._refreshes: set[asyncio.Task[None]] = set()
        self._refresh_keys: set[Hashable] = set()

    async def get(
        self,
        key: Hashable,
        compute: Callable[[], Awaitable[V]],
        *,
        version: Callable[[], Awaitable[Hashable]] | None = None,
    ) -> V:
        """The value of ``key``, computing it at most once at a time.

        Args:
            key: What is asked.
            compute: Computes the value.
            version: Reads the version of the data ``compute`` reads, if it has one.

        Errors of ``compute`` reach every caller waiting on it and are not cached.
        """
        if self._ttl_s <= 0:
            return await compute()
        now = time.monotonic()
        entry = self._entries.get(key)
        if entry is not None:
            expires_at, value, _ = entry
            if now <= expires_at:
                self._entries.move_to_end(key)
                return value
            if now <= expires_at + self._stale_s:
                if key not in self._running and key not in self._refresh_keys:
                    self._refresh_keys.add(key)
                    task = asyncio.create_task(self._refresh(key, compute, version))
                    self._refreshes.add(task)
                    task.add_done_callback(self._refreshes.discard)
                return value
        running = self._running.get(key)
        if running is not None:
            return await asyncio.shield(running)
        return await self._compute(key, compute, version)

    async def _compute(
        self,
        key: Hashable,
        compute: Callable[[], Awaitable[V]],
        version: Callable[[], Awaitable[Hashable]] | None,
    ) -> V:
        future: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        self._running[key] = future
        try:
            # Read first: a change during the computation makes the next check recompute.
            data_version = await version() if version is not None else None
            value = await compute()
        except BaseException as exc:
            future.set_exception(exc)
            # Retrieved here so a failure nobody else waited for is not reported as lost.
            future.exception()
            raise
        else:
            future.set_result(value)
            self._store(key, value, data_version)
            return value
        finally:
            del self._running[key]

    async def _refresh(
        self,
        key: Hashable,
        compute: Callable[[], Awaitable[V]],
        version: Callable[[], Awaitable[Hashable]] | None,
    ) -> None:
        try:
            entry = self._entries.get(key)
            if version is not None and entry is not None:
                current = await version()
                if current == entry[2]:
                    self._store(key, entry[1], current)
                    return
            async with self._refreshing:
                await self._compute(key, compute, version)
        except Exception:
            # The stale value keeps being served; the next request tries again.
            logger.warning("background refresh failed", exc_info=True)
        finally:
            self._refresh_keys.discard(key)

    def _store(self, key: Hashable, value: V, data_version: Hashable) -> None:
        lifetime = self._ttl_s * (1.0 - 0.2 * random.random())  # noqa: S311 (not a secret)
        self._entries[key] = (time.monotonic() + lifetime, value, data_version)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)
