"""Request rate limits (app/runtime/ratelimit.py): the token endpoint's 429 `slow_down` per
address and per client (CONTRACT §1), counted in memory and in Redis."""

import asyncio
import logging
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fault_services import PrivateRedis
from limits.aio.storage import MemoryStorage as LimitsMemoryStorage
from pydantic import ValidationError

from app.oauth.clients import CreatedClient
from app.runtime import ratelimit
from app.runtime.ratelimit import MemoryStorage, address_key
from app.runtime.settings import Settings

from ..conftest import MakeClient, http_client, make_settings, serving
from ..customers.shoppers import implicit_token, log_in, new_email, sign_up

# Runs the test twice: counters in memory, then in Redis.
counted = pytest.mark.usefixtures("counter_storage")

TOKEN_URL = "/oauth/access_token"


async def client_credentials(http: httpx.AsyncClient, client: CreatedClient) -> httpx.Response:
    assert client.client_secret is not None
    form = {"grant_type": "client_credentials"}
    return await http.post(TOKEN_URL, data=form, auth=(client.client.id, client.client_secret))


async def implicit(http: httpx.AsyncClient, client: CreatedClient) -> httpx.Response:
    form = {"grant_type": "implicit", "client_id": client.client.id}
    return await http.post(TOKEN_URL, data=form)


def assert_slow_down(response: httpx.Response, window: int = 60) -> None:
    """CONTRACT §1: 429, `Retry-After`, and the RFC 6749 §5.2 + JSON:API body of every error."""
    assert response.status_code == 429, response.text
    assert 1 <= int(response.headers["retry-after"]) <= window
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"
    body = response.json()
    assert set(body) == {"error", "error_description", "errors"}
    assert body["error"] == "slow_down"
    assert body["errors"] == [
        {"status": 429, "title": "slow_down", "detail": body["error_description"]}
    ]


@pytest.mark.settings(token_rate_limit_per_address="3/minute")
@counted
async def test_token_requests_are_limited_per_address(
    app: FastAPI, http: httpx.AsyncClient, make_client: MakeClient
) -> None:
    client = await make_client(public=True)
    for _ in range(3):
        assert (await implicit(http, client)).status_code == 200
    assert_slow_down(await implicit(http, client))
    # Refused before the body is read: even a malformed request counts, and is refused.
    assert_slow_down(await http.post(TOKEN_URL, content=b"%%%"))
    async with http_client(app, "198.51.100.7") as elsewhere:
        assert (await implicit(elsewhere, client)).status_code == 200


@pytest.mark.settings(token_rate_limit_per_client="2/minute")
@counted
async def test_client_credentials_are_limited_per_client(
    app: FastAPI, http: httpx.AsyncClient, make_client: MakeClient
) -> None:
    limited, other = await make_client(name="a"), await make_client(name="b")
    async with http_client(app, "198.51.100.7") as elsewhere:
        assert (await client_credentials(http, limited)).status_code == 200
        assert (await client_credentials(elsewhere, limited)).status_code == 200
        assert_slow_down(await client_credentials(elsewhere, limited))  # from any address
        assert (await client_credentials(http, other)).status_code == 200


@pytest.mark.settings(token_rate_limit_per_client="1/minute")
@counted
async def test_a_public_client_id_is_not_limited_per_client(
    http: httpx.AsyncClient, make_client: MakeClient
) -> None:
    # Anyone may send a storefront's client id: a limit on it would let one abuser deny
    # tokens to every shopper of the store. Its requests are limited per address only.
    storefront = await make_client(public=True)
    for _ in range(3):
        assert (await implicit(http, storefront)).status_code == 200


@pytest.mark.settings(token_rate_limit_per_client="1/minute")
@counted
async def test_failed_client_authentication_is_not_counted_per_client(
    http: httpx.AsyncClient, make_client: MakeClient
) -> None:
    # Counted once the secret is proved, so guessing ids or secrets creates no counters.
    client = await make_client()
    wrong = {"grant_type": "client_credentials", "client_id": client.client.id}
    for _ in range(3):
        response = await http.post(TOKEN_URL, data={**wrong, "client_secret": "nope"})
        assert response.status_code == 401
    assert (await client_credentials(http, client)).status_code == 200


@pytest.mark.settings(token_rate_limit_per_address="2/2 seconds")
@counted
async def test_the_limit_lifts_when_the_window_passes(
    http: httpx.AsyncClient, make_client: MakeClient
) -> None:
    client = await make_client(public=True)
    for _ in range(2):
        assert (await implicit(http, client)).status_code == 200
    refused = await implicit(http, client)
    assert_slow_down(refused, window=2)
    await asyncio.sleep(int(refused.headers["retry-after"]) + 0.2)
    assert (await implicit(http, client)).status_code == 200


@pytest.mark.settings(token_rate_limit_per_address="3/minute")
@counted
async def test_counters_are_shared_by_workers_only_through_redis(
    settings: Settings, app: FastAPI, http: httpx.AsyncClient, make_client: MakeClient
) -> None:
    client = await make_client(public=True)
    for _ in range(3):
        assert (await implicit(http, client)).status_code == 200
    async with serving(settings) as other_worker, http_client(other_worker) as other:
        response = await implicit(other, client)
    if settings.redis_url:
        assert_slow_down(response)  # the other worker saw this worker's three requests
    else:
        assert response.status_code == 200  # in memory, each worker counts alone


@pytest.mark.parametrize(
    ("address", "counted_as"),
    [
        ("192.0.2.1", "192.0.2.1"),
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
        ("2001:db8:1:3::1", "2001:db8:1:3::/64"),
        ("::ffff:192.0.2.1", "192.0.2.1"),
        ("not:an address", "not:an address"),
        ("unknown", "unknown"),
    ],
)
def test_addresses_are_counted_by_ipv4_address_or_ipv6_slash_64(
    address: str, counted_as: str
) -> None:
    assert address_key(address) == counted_as


@pytest.mark.settings(token_rate_limit_per_address="2/minute")
@counted
async def test_an_ipv6_client_cannot_dodge_the_limit_within_its_slash_64(
    app: FastAPI, make_client: MakeClient
) -> None:
    client = await make_client(public=True)
    for suffix in ("1", "2"):
        async with http_client(app, f"2001:db8::{suffix}") as http:
            assert (await implicit(http, client)).status_code == 200
    async with http_client(app, "2001:db8::3") as http:
        assert_slow_down(await implicit(http, client))


async def test_the_memory_storage_sweeps_rarely_but_never_counts_an_expired_window() -> None:
    # The sweep hook is private upstream; a `limits` release that renames it must fail here.
    assert hasattr(LimitsMemoryStorage, "_MemoryStorage__schedule_expiry")
    storage = MemoryStorage()
    for _ in range(3):
        await storage.incr("k", 1)
    sweeps_before = storage.timer
    await storage.incr("other", 1)
    assert storage.timer is sweeps_before  # no new sweep right after the last one
    await asyncio.sleep(1.1)
    assert await storage.get("k") == 0  # expired on read, swept or not
    assert await storage.incr("k", 1) == 1


async def test_the_memory_increment_counts_fixed_windows_as_upstream_does() -> None:
    # Keyhouse replaces upstream's increment with a lock-free one; both must agree.
    ours, upstream = MemoryStorage(), LimitsMemoryStorage()
    for storage in (ours, upstream):
        assert [await storage.incr("k", 1) for _ in range(3)] == [1, 2, 3]
        assert await storage.incr("k", 1, amount=2) == 5
    started = time.time()
    for storage in (ours, upstream):  # later hits never extend the window
        assert started < await storage.get_expiry("k") <= started + 1
        assert await storage.get("k") == 5
    await asyncio.sleep(1.1)
    for storage in (ours, upstream):  # a new window starts with the next hit
        assert await storage.get("k") == 0
        assert await storage.incr("k", 1) == 1
        assert await storage.get_expiry("k") > started + 1


@pytest.mark.timing
async def test_with_redis_down_tokens_are_served_uncounted_and_a_warning_logged(
    database_url: str,
    tmp_path: Path,
    make_client: MakeClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    down = make_settings(
        database_url,
        tmp_path,
        redis_url="redis://127.0.0.1:1/1",  # nothing listens on port 1
        token_rate_limit_per_address="1/minute",
    )
    client = await make_client(public=True)
    with caplog.at_level(logging.WARNING, logger="keyhouse.ratelimit"):
        async with serving(down) as app, http_client(app) as http:
            started = time.perf_counter()
            for _ in range(3):
                assert (await implicit(http, client)).status_code == 200
            assert time.perf_counter() - started < 2
    warnings = [r for r in caplog.records if r.name == "keyhouse.ratelimit"]
    assert len(warnings) == 1  # once per outage, not once per request
    assert "unreachable" in warnings[0].getMessage()


SETTINGS_ERRORS: dict[str, dict[str, Any]] = {
    "not a limit": {"token_rate_limit_per_address": "lots"},
    "two limits": {"login_rate_limit_per_address": "1/second;10/minute"},
    "zero": {"token_rate_limit_per_client": "0/minute"},
    "not redis": {"redis_url": "http://127.0.0.1:6379"},
}


@pytest.mark.parametrize("values", SETTINGS_ERRORS.values(), ids=SETTINGS_ERRORS.keys())
def test_unusable_limit_settings_are_refused(values: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        Settings(**values)


def test_an_empty_redis_url_means_memory() -> None:
    assert Settings(redis_url="").redis_url is None


# Scheduling slack on a loaded machine: far below the eight timeouts of one wait per request.
SLACK = 1.0


async def timed(request: Awaitable[httpx.Response]) -> tuple[int, float]:
    started = time.perf_counter()
    response = await request
    return response.status_code, time.perf_counter() - started


@pytest.mark.timing
async def test_a_hung_redis_costs_one_short_timeout_per_retry_not_one_per_request(
    database_url: str,
    tmp_path: Path,
    make_client: MakeClient,
    private_redis: PrivateRedis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Redis frozen (SIGSTOP): its socket accepts and never answers. The requests in flight when
    it froze wait one socket timeout; after that, one request at a time probes it every
    `RETRY_SECONDS`, while all the others fail open (tokens) or closed (logins: 503) at once."""
    monkeypatch.setattr(ratelimit, "RETRY_SECONDS", 1.0)
    settings = make_settings(database_url, tmp_path, redis_url=private_redis.url)
    public = await make_client(public=True)
    async with serving(settings) as app, http_client(app) as http:
        storefront = await implicit_token(http, public)
        email = new_email()
        assert (await sign_up(http, storefront, email=email)).status_code == 201
        assert (await log_in(http, storefront, email=email)).status_code == 200

        private_redis.freeze()
        frozen = await asyncio.gather(*(timed(implicit(http, public)) for _ in range(8)))
        assert {status for status, _ in frozen} == {200}  # issuance goes on, uncounted
        assert max(took for _, took in frozen) < settings.redis_timeout_seconds + SLACK, frozen

        await asyncio.sleep(ratelimit.RETRY_SECONDS)  # a retry is due: one request probes
        retried = await asyncio.gather(
            *(timed(implicit(http, public)) for _ in range(8)),
            *(timed(log_in(http, storefront, email=email)) for _ in range(2)),
        )
        assert [status for status, _ in retried] == [200] * 8 + [503] * 2
        # A request that waited for Redis took at least the timeout; one per request would
        # make all ten slow.
        slow = [took for _, took in retried if took >= 0.9 * settings.redis_timeout_seconds]
        assert len(slow) == 1, retried  # the probe alone waited
        assert max(slow) < settings.redis_timeout_seconds + SLACK

        private_redis.thaw()
        await asyncio.sleep(ratelimit.RETRY_SECONDS)
        assert (await implicit(http, public)).status_code == 200  # the probe that finds it back
        assert (await log_in(http, storefront, email=email)).status_code == 200
