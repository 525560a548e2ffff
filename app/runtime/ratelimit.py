"""Request rate limits, counted by the `limits` library in each worker's memory or in Redis.

Counters are fixed windows, as `limits` counts them: one atomic increment per hit, the window
starting at the first hit, so refused requests never extend it. Without `KEYHOUSE_REDIS_URL`
they live in the worker's memory and each worker counts alone; with it they live in Redis and
hold across workers and replicas. The login lockout (`app/customers/lockout.py`) keeps its
counts in the same storage.

Clients are counted by address: the peer of the connection (which Uvicorn takes from
`X-Forwarded-For` when the peer is a proxy listed in `FORWARDED_ALLOW_IPS`). An IPv6 client is
counted by its /64, which one subscriber usually holds whole, so it cannot dodge a limit by
changing the low bits of its address.

When Redis cannot be reached, request limits fail open (a warning is logged and requests are
served uncounted: refusing every token would turn a Redis outage into a full outage), while
logins fail closed with a 503 (an uncounted login is an unlimited password guess). After a
failure Redis is left alone for `RETRY_SECONDS`; then one request at a time asks it again (the
probe), while the others go on as if it were still away. A refused connection fails at once;
a hung Redis (it accepts, never answers) costs the requests in flight when it hung one socket
timeout (`KEYHOUSE_REDIS_TIMEOUT_SECONDS`, never retried), and after that one probe per worker
per retry interval waits that long, no other request.
"""

import functools
import ipaddress
import logging
import math
import time
from typing import TYPE_CHECKING, Any

from limits import parse
from limits.aio.storage import MemoryStorage as LimitsMemoryStorage
from limits.aio.storage import RedisStorage, Storage
from limits.errors import StorageError
from starlette.types import Scope

from app.http.errors import KeyhouseError, ServiceUnavailableError
from app.runtime.settings import Settings

if TYPE_CHECKING:
    from redis.asyncio import ConnectionPool

logger = logging.getLogger("keyhouse.ratelimit")

UNKNOWN_ADDRESS = "unknown"  # a connection without a peer address (a Unix socket)
RETRY_SECONDS = 2.0  # how long an unreachable Redis is left alone before the next try
SWEEP_SECONDS = 5.0


class TooManyRequestsError(KeyhouseError):
    """429 with `Retry-After` (RFC 6585 §4), in the JSON:API errors body."""

    status_code = 429
    title = "Too Many Requests"
    default_detail = "Too many requests; try again after the time in the Retry-After header."

    def __init__(self, detail: str | None = None, *, retry_after: int) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after)})


class CountersUnavailableError(ServiceUnavailableError):
    """503: the lockout cannot count attempts, so it refuses them rather than allow them."""

    default_detail = "Logins are unavailable for a moment; try again shortly."

    def __init__(self) -> None:
        super().__init__(retry_after=math.ceil(RETRY_SECONDS))


def client_host(scope: Scope) -> str:
    """The peer address of the request, as the ASGI server reports it."""
    client = scope.get("client")
    return str(client[0]) if client else UNKNOWN_ADDRESS


def address_key(host: str) -> str:
    """What an address is counted as: itself for IPv4, its /64 for IPv6."""
    return _ipv6_key(host) if ":" in host else host


@functools.lru_cache(maxsize=4096)
def _ipv6_key(host: str) -> str:
    try:
        address = ipaddress.IPv6Address(host)
    except ValueError:
        return host
    if address.ipv4_mapped is not None:  # ::ffff:192.0.2.1 is the IPv4 client 192.0.2.1
        return str(address.ipv4_mapped)
    return f"{ipaddress.IPv6Network((address, 64), strict=False).network_address}/64"


def retry_after(expires_at: float) -> int:
    """Whole seconds until `expires_at` (epoch), at least 1 (RFC 9110 §10.2.3)."""
    return max(1, math.ceil(expires_at - time.time()))


class MemoryStorage(LimitsMemoryStorage):
    """`limits`' in-memory storage, sweeping out expired counters at most every few seconds.

    Upstream (5.8) starts a sweep over every counter after each hit once the previous sweep is
    done: measured here, 2.4 ms per hit with 20,000 live counters. A counter is checked for
    expiry whenever it is read, so the sweep only frees memory and can wait.
    """

    def __init__(self) -> None:
        super().__init__()
        self._next_sweep = 0.0

    async def _MemoryStorage__schedule_expiry(self) -> None:  # the upstream private hook
        now = time.monotonic()
        if now >= self._next_sweep:
            self._next_sweep = now + SWEEP_SECONDS
            # mypy mangles the name as Python does inside the upstream class, not here.
            await super()._MemoryStorage__schedule_expiry()  # type: ignore[misc]


async def _incr(self: MemoryStorage, key: str, expiry: float, amount: int = 1) -> int:
    """Upstream's fixed-window increment with the same effect, in one synchronous step.

    Upstream awaits a read, the sweep scheduler and a per-key `asyncio.Lock` on every hit:
    about 2.5 µs, twice per token request. Nothing here awaits, so on the event loop the
    read, the reset of an expired window and the increment are atomic without a lock.
    """
    now = time.time()
    counts = self.storage
    if self.expirations.get(key, 0) <= now:  # no window yet, or it has ended: start afresh
        counts.pop(key, None)
        self.expirations[key] = now + expiry
    count = counts[key] + amount
    counts[key] = count
    if time.monotonic() >= self._next_sweep:
        await self._MemoryStorage__schedule_expiry()
    return count


# `limits` wraps these methods of every storage class, subclasses too, to translate its errors;
# the upstream ones are wrapped already, and a second wrapper cost 0.5 µs per hit. Memory
# raises no storage errors, so our own increment goes unwrapped too.
for _method in ("get", "get_expiry", "check", "reset", "clear"):
    setattr(MemoryStorage, _method, getattr(LimitsMemoryStorage, _method))
setattr(MemoryStorage, "incr", _incr)  # noqa: B010 (as above: assigned after the class, unwrapped)


class Counters:
    """The storage that counters live in, and whether it can be reached right now."""

    def __init__(
        self, storage: Storage, pool: "ConnectionPool | None" = None, timeout: float = 0.5
    ) -> None:
        self.storage = storage
        self._pool = pool
        # The longest a probe may be out before another request may probe in its place: one
        # timeout to connect and one to answer, and a margin (a probe whose request was
        # cancelled never reports).
        self.probe_seconds = 2 * timeout + 0.5
        self.down_until = 0.0  # monotonic time; 0 while the storage answers

    @classmethod
    def from_settings(cls, settings: Settings) -> "Counters":
        if settings.redis_url is None:
            return cls(MemoryStorage())
        # Imported here: a worker without Redis holds none of redis-py (about 4 MiB).
        from redis.asyncio import ConnectionPool
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff
        from redis.exceptions import ConnectionError as RedisConnectionError

        pool = ConnectionPool.from_url(
            settings.redis_url,
            socket_timeout=settings.redis_timeout_seconds,
            socket_connect_timeout=settings.redis_timeout_seconds,
            # One immediate retry for a dropped connection (a pooled one Redis closed), none
            # after a timeout: a Redis that did not answer in time will not answer the retry.
            retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
        )
        options: dict[str, Any] = {"connection_pool": pool}
        storage = RedisStorage(
            f"async+{settings.redis_url}",
            implementation="redispy",  # an atomic Lua increment; faster here than coredis
            key_prefix=settings.redis_key_prefix,
            wrap_exceptions=True,
            **options,
        )
        return cls(storage, pool, settings.redis_timeout_seconds)

    def may_ask(self) -> bool:
        """Whether this caller may use the storage now: every caller while it answers; after a
        failure, once `RETRY_SECONDS` have passed, one caller at a time (the probe), whose
        outcome the caller reports with `answered` or `failed`. The others are told no, and
        fail open or closed at once."""
        if not self.down_until:
            return True
        now = time.monotonic()
        if self.down_until > now:
            return False
        self.down_until = now + self.probe_seconds  # while the probe is out, the others keep away
        return True

    def answered(self) -> None:
        """Notes that the storage answered: after an outage, everyone may use it again."""
        if self.down_until:
            self.down_until = 0.0
            logger.info("rate-limit counters reachable again: limits enforced")

    def failed(self, error: StorageError) -> None:
        """Notes a storage error: Redis is left alone for `RETRY_SECONDS`."""
        if not self.down_until:
            logger.warning(
                "rate-limit counters unreachable (%s): request limits not enforced and "
                "logins refused, retried every %.0f s",
                type(error.storage_error).__name__,
                RETRY_SECONDS,
            )
        self.down_until = time.monotonic() + RETRY_SECONDS

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()


class RateLimiter:
    """One request limit (`limits` notation, "600/minute"), counted per identifier.

    A fixed window, as `limits`' `FixedWindowRateLimiter` counts it, but calling the storage
    directly with a key built once per limit: the strategy rebuilds and escapes its key on
    every hit, which measured as much as the increment itself (this runs on every token
    request)."""

    def __init__(self, counters: Counters, name: str, limit: str) -> None:
        item = parse(limit)
        self._counters = counters
        self._prefix = f"{name}/"  # keeps the counters of different limits apart
        self._amount = item.amount
        self._expiry = item.get_expiry()
        self._incr = counters.storage.incr

    async def hit(self, identifier: str) -> int:
        """Counts a request: 0 if it may go on, else the seconds to wait (fails open)."""
        counters = self._counters
        if counters.down_until and not counters.may_ask():
            return 0
        key = self._prefix + identifier
        try:
            count = await self._incr(key, self._expiry)
            if counters.down_until:  # the probe, answered: everyone may ask again
                counters.answered()
            if count <= self._amount:
                return 0
            return retry_after(await counters.storage.get_expiry(key))
        except StorageError as error:
            counters.failed(error)
            return 0


class RateLimits:
    """The request limits of the token and customer-token endpoints."""

    def __init__(self, counters: Counters, settings: Settings) -> None:
        self.token_per_address = RateLimiter(
            counters, "token-address", settings.token_rate_limit_per_address
        )
        self.token_per_client = RateLimiter(
            counters, "token-client", settings.token_rate_limit_per_client
        )
        self.login_per_address = RateLimiter(
            counters, "login-address", settings.login_rate_limit_per_address
        )
        self.login_per_client = RateLimiter(
            counters, "login-client", settings.login_rate_limit_per_client
        )
