"""The hot paths' cache: entries expire, concurrent misses share one load, and clearing it
forgets loads under way."""

import asyncio

import pytest

from app.runtime.cache import ExpiringCache


class CountingLoader:
    def __init__(self, value: str = "value", *, fail: bool = False) -> None:
        self.calls = 0
        self.value = value
        self.fail = fail

    async def __call__(self) -> str:
        self.calls += 1
        await asyncio.sleep(0.01)  # long enough for every caller to arrive while it loads
        if self.fail:
            raise ConnectionError("database down")
        return self.value


async def test_concurrent_misses_share_one_load() -> None:
    cache: ExpiringCache[str] = ExpiringCache(seconds=60, max_entries=10)
    load = CountingLoader()
    values = await asyncio.gather(*(cache.get("client", load) for _ in range(30)))
    assert values == ["value"] * 30
    assert load.calls == 1
    assert await cache.get("client", load) == "value"
    assert load.calls == 1


async def test_entries_expire() -> None:
    cache: ExpiringCache[str] = ExpiringCache(seconds=0.05, max_entries=10)
    load = CountingLoader()
    await cache.get("client", load)
    await asyncio.sleep(0.06)
    await cache.get("client", load)
    assert load.calls == 2


async def test_a_failed_load_reaches_every_waiter_and_is_retried() -> None:
    cache: ExpiringCache[str] = ExpiringCache(seconds=60, max_entries=10)
    failing = CountingLoader(fail=True)
    results = await asyncio.gather(
        *(cache.get("client", failing) for _ in range(5)), return_exceptions=True
    )
    assert all(isinstance(result, ConnectionError) for result in results)
    assert failing.calls == 1
    assert await cache.get("client", CountingLoader("recovered")) == "recovered"


async def test_a_cancelled_caller_does_not_cancel_the_load() -> None:
    cache: ExpiringCache[str] = ExpiringCache(seconds=60, max_entries=10)
    load = CountingLoader()
    first = asyncio.ensure_future(cache.get("client", load))
    second = asyncio.ensure_future(cache.get("client", load))
    await asyncio.sleep(0)
    first.cancel()
    assert await second == "value"
    with pytest.raises(asyncio.CancelledError):
        await first
    assert load.calls == 1


async def test_the_oldest_entry_makes_room() -> None:
    cache: ExpiringCache[str] = ExpiringCache(seconds=60, max_entries=2)
    for key in ("a", "b", "c"):
        await cache.get(key, CountingLoader(key))
    load = CountingLoader("again")
    assert await cache.get("a", load) == "again"
    assert await cache.get("c", load) == "c"


async def test_clearing_forgets_entries() -> None:
    cache: ExpiringCache[str] = ExpiringCache(seconds=60, max_entries=10)
    await cache.get("product", CountingLoader("old"))
    cache.clear()
    assert cache.fresh("product") is None
    assert await cache.get("product", CountingLoader("new")) == "new"


async def test_a_load_begun_before_clearing_is_not_kept_nor_shared() -> None:
    cache: ExpiringCache[str] = ExpiringCache(seconds=60, max_entries=10)
    stale = asyncio.ensure_future(cache.get("product", CountingLoader("old")))
    await asyncio.sleep(0)  # the load is under way
    cache.clear()  # as a write in this worker does
    fresh = CountingLoader("new")
    assert await cache.get("product", fresh) == "new"  # not the load under way
    assert await stale == "old"  # its own caller still gets its answer
    assert await cache.get("product", fresh) == "new"  # and it was not stored over the new one
    assert fresh.calls == 1
