"""Cached, read-only views of clients for the hot path of the token endpoint.

A worker keeps each client it has seen for `client_cache_seconds` (one second by default), so
issuing a token costs no database round trip while a disabled client or a rotated secret is
still noticed within that bound on every worker. When an entry expires, one request reloads it
and the others in flight wait for that one load instead of each querying the database.

While the database is away, a client is served from the cache only until its entry expires:
serving it longer would break that bound (a client disabled just before the outage would get
tokens its revocation does not cover), so its token requests then get a 503.
"""

import asyncio
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from app.db import Database, is_unavailable
from app.oauth.clients import OAuthClient

# Client ids we issue are URL-safe base64; anything else cannot name a client, so it is never
# sent to the database (PostgreSQL refuses NUL bytes in text, for one).
CLIENT_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
MAX_CACHED_CLIENTS = 10_000
ORIGINS_CACHE_SECONDS = 5.0

V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class ClientRecord:
    """What the token endpoint needs to know about a client, frozen at load time."""

    client_id: str
    store_id: uuid.UUID
    store_claim: str  # `store_id` as tokens carry it, formatted once rather than per token
    is_public: bool
    enabled: bool
    grant_types: frozenset[str]
    scopes: frozenset[str]
    allowed_origins: frozenset[str]
    token_ttl: int | None
    # (keyed hash, expiry as epoch seconds or None for never)
    secret_hashes: tuple[tuple[str, float | None], ...]
    # Where a sign-in with a login provider may send the shopper back (app/customers/oidc).
    redirect_uris: frozenset[str] = frozenset()

    def valid_secret_hashes(self, now: float) -> list[str]:
        return [
            digest for digest, expires in self.secret_hashes if expires is None or expires > now
        ]


def _record(client: OAuthClient) -> ClientRecord:
    return ClientRecord(
        client_id=client.id,
        store_id=client.store_id,
        store_claim=str(client.store_id),
        is_public=client.is_public,
        enabled=client.enabled,
        grant_types=frozenset(client.grant_types),
        scopes=frozenset(client.scopes),
        allowed_origins=frozenset(client.allowed_origins),
        redirect_uris=frozenset(client.redirect_uris),
        token_ttl=client.token_ttl,
        secret_hashes=tuple(
            (s.secret_hash, s.expires_at.timestamp() if s.expires_at else None)
            for s in client.secrets
        ),
    )


class ExpiringCache(Generic[V]):
    """A bounded map whose entries live `seconds`; concurrent misses share one load."""

    def __init__(self, seconds: float, max_entries: int) -> None:
        self._seconds = seconds
        self._max_entries = max_entries
        self._entries: dict[str, tuple[float, V]] = {}
        self._loading: dict[str, asyncio.Future[V]] = {}

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
            task = asyncio.ensure_future(self._load_and_store(key, load))
            self._loading[key] = task
            task.add_done_callback(lambda done: self._finish(key, done))
        return await asyncio.shield(task)

    async def _load_and_store(self, key: str, load: Callable[[], Awaitable[V]]) -> V:
        value = await load()
        self._store(key, value)
        return value

    def _finish(self, key: str, task: "asyncio.Future[V]") -> None:
        del self._loading[key]
        if not task.cancelled():
            task.exception()  # retrieved here; the requests awaiting it re-raise it

    def _store(self, key: str, value: V) -> None:
        self._entries.pop(key, None)
        if len(self._entries) >= self._max_entries:
            self._entries.pop(next(iter(self._entries)))  # the oldest entry
        self._entries[key] = (time.monotonic() + self._seconds, value)


class ClientRegistry:
    """Looks clients up by id, through a small time-bounded cache."""

    def __init__(self, database: Database, *, cache_seconds: float) -> None:
        self._database = database
        self._clients: ExpiringCache[ClientRecord | None] = ExpiringCache(
            cache_seconds, MAX_CACHED_CLIENTS
        )
        self._origins: ExpiringCache[frozenset[str]] = ExpiringCache(ORIGINS_CACHE_SECONDS, 1)
        self._last_origins: frozenset[str] | None = None

    async def find(self, client_id: str) -> ClientRecord | None:
        """The client, or None if no client has this id."""
        cached = self._clients.fresh(client_id)
        if cached is not None:
            return cached[0]
        if not CLIENT_ID_PATTERN.fullmatch(client_id):
            return None
        return await self._clients.get(client_id, lambda: self._load(client_id))

    async def _load(self, client_id: str) -> ClientRecord | None:
        query = (
            select(OAuthClient)
            .where(OAuthClient.id == client_id)
            .options(selectinload(OAuthClient.secrets))
        )
        async with self._database.sessions() as session:
            client = (await session.scalars(query)).first()
            return _record(client) if client is not None else None

    async def is_registered_origin(self, origin: str) -> bool:
        """Whether any enabled client lists this browser origin (for CORS preflights)."""
        return origin in await self._origins.get("", self._load_origins)

    async def _load_origins(self) -> frozenset[str]:
        query = select(OAuthClient.allowed_origins).where(OAuthClient.enabled.is_(True))
        try:
            async with self._database.sessions() as session:
                rows = await session.scalars(query)
                origins = frozenset(origin for origins in rows for origin in origins)
        except Exception as error:
            # Origins only open preflights and let browsers read error responses; each token
            # request is still held to its own client's origins. So while the database is
            # away the last list serves on (cached again for ORIGINS_CACHE_SECONDS).
            if self._last_origins is None or not is_unavailable(error):
                raise
            return self._last_origins
        self._last_origins = origins
        return origins
