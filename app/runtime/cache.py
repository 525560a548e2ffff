"""A small cache for the hot paths: entries that live a few seconds, per worker.

The token endpoint keeps the clients it has seen (app/oauth/registry.py) and the store API the
products storefronts read (app/store/catalogue.py), each for a second by default: so busy paths
cost no database round trip, while a change is still seen within that bound on every worker.
When an entry expires, one request reloads it and the others in flight wait for that one load
instead of each querying the database.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

V = TypeVar("V")


class ExpiringCache(Generic[V]):
    """A bounded map whose entries live `seconds`; concurrent misses share one load."""

    def __init__(self, seconds: float, max_entries: int) -> None:
        self._seconds = seconds
        self._max_entries = max_entries
        self._entries: dict[str, tuple[float, V]] = {}
        self._loading: dict[str, asyncio.Future[V]] = {}
        self._generation = 0  # moved on by `clear()`, so a load begun before stores nothing

    def fresh(self, key: str) -> tuple[V] | None:
        """The value, boxed, if one is cached and fresh: the busy path, with no await."""
        entry = self._entries.get(key)
        if entry is not None and entry[0] > time.monotonic():
            return (entry[1],)
        return None

    async def get(self, key: str, load: Callable[[], Awaitable[V]]) -> V:
        entry = self._entries.get(key)
        if entry is not None and entry[0] > time.monotonic():
            return entry[1]
        task = self._loading.get(key)
        if task is None:
            # A task of its own, so a cancelled request does not cancel everyone's load.
            task = asyncio.ensure_future(self._load_and_store(key, load, self._generation))
            self._loading[key] = task
            task.add_done_callback(lambda done: self._finish(key, done))
        return await asyncio.shield(task)

    def clear(self) -> None:
        """Forgets every entry, and what loads already under way will find: whatever was
        written before this call, the next `get` of any key reads it."""
        self._entries.clear()
        self._loading.clear()
        self._generation += 1

    async def _load_and_store(
        self, key: str, load: Callable[[], Awaitable[V]], generation: int
    ) -> V:
        value = await load()
        if generation == self._generation:
            self._store(key, value)
        return value

    def _finish(self, key: str, task: "asyncio.Future[V]") -> None:
        if self._loading.get(key) is task:
            del self._loading[key]
        if not task.cancelled():
            task.exception()  # retrieved here; the requests awaiting it re-raise it

    def _store(self, key: str, value: V) -> None:
        self._entries.pop(key, None)
        if len(self._entries) >= self._max_entries:
            self._entries.pop(next(iter(self._entries)))  # the oldest entry
        self._entries[key] = (time.monotonic() + self._seconds, value)
