"""Announcing writes that every worker copies: a nudge, pushed when such a row is written.

Workers keep in memory what the busy paths read (revocations, signing keys, clients). Each of
those modules names its tables here (`announce`), and any session that writes one of them says
so to every worker: on PostgreSQL with `NOTIFY` in the writing transaction (so it is delivered
only if the write commits, and PostgreSQL folds repeats of one transaction into one), and, when
Redis is configured (`RedisAnnouncer`), with a Redis `PUBLISH` once the transaction committed.
The message is only the topic ("revocation", "keys", "clients"): a worker that hears it runs its
usual incremental read at once (app/runtime/change_feed.py), so the tables stay the one source
of truth and a lost message costs no more than the fallback poll.

Bulk statements (`delete(...)` of expired revocations) are not announced: they change nothing a
worker must learn quickly.
"""

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session, UOWTransaction

from app.runtime.settings import Settings

logger = logging.getLogger("keyhouse.changes")

# PostgreSQL's channels are per database, so one name serves every deployment on its own
# database; Redis channels are global across its databases, so theirs carry the key prefix.
POSTGRES_CHANNEL = "keyhouse_changes"
REDIS_CHANNEL_SUFFIX = ":changes"
ANNOUNCER_KEY = "keyhouse.announcer"  # in `Session.info`
PENDING_KEY = "keyhouse.announce"  # topics written in the open transaction

_topics: dict[type, str] = {}


def announce(model: type, topic: str) -> None:
    """Writes of `model`'s rows (through the ORM) are announced under `topic`."""
    _topics[model] = topic


def redis_channel(key_prefix: str) -> str:
    return key_prefix + REDIS_CHANNEL_SUFFIX


def topics_of(objects: Iterable[object]) -> set[str]:
    return {topic for item in objects if (topic := _topics.get(type(item))) is not None}


def parse_payload(payload: str | bytes) -> frozenset[str]:
    """The topics a message names (comma-separated)."""
    if isinstance(payload, bytes):
        payload = payload.decode(errors="replace")
    return frozenset(topic for topic in payload.split(",") if topic)


class RedisAnnouncer:
    """Publishes topics on Redis after commit, from a task of its own: the request that wrote
    never waits for Redis, and a Redis that is away costs a warning, not the write."""

    def __init__(self, url: str, *, key_prefix: str, timeout: float) -> None:
        # Imported here: a worker without Redis holds none of redis-py.
        from redis.asyncio import Redis

        self._redis = Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        self.channel = redis_channel(key_prefix)
        self._tasks: set[asyncio.Task[None]] = set()
        self._failing = False

    def committed(self, topics: set[str]) -> None:
        task = asyncio.get_running_loop().create_task(self.publish(topics))
        self._tasks.add(task)  # held, or the loop could collect it half-way
        task.add_done_callback(self._tasks.discard)

    async def publish(self, topics: Iterable[str]) -> None:
        try:
            await self._redis.publish(self.channel, ",".join(sorted(topics)))
        except Exception as error:  # the fallback poll carries the change instead
            if not self._failing:
                logger.warning("could not publish a change on Redis (%s)", type(error).__name__)
            self._failing = True
            return
        if self._failing:
            logger.info("publishing changes on Redis again")
        self._failing = False

    async def close(self) -> None:
        """Waits for publications under way (a command exits right after its write)."""
        if self._tasks:
            await asyncio.wait(set(self._tasks))
        await self._redis.aclose()


def redis_announcer(
    settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> RedisAnnouncer | None:
    """With Redis configured, sessions of `sessions` publish what they commit there."""
    if settings.redis_url is None:
        return None
    announcer = RedisAnnouncer(
        settings.redis_url,
        key_prefix=settings.redis_key_prefix,
        timeout=settings.redis_timeout_seconds,
    )
    sessions.configure(info={ANNOUNCER_KEY: announcer})
    return announcer


@event.listens_for(Session, "after_flush")
def _flushed(session: Session, _flush: UOWTransaction) -> None:
    topics = topics_of([*session.new, *session.dirty, *session.deleted])
    if not topics:
        return
    pending: set[str] = session.info.setdefault(PENDING_KEY, set())
    fresh = topics - pending
    pending |= topics
    if fresh and session.get_bind().dialect.name == "postgresql":
        payload = ",".join(sorted(fresh))
        session.connection().execute(
            text("SELECT pg_notify(:channel, :payload)"),
            {"channel": POSTGRES_CHANNEL, "payload": payload},
        )


@event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    topics: set[str] | None = session.info.pop(PENDING_KEY, None)
    announcer: Any = session.info.get(ANNOUNCER_KEY)
    if topics and announcer is not None:
        announcer.committed(topics)


@event.listens_for(Session, "after_soft_rollback")
def _rolled_back(session: Session, _previous: Any) -> None:
    session.info.pop(PENDING_KEY, None)
