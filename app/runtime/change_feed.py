"""Hearing the changes other workers announce (app/runtime/changes.py), in a task of each worker.

The feed holds one connection of its own: a Redis subscription when Redis is configured, else a
PostgreSQL `LISTEN` on a plain asyncpg connection outside SQLAlchemy's pool (a pooled connection
goes back to the pool between requests, and a transaction-mode pooler such as PgBouncer would
hand `LISTEN` to a server connection other clients then use: see docs/operations.md). On each
message it calls `on_change` with the topics named; on each (re)connection it calls `on_change`
with every topic, since messages sent while it was away are lost: the worker re-reads, so a
missed message delays a change no longer than the reconnection.

It never raises: a lost connection is logged once, retried with a growing pause (up to
`MAX_BACKOFF_SECONDS`), and its recovery logged. While it is not connected, `connected` is false
and the worker polls as often as it did without a push. A peer that vanished without closing the
connection is found by TCP keepalives (app/runtime/keepalive.py) within
`keepalive.DEAD_PEER_SECONDS`, and on Redis sooner by the heartbeat.
"""

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

from sqlalchemy.engine import make_url

from app.runtime import keepalive
from app.runtime.changes import POSTGRES_CHANNEL, parse_payload, redis_channel
from app.runtime.settings import Settings

logger = logging.getLogger("keyhouse.changes")

MIN_BACKOFF_SECONDS = 0.1
MAX_BACKOFF_SECONDS = 5.0
CONNECT_TIMEOUT_SECONDS = 3.0
# A subscribed Redis connection sends nothing while nothing changes; a ping this often finds a
# Redis that stopped answering (a frozen or partitioned server) within one interval and timeout.
REDIS_HEARTBEAT_SECONDS = 1.0
APPLICATION_NAME = "keyhouse-listen"  # in pg_stat_activity, so operators can tell it apart


class Source(Protocol):
    name: str

    def messages(self, connected: Callable[[], None]) -> AsyncIterator[str | bytes]:
        """Connects, calls `connected`, then yields payloads until the connection is lost."""
        ...


class PostgresSource:
    """`LISTEN` on a dedicated asyncpg connection."""

    name = "PostgreSQL LISTEN"

    def __init__(self, database_url: str) -> None:
        # The arguments SQLAlchemy's engine would give asyncpg (host, user, `ssl`...), so the
        # listener connects as the pool does.
        from sqlalchemy.dialects.postgresql.asyncpg import dialect

        connect = dialect().create_connect_args  # type: ignore[no-untyped-call]
        _args, self._connect = connect(make_url(database_url))  # type: ignore[no-untyped-call]

    async def messages(self, connected: Callable[[], None]) -> AsyncIterator[str | bytes]:
        import asyncpg  # type: ignore[import-untyped]

        received: asyncio.Queue[str | None] = asyncio.Queue()
        connection = await asyncpg.connect(
            **self._connect,
            timeout=CONNECT_TIMEOUT_SECONDS,
            server_settings={"application_name": APPLICATION_NAME},
        )
        try:
            keepalive.keep_alive(asyncpg_socket(connection))
            await connection.execute(keepalive.SERVER_SETTINGS)
            connection.add_termination_listener(lambda _connection: received.put_nowait(None))
            await connection.add_listener(
                POSTGRES_CHANNEL, lambda _c, _pid, _channel, payload: received.put_nowait(payload)
            )
            connected()
            while (payload := await received.get()) is not None:
                yield payload
        finally:
            connection.terminate()  # no goodbye round trip to a server that may be gone


def asyncpg_socket(connection: Any) -> Any:
    """The socket under an asyncpg connection. asyncpg has no option for client keepalives
    (MagicStack/asyncpg#606) and no public way to its socket: its transport's, as asyncpg
    itself reaches it to set TCP_NODELAY."""
    transport = getattr(connection, "_transport", None)
    sock = None if transport is None else transport.get_extra_info("socket")
    if sock is None:
        logger.warning("no socket found under the listener's connection: no TCP keepalives")
    return sock


class RedisSource:
    """A Redis subscription, pinged every `REDIS_HEARTBEAT_SECONDS`."""

    name = "Redis pub/sub"

    def __init__(self, url: str, *, key_prefix: str, timeout: float) -> None:
        self._url = url
        self._channel = redis_channel(key_prefix)
        self._timeout = timeout

    async def messages(self, connected: Callable[[], None]) -> AsyncIterator[str | bytes]:
        from redis.asyncio import Redis

        client = Redis.from_url(
            self._url,
            socket_connect_timeout=self._timeout,
            socket_keepalive=True,
            socket_keepalive_options=keepalive.TCP_OPTIONS,
        )
        pubsub = client.pubsub()
        # `asyncio.timeout`, not `asyncio.wait_for`, throughout: on Python 3.11 `wait_for`
        # swallows a cancellation that arrives as its call completes, and the feed's stop
        # cancels once, then waits.
        try:
            async with asyncio.timeout(self._timeout):
                await pubsub.subscribe(self._channel)
            connected()
            heard = pinged = time.monotonic()
            while True:
                now = time.monotonic()
                if now - heard > REDIS_HEARTBEAT_SECONDS + self._timeout:
                    raise TimeoutError("Redis stopped answering")
                if now - pinged >= REDIS_HEARTBEAT_SECONDS:
                    async with asyncio.timeout(self._timeout):
                        await pubsub.ping()
                    pinged = now
                message = await pubsub.get_message(timeout=REDIS_HEARTBEAT_SECONDS / 2)
                if message is None:
                    continue
                heard = time.monotonic()  # any reply, the pong included
                if message["type"] == "message":
                    yield message["data"]
        finally:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(self._timeout):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
            with contextlib.suppress(Exception):
                async with asyncio.timeout(self._timeout):
                    await client.aclose()


class ChangeFeed:
    """Calls `on_change(topics)` for every change announced, and with `everything` on connecting."""

    def __init__(
        self,
        source: Source,
        on_change: Callable[[frozenset[str]], None],
        *,
        everything: frozenset[str],
    ) -> None:
        self._source = source
        self._on_change = on_change
        self._everything = everything
        self.connected = False
        self.connections = 0  # how many times it connected (for tests and metrics)
        self._lost_at: float | None = None
        self._task: asyncio.Task[None] | None = None
        self._caught_up = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._keep_listening(), name="change-feed")

    async def caught_up(self) -> None:
        """Returns once the feed has connected and the worker re-read everything a first time."""
        await self._caught_up.wait()

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.connected = False

    def _connected(self) -> None:
        self.connected = True
        self.connections += 1
        if self._lost_at is None:
            logger.info("change push (%s) connected", self._source.name)
        else:
            away = time.monotonic() - self._lost_at
            logger.info("change push (%s) back after %.1f s", self._source.name, away)
            self._lost_at = None
        self._tell(self._everything)  # catch up with what was missed meanwhile
        self._caught_up.set()

    def _tell(self, topics: frozenset[str]) -> None:
        try:
            self._on_change(topics)
        except Exception:  # a bug of the worker's, not a reason to drop the connection
            logger.exception("a change could not be taken into account")

    async def _keep_listening(self) -> None:
        backoff = MIN_BACKOFF_SECONDS
        while True:
            reason = "closed"
            try:
                async for payload in self._source.messages(self._connected):
                    self._tell(parse_payload(payload))
            except asyncio.CancelledError:
                raise
            except Exception as error:  # whatever it was, the worker polls on and retries
                reason = type(error).__name__
            if self.connected:
                backoff = MIN_BACKOFF_SECONDS  # it had worked: retry soon
                self.connected = False
                self._tell(frozenset())  # the worker's poll goes back to its own pace now
            if self._lost_at is None:
                self._lost_at = time.monotonic()
                logger.warning(
                    "change push (%s) unavailable (%s): polling instead, reconnecting",
                    self._source.name,
                    reason,
                )
            await asyncio.sleep(backoff * random.uniform(0.8, 1.2))  # noqa: S311 (jitter)
            backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)


def change_source(settings: Settings) -> Source | None:
    """Where this worker hears changes: Redis if configured, else PostgreSQL, else nowhere
    (SQLite, or `change_push=off`: the worker polls)."""
    if settings.change_push == "off":
        return None
    if settings.redis_url is not None:
        return RedisSource(
            settings.redis_url,
            key_prefix=settings.redis_key_prefix,
            timeout=settings.redis_timeout_seconds,
        )
    url = settings.listen_database_url or settings.database_url
    return PostgresSource(url) if url.startswith("postgresql") else None
