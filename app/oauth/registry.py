"""Cached, read-only views of clients for the hot path of the token endpoint.

A worker keeps each client it has seen for `client_cache_seconds` (one second by default, in an
`ExpiringCache`), so issuing a token costs no database round trip while a disabled client or a
rotated secret is still noticed within that bound on every worker; with a push (app/runtime/
change_feed.py) a write to a client is announced and every worker forgets its copies at once.

While the database is away, a client is served from the cache only until its entry expires:
serving it longer would break that bound (a client disabled just before the outage would get
tokens its revocation does not cover), so its token requests then get a 503.
"""

import re
import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from app.oauth.clients import OAuthClient
from app.runtime.cache import ExpiringCache
from app.runtime.db import Database, is_unavailable

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

    def changed(self) -> None:
        """A client was written somewhere (announced): forget every copy, so the next request
        for it reads the change instead of waiting for the cache to expire."""
        self._clients.clear()
        self._origins.clear()

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
