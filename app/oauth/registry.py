"""Cached, read-only views of clients for the hot path of the token endpoint.

A worker keeps each client it has seen for `client_cache_seconds` (one second by default), so
issuing a token costs no database round trip while a disabled client or a rotated secret is
still noticed within that bound on every worker.
"""

import re
import time
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from app.db import Database
from app.oauth.clients import OAuthClient

# Client ids we issue are URL-safe base64; anything else cannot name a client, so it is never
# sent to the database (PostgreSQL refuses NUL bytes in text, for one).
CLIENT_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
MAX_CACHED_CLIENTS = 10_000
ORIGINS_CACHE_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class ClientRecord:
    """What the token endpoint needs to know about a client, frozen at load time."""

    client_id: str
    store_id: uuid.UUID
    is_public: bool
    enabled: bool
    grant_types: frozenset[str]
    scopes: frozenset[str]
    allowed_origins: frozenset[str]
    token_ttl: int | None
    secret_hashes: tuple[tuple[str, datetime | None], ...]

    def valid_secret_hashes(self, now: datetime) -> list[str]:
        return [
            digest for digest, expires in self.secret_hashes if expires is None or expires > now
        ]


def _record(client: OAuthClient) -> ClientRecord:
    return ClientRecord(
        client_id=client.id,
        store_id=client.store_id,
        is_public=client.is_public,
        enabled=client.enabled,
        grant_types=frozenset(client.grant_types),
        scopes=frozenset(client.scopes),
        allowed_origins=frozenset(client.allowed_origins),
        token_ttl=client.token_ttl,
        secret_hashes=tuple((s.secret_hash, s.expires_at) for s in client.secrets),
    )


class ClientRegistry:
    """Looks clients up by id, through a small time-bounded cache."""

    def __init__(self, database: Database, *, cache_seconds: float) -> None:
        self._database = database
        self._cache_seconds = cache_seconds
        self._clients: dict[str, tuple[float, ClientRecord | None]] = {}
        self._origins: tuple[float, frozenset[str]] = (0.0, frozenset())

    async def find(self, client_id: str) -> ClientRecord | None:
        """The client, or None if no client has this id."""
        if not CLIENT_ID_PATTERN.fullmatch(client_id):
            return None
        now = time.monotonic()
        cached = self._clients.get(client_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        record = await self._load(client_id)
        if len(self._clients) >= MAX_CACHED_CLIENTS:
            self._clients.pop(next(iter(self._clients)))  # the oldest entry
        self._clients[client_id] = (now + self._cache_seconds, record)
        return record

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
        expires, origins = self._origins
        if expires <= time.monotonic():
            origins = await self._load_origins()
            self._origins = (time.monotonic() + ORIGINS_CACHE_SECONDS, origins)
        return origin in origins

    async def _load_origins(self) -> frozenset[str]:
        query = select(OAuthClient.allowed_origins).where(OAuthClient.enabled.is_(True))
        async with self._database.sessions() as session:
            rows = await session.scalars(query)
            return frozenset(origin for origins in rows for origin in origins)
