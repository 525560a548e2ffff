"""`keyhouse serve --workers 2` on PostgreSQL and Redis holds the limits that one worker holds.

Every request goes on a fresh connection, which the kernel hands to either worker; the access
log's pids show that both answered. (Revocations across workers: tests/oauth/
test_revocation_workers.py.) In memory each worker would count alone; the in-process tests of
tests/runtime/test_ratelimit.py and tests/customers/test_lockout.py show that difference.
"""

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import redis

from app.oauth.stores import Store

from .conftest import POSTGRES_URL, REDIS_URL, MakeClient, _require_redis
from .customers.shoppers import implicit_token, log_in, new_email, sign_up
from .serve import Serving, serving

pytestmark = pytest.mark.skipif(not POSTGRES_URL, reason="several workers need PostgreSQL")

TOKENS_PER_ADDRESS = 30  # enough requests that both workers answer some
PAIR_FAILURES = 3
LOCKED_PROBES = 10
MAX_LOCKED_PROBES = 50  # with the failures, within the login limit per address (60/minute)


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    _require_redis()
    prefix = f"keyhouse-test-{uuid.uuid4().hex}"
    yield prefix
    with redis.Redis.from_url(REDIS_URL) as connection:
        for key in connection.scan_iter(match=f"{prefix}:*"):
            connection.delete(key)


@pytest.fixture
def two_workers(
    tmp_path: Path, default_store: Store, database_url: str, redis_prefix: str
) -> Iterator[Serving]:
    environment = {
        "KEYHOUSE_DATABASE_URL": database_url,
        "KEYHOUSE_REDIS_URL": REDIS_URL,
        "KEYHOUSE_REDIS_KEY_PREFIX": redis_prefix,
        "KEYHOUSE_REDIS_TIMEOUT_SECONDS": "5",  # a loaded CI host must not read as Redis away
        "KEYHOUSE_TOKEN_RATE_LIMIT_PER_ADDRESS": f"{TOKENS_PER_ADDRESS}/minute",
        "KEYHOUSE_LOCKOUT_PAIR_FAILURES": str(PAIR_FAILURES),
    }
    with serving(tmp_path, workers=2, environment=environment) as served:
        yield served


async def fresh(served: Serving) -> AsyncIterator[httpx.AsyncClient]:
    """An endless supply of clients, each with its own connection."""
    while True:
        async with httpx.AsyncClient(base_url=served.url, timeout=10) as http:
            yield http


async def test_the_token_limit_per_address_holds_across_workers(
    two_workers: Serving, make_client: MakeClient
) -> None:
    storefront = await make_client(public=True)
    form = {"grant_type": "implicit", "client_id": storefront.client.id}
    clients = fresh(two_workers)
    for _ in range(TOKENS_PER_ADDRESS):
        response = await (await anext(clients)).post("/oauth/access_token", data=form)
        assert response.status_code == 200, response.text
    refused = await (await anext(clients)).post("/oauth/access_token", data=form)

    assert refused.status_code == 429, refused.text
    assert refused.json()["error"] == "slow_down"
    assert int(refused.headers["retry-after"]) >= 1
    assert len(two_workers.pids_that_answered("/oauth/access_token")) == 2


async def test_a_lockout_started_through_one_worker_holds_on_the_other(
    two_workers: Serving, make_client: MakeClient
) -> None:
    clients = fresh(two_workers)
    bearer = await implicit_token(await anext(clients), await make_client(public=True))
    email = new_email()
    assert (await sign_up(await anext(clients), bearer, email=email)).status_code == 201
    for number in range(PAIR_FAILURES):
        wrong = f"wrong password {number}"
        response = await log_in(await anext(clients), bearer, email=email, password=wrong)
        assert response.status_code == 401, response.text

    # The right password, now refused by whichever worker answers. Under load the kernel may
    # hand one worker many connections in a row: probe on (boundedly) until both have answered.
    statuses = []
    for probe in range(MAX_LOCKED_PROBES):
        statuses.append((await log_in(await anext(clients), bearer, email=email)).status_code)
        answered = two_workers.pids_that_answered("/v2/customers/tokens")
        if probe + 1 >= LOCKED_PROBES and len(answered) == 2:
            break
    assert statuses == [429] * len(statuses)
    assert len(two_workers.pids_that_answered("/v2/customers/tokens")) == 2
