"""The shared report cache: one computation at a time, stale answers while refreshing."""

from __future__ import annotations

import asyncio

import pytest

from pepite_api.cache import SharedCache

pytestmark = pytest.mark.asyncio


class Running:
    """How many computations run at once, and the most there ever were."""

    def __init__(self) -> None:
        self.now = 0
        self.most = 0


class Slow:
    """A computation that takes a while and counts its runs."""

    def __init__(self, running: Running | None = None) -> None:
        self.runs = 0
        self.running = running or Running()

    async def __call__(self) -> int:
        self.runs += 1
        self.running.now += 1
        self.running.most = max(self.running.most, self.running.now)
        await asyncio.sleep(0.05)
        self.running.now -= 1
        return self.runs


async def test_concurrent_misses_wait_for_one_computation() -> None:
    cache: SharedCache[int] = SharedCache(60)
    compute = Slow()
    answers = await asyncio.gather(*(cache.get("year", compute) for _ in range(20)))
    assert answers == [1] * 20
    assert compute.runs == 1


async def test_expired_answers_are_served_while_one_refresh_at_a_time_runs() -> None:
    cache: SharedCache[int] = SharedCache(0.05, stale_s=60)
    running = Running()
    computations = {name: Slow(running) for name in ("week", "month", "year")}
    for name, compute in computations.items():
        assert await cache.get(name, compute) == 1
    await asyncio.sleep(0.1)  # all expired
    running.most = 0
    # Stale answers at once, however many ask; each key refreshed once, one after another.
    stale = await asyncio.gather(
        *(cache.get(name, compute) for name, compute in computations.items() for _ in range(10))
    )
    assert stale == [1] * 30
    await asyncio.sleep(0.3)
    assert [c.runs for c in computations.values()] == [2, 2, 2]
    assert running.most == 1
    for name, compute in computations.items():
        assert await cache.get(name, compute) == 2


async def test_an_expired_answer_is_recomputed_only_when_its_data_changed() -> None:
    cache: SharedCache[int] = SharedCache(0.05, stale_s=60)
    compute = Slow()
    data = {"version": 1}

    async def version() -> int:
        return data["version"]

    assert await cache.get("year", compute, version=version) == 1
    for _ in range(3):  # expired three times over unchanged data
        await asyncio.sleep(0.08)
        assert await cache.get("year", compute, version=version) == 1
        await asyncio.sleep(0.01)
    assert compute.runs == 1
    data["version"] = 2
    await asyncio.sleep(0.08)
    assert await cache.get("year", compute, version=version) == 1  # stale, while refreshed
    await asyncio.sleep(0.1)
    assert await cache.get("year", compute, version=version) == 2
    assert compute.runs == 2
