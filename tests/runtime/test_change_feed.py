"""The change feed in one process: what it hears, how it reconnects, what it catches up on.

On PostgreSQL (LISTEN on a connection of its own) and on a private Redis (pub/sub), so that
killing connections or stopping the server touches nobody else's. The listener's connections are
killed over and over, and each time exactly one comes back, with no task left behind; a revocation
written while the listener is away is refused once it is back, though no message told of it; a
private PostgreSQL restarted under the listener has it listening again, unasked.

A peer that vanishes without a word cannot be staged on loopback (the kernel answers for a
stopped process, and dropping packets on `lo` would touch every other server of the machine):
what is checked is that the listener's socket, and PostgreSQL's end of it, carry the keepalive
settings that make the kernel close such a connection (app/runtime/keepalive.py).
"""

import asyncio
import logging
import os
import re
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import pytest
import redis
from fault_services import PrivatePostgres, PrivateRedis
from sqlalchemy import text
from sqlalchemy.engine import make_url

from app.oauth.revocation import RevocationList, revoke_token
from app.runtime import keepalive
from app.runtime.change_feed import (
    APPLICATION_NAME,
    ChangeFeed,
    PostgresSource,
    RedisSource,
    Source,
    change_source,
)
from app.runtime.changes import POSTGRES_CHANNEL, RedisAnnouncer, parse_payload, redis_announcer
from app.runtime.db import Database
from app.runtime.settings import Settings

from ..conftest import POSTGRES_URL

EVERYTHING = frozenset({"revocation", "keys", "clients", "catalogue"})
RECONNECTS = 5
WAIT_SECONDS = 5.0


@pytest.fixture(params=["postgresql", "redis"])
def backend(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "postgresql" and not POSTGRES_URL:
        pytest.skip("LISTEN needs PostgreSQL")
    yield request.param


class Heard:
    """What a feed called back with, in order."""

    def __init__(self) -> None:
        self.calls: list[frozenset[str]] = []

    def __call__(self, topics: frozenset[str]) -> None:
        self.calls.append(topics)


async def eventually(condition: Callable[[], bool], what: str) -> float:
    """Waits until `condition()` holds; how long it took."""
    start = time.monotonic()
    while not condition():
        assert time.monotonic() - start < WAIT_SECONDS, f"not within {WAIT_SECONDS} s: {what}"
        await asyncio.sleep(0.01)
    return time.monotonic() - start


@asynccontextmanager
async def feed_of(
    source: Source, on_change: Callable[[frozenset[str]], None]
) -> AsyncIterator[ChangeFeed]:
    feed = ChangeFeed(source, on_change, everything=EVERYTHING)
    await feed.start()
    try:
        await eventually(lambda: feed.connected, "the feed connects")
        yield feed
    finally:
        await feed.stop()


def source_for(backend: str, settings: Settings, private: PrivateRedis) -> Source:
    if backend == "postgresql":
        return PostgresSource(settings.database_url)
    return RedisSource(private.url, key_prefix=settings.redis_key_prefix, timeout=0.5)


def announcer_for(
    backend: str, settings: Settings, database: Database, private: PrivateRedis
) -> RedisAnnouncer | None:
    if backend == "postgresql":
        return None  # NOTIFY goes with the transaction, from any session
    configured = settings.model_copy(update={"redis_url": private.url})
    return redis_announcer(configured, database.sessions)


async def for_each_listener(database: Database, expression: str) -> list[Any]:
    """`expression` (SQL) over each of this database's listener sessions."""
    where = "WHERE application_name = :name AND datname = current_database()"
    async with database.engine.connect() as connection:
        query = text(f"SELECT {expression} FROM pg_stat_activity {where}")  # noqa: S608 (ours)
        return list((await connection.execute(query, {"name": APPLICATION_NAME})).scalars())


async def listeners(backend: str, database: Database, private: PrivateRedis) -> int:
    if backend == "postgresql":
        return len(await for_each_listener(database, "pid"))
    with redis.Redis.from_url(private.url) as connection:
        return len(connection.client_list(_type="pubsub"))


async def kill_listeners(backend: str, database: Database, private: PrivateRedis) -> None:
    if backend == "postgresql":
        await for_each_listener(database, "pg_terminate_backend(pid)")
        return
    with redis.Redis.from_url(private.url) as connection:
        connection.client_kill_filter(_type="pubsub")


async def revoke_one(database: Database) -> str:
    token_id = uuid.uuid4().hex
    async with database.sessions() as session:
        revoke_token(session, token_id=token_id, expires_at=int(time.time()) + 3600)
        await session.commit()
    return token_id


@pytest.mark.timing
async def test_a_write_is_heard_as_its_topic(
    backend: str, settings: Settings, database: Database, private_redis: PrivateRedis
) -> None:
    heard = Heard()
    announcer = announcer_for(backend, settings, database, private_redis)
    async with feed_of(source_for(backend, settings, private_redis), heard):
        assert heard.calls == [EVERYTHING]  # connecting is catching up
        await revoke_one(database)
        took = await eventually(lambda: len(heard.calls) == 2, "the revocation is heard")
    if announcer is not None:
        await announcer.close()
    assert heard.calls[1] == {"revocation"}
    assert took < 0.5


@pytest.mark.timing
async def test_reconnects_leave_one_connection_and_no_task_behind(
    backend: str, settings: Settings, database: Database, private_redis: PrivateRedis
) -> None:
    heard = Heard()
    async with feed_of(source_for(backend, settings, private_redis), heard) as feed:
        tasks = len(asyncio.all_tasks())
        for round_ in range(RECONNECTS):
            await kill_listeners(backend, database, private_redis)
            expected = round_ + 2
            await eventually(lambda: feed.connections == expected, "the feed reconnects")  # noqa: B023
            assert await listeners(backend, database, private_redis) == 1
            assert len(asyncio.all_tasks()) == tasks
    # Each reconnection caught up with everything, after telling the worker it was away.
    assert heard.calls.count(EVERYTHING) == RECONNECTS + 1
    assert heard.calls.count(frozenset()) == RECONNECTS
    # The server drops the connection once it has read the close: a moment later, under load.
    start = time.monotonic()
    while await listeners(backend, database, private_redis) != 0:
        assert time.monotonic() - start < WAIT_SECONDS, "the listener's connection stays open"
        await asyncio.sleep(0.01)


@pytest.mark.timing
async def test_a_revocation_missed_while_away_is_refused_once_back(
    backend: str, settings: Settings, database: Database, private_redis: PrivateRedis
) -> None:
    # No poll would find it within the test: only the catch-up on reconnecting can.
    revocations = RevocationList(database, poll_seconds=60)
    await revocations.start()
    feed = ChangeFeed(
        source_for(backend, settings, private_redis),
        # Not on the connection's loss (no topic), as a worker does to re-pace its poll: a read
        # then could find the revocation below, and only the catch-up may.
        lambda topics: revocations.nudge() if topics else None,
        everything=EVERYTHING,
    )
    revocations.pushed_by(lambda: feed.connected, poll_seconds=60)
    announcer = announcer_for(backend, settings, database, private_redis)
    await feed.start()
    try:
        await eventually(lambda: feed.connected, "the feed connects")
        if backend == "redis":
            private_redis.stop()  # the announcement of the revocation below is lost
            await eventually(lambda: not feed.connected, "the feed notices")
            token_id = await revoke_one(database)
            await asyncio.sleep(0.3)
            assert not is_revoked(revocations, token_id)  # nobody told this worker
            private_redis.start()
        else:
            # Written while the listener is gone (it waits at least 80 ms to reconnect).
            await kill_listeners(backend, database, private_redis)
            token_id = await revoke_one(database)
        await eventually(lambda: feed.connections == 2, "the feed reconnects")
        await eventually(lambda: is_revoked(revocations, token_id), "the catch-up reads it")
    finally:
        await feed.stop()
        await revocations.stop()
        if announcer is not None:
            await announcer.close()


def is_revoked(revocations: RevocationList, token_id: str) -> bool:
    return revocations.is_revoked(token_id, "client", "someone", int(time.time()))


@pytest.mark.timing
async def test_a_frozen_redis_is_noticed_and_left_for_the_poll(
    settings: Settings, private_redis: PrivateRedis, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="keyhouse.changes")
    heard = Heard()
    source = RedisSource(private_redis.url, key_prefix=settings.redis_key_prefix, timeout=0.3)
    async with feed_of(source, heard) as feed:
        private_redis.freeze()
        noticed = await eventually(lambda: not feed.connected, "the feed notices")
        private_redis.thaw()
        await eventually(lambda: feed.connected, "the feed is back")
    assert noticed < 2.0  # one heartbeat and one timeout
    messages = [record.getMessage() for record in caplog.records]
    assert sum("unavailable" in message for message in messages) == 1
    assert sum("back after" in message for message in messages) == 1


async def listener_port(backend: str, database: Database, private: PrivateRedis) -> int:
    """The listener's own port, as its server sees the connection."""
    if backend == "postgresql":
        [port] = await for_each_listener(database, "client_port")
        return int(port)
    with redis.Redis.from_url(private.url) as connection:
        [client] = connection.client_list(_type="pubsub")
        return int(client["addr"].rsplit(":", 1)[1])


def own_socket(port: int) -> socket.socket:
    """This process's TCP socket bound to `port` (a duplicate of its descriptor)."""
    for name in os.listdir("/proc/self/fd"):
        try:
            duplicate = socket.socket(fileno=os.dup(int(name)))
        except OSError:  # not a socket, or gone meanwhile
            continue
        if duplicate.family == socket.AF_INET and duplicate.getsockname()[1] == port:
            return duplicate
        duplicate.close()
    raise AssertionError(f"no socket of this process on port {port}")


def server_keepalive_seconds(server_port: int, client_port: int) -> float:
    """When the server's end of a loopback connection probes next (`ss`'s keepalive timer; while
    data awaits its acknowledgement, the timer shown is the retransmission's: asked again)."""
    ss = shutil.which("ss")
    if ss is None:
        pytest.skip("no `ss` to read the server's end of the connection")
    filter_ = f"( sport = :{server_port} and dport = :{client_port} )"
    for _ in range(50):
        shown = subprocess.run(
            [ss, "-tnoH", "state", "established", filter_],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
        timer = re.search(r"timer:\(keepalive,([\d.]+)(ms|sec|min)", shown)
        if timer is not None:
            scale = {"ms": 0.001, "sec": 1.0, "min": 60.0}[timer.group(2)]
            return float(timer.group(1)) * scale
        time.sleep(0.02)
    raise AssertionError(f"no keepalive timer on the server's end: {shown}")


async def test_a_silent_peer_is_probed_on_both_ends(
    backend: str, settings: Settings, database: Database, private_redis: PrivateRedis
) -> None:
    async with feed_of(source_for(backend, settings, private_redis), Heard()):
        port = await listener_port(backend, database, private_redis)
        with own_socket(port) as listening:
            assert listening.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
            for option, value in keepalive.TCP_OPTIONS.items():
                assert listening.getsockopt(socket.IPPROTO_TCP, option) == value
        if backend == "postgresql":
            # The server probes too, after 10 s rather than its default two hours.
            server_port = make_url(settings.database_url).port or 5432
            assert server_keepalive_seconds(server_port, port) <= keepalive.IDLE_SECONDS
    assert keepalive.DEAD_PEER_SECONDS == 25  # the bound docs/operations.md states


async def notify(postgres: PrivatePostgres, topic: str) -> None:
    connection = await asyncpg.connect(
        host="127.0.0.1", port=postgres.port, user="postgres", database="postgres"
    )
    try:
        await connection.execute("SELECT pg_notify($1, $2)", POSTGRES_CHANNEL, topic)
    finally:
        await connection.close()


@pytest.mark.timing
@pytest.mark.skipif(not POSTGRES_URL, reason="restarts a PostgreSQL server")
async def test_the_push_resumes_after_postgresql_restarts(
    private_postgres: PrivatePostgres,
) -> None:
    heard = Heard()
    async with feed_of(PostgresSource(private_postgres.url), heard) as feed:
        await notify(private_postgres, "revocation")
        await eventually(lambda: heard.calls[-1:] == [{"revocation"}], "the first is heard")
        await asyncio.to_thread(private_postgres.stop)  # fast: every session terminated
        await eventually(lambda: not feed.connected, "the feed notices")
        await asyncio.to_thread(private_postgres.start)
        await eventually(lambda: feed.connections == 2, "the feed reconnects")
        await notify(private_postgres, "keys")
        took = await eventually(lambda: heard.calls[-1:] == [{"keys"}], "the next is heard")
    assert heard.calls == [EVERYTHING, {"revocation"}, frozenset(), EVERYTHING, {"keys"}]
    assert took < 0.5


def test_payloads_name_topics() -> None:
    assert parse_payload(b"keys,revocation") == {"keys", "revocation"}
    assert parse_payload("") == frozenset()


def test_the_push_goes_over_redis_if_set_else_postgresql_and_never_on_sqlite() -> None:
    postgres = "postgresql+asyncpg://keyhouse@db.internal/keyhouse"
    sqlite = "sqlite+aiosqlite:///keyhouse.db"
    redis_url = "redis://cache.internal:6379/0"
    assert isinstance(change_source(Settings(database_url=postgres)), PostgresSource)
    configured = Settings(database_url=sqlite, redis_url=redis_url)
    assert isinstance(change_source(configured), RedisSource)
    assert change_source(Settings(database_url=sqlite)) is None
    assert change_source(Settings(database_url=postgres, change_push="off")) is None
    # Past a transaction-mode pooler, LISTEN goes to the server itself.
    direct = Settings(database_url=sqlite, listen_database_url=postgres)
    assert isinstance(change_source(direct), PostgresSource)
    with pytest.raises(ValueError, match="postgresql"):
        Settings(listen_database_url="mysql://db/keyhouse")
