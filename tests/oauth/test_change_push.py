"""Changes pushed to every worker of `keyhouse serve --workers 2` (app/runtime/change_feed.py).

Over PostgreSQL NOTIFY and over Redis pub/sub, with the fallback poll set to a minute, so that
only the push can explain what the workers see: a revoked token, a disabled client and a rotated
signing key are seen by both workers 100 ms after the write. Every probe from then on is on a
fresh connection, which the kernel hands to either worker; the probes go on until both workers'
pids have answered (the access log), and every answer must show the change.

With the push broken (the private Redis frozen), the workers notice, poll at the usual pace
again, and see a revocation within the fallback interval.
"""

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from fault_services import PrivateRedis

from app.oauth.clients import CreatedClient, disable_client
from app.oauth.keys import rotate_signing_key
from app.oauth.stores import Store
from app.runtime.changes import redis_announcer
from app.runtime.db import Database
from app.runtime.server_secret import load_server_keys
from app.runtime.settings import Settings

from ..conftest import POSTGRES_URL, REDIS_URL, MakeClient, _require_redis
from ..serve import Serving, serving

pytestmark = [
    pytest.mark.skipif(not POSTGRES_URL, reason="several workers need PostgreSQL"),
    pytest.mark.timing,
]

PUSH_BOUND_SECONDS = 0.1
FALLBACK_SECONDS = 1.0  # the fallback poll of the broken-push test
READ_SECONDS = 0.25  # beyond it: the read itself, on a loaded host
MAX_PROBES = 60
START_SECONDS = 10.0


class Workers(Serving):
    def wait_listening(self) -> None:
        """Until both workers logged that their push is connected."""
        deadline = time.monotonic() + START_SECONDS
        while len(self.pids_logging("change push")) < 2:
            assert time.monotonic() < deadline, self.log.read_text()
            time.sleep(0.05)

    def pids_logging(self, words: str) -> set[int]:
        lines = [json.loads(line) for line in self.log.read_text().splitlines() if line]
        return {line["pid"] for line in lines if words in line.get("message", "")}

    def everywhere(self, path: str, check: "Check", **options: object) -> None:
        """Probes `path` on fresh connections until both workers answered; each answer must
        pass `check`."""
        marked = f"{path}?probe={uuid.uuid4().hex[:8]}"
        for count in range(1, MAX_PROBES + 1):
            response = self.get(marked, **options)
            assert check(response), (response.status_code, response.text)
            if count >= 4 and len(self.pids_that_answered(marked)) == 2:
                return
        pytest.fail(f"one worker never answered {MAX_PROBES} probes")


class Check:
    def __init__(self, status: int, contains: str = "") -> None:
        self.status = status
        self.contains = contains

    def __call__(self, response: httpx.Response) -> bool:
        return response.status_code == self.status and self.contains in response.text


@pytest.fixture(params=["postgresql", "redis"])
def push_environment(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    # Polls far apart: only the push can explain a change seen within 100 ms.
    environment = {"KEYHOUSE_CHANGE_POLL_SECONDS": "60", "KEYHOUSE_REVOCATION_POLL_SECONDS": "1"}
    if request.param == "redis":
        _require_redis()
        environment |= {
            "KEYHOUSE_REDIS_URL": REDIS_URL,
            "KEYHOUSE_REDIS_KEY_PREFIX": f"keyhouse-test-{uuid.uuid4().hex}",
            "KEYHOUSE_REDIS_TIMEOUT_SECONDS": "5",
        }
    yield environment


@contextmanager
def started(tmp_path: Path, database_url: str, environment: dict[str, str]) -> Iterator[Workers]:
    environment = {"KEYHOUSE_DATABASE_URL": database_url, **environment}
    with serving(tmp_path, workers=2, environment=environment) as served:
        workers = Workers(served.url, served.log)
        workers.wait_listening()
        yield workers


def token_of(workers: Workers, client: CreatedClient) -> str:
    assert client.client_secret is not None
    response = httpx.post(
        workers.url + "/oauth/access_token",
        data={"grant_type": "client_credentials"},
        auth=(client.client.id, client.client_secret),
        timeout=5,
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def bearer(token: str) -> dict[str, dict[str, str]]:
    return {"headers": {"Authorization": f"Bearer {token}"}}


async def after_bound(written_at: float, bound: float = PUSH_BOUND_SECONDS) -> None:
    await asyncio.sleep(max(0.0, written_at + bound - time.monotonic()))


def revoke(workers: Workers, client: CreatedClient, token: str) -> None:
    assert client.client_secret is not None
    revoked = httpx.post(
        workers.url + "/oauth/revoke",
        data={"token": token},
        auth=(client.client.id, client.client_secret),
        timeout=10,  # with Redis frozen, the rate limit waits out Redis' timeout first
    )
    assert revoked.status_code == 200


def token_status(workers: Workers, client: CreatedClient) -> int:
    return httpx.post(
        workers.url + "/oauth/access_token",
        data={"grant_type": "client_credentials"},
        auth=(client.client.id, client.client_secret or ""),
        timeout=5,
    ).status_code


async def test_changes_reach_every_worker_within_100_ms(
    tmp_path: Path,
    default_store: Store,
    database_url: str,
    settings: Settings,
    database: Database,
    make_client: MakeClient,
    push_environment: dict[str, str],
) -> None:
    revoked_client = await make_client(name="revoked")
    disabled_client = await make_client(name="disabled")
    # What the test writes itself is announced as a command's writes are.
    configured = settings.model_copy(
        update={
            "redis_url": push_environment.get("KEYHOUSE_REDIS_URL"),
            "redis_key_prefix": push_environment.get("KEYHOUSE_REDIS_KEY_PREFIX", "keyhouse"),
        }
    )
    announcer = redis_announcer(configured, database.sessions)
    with started(tmp_path, database_url, push_environment) as workers:
        # A token revoked through one worker.
        token = await asyncio.to_thread(token_of, workers, revoked_client)
        await asyncio.to_thread(workers.everywhere, "/v2/products", Check(200), **bearer(token))
        await asyncio.to_thread(revoke, workers, revoked_client, token)
        written_at = time.monotonic()
        await after_bound(written_at)
        await asyncio.to_thread(workers.everywhere, "/v2/products", Check(401), **bearer(token))

        # A client disabled by the operator: its tokens refused, no new one issued.
        token = await asyncio.to_thread(token_of, workers, disabled_client)
        await asyncio.to_thread(workers.everywhere, "/v2/products", Check(200), **bearer(token))
        async with database.sessions() as session:
            await disable_client(
                session, client_id=disabled_client.client.id, issuing_lag_seconds=1
            )
        written_at = time.monotonic()
        await after_bound(written_at)
        await asyncio.to_thread(workers.everywhere, "/v2/products", Check(401), **bearer(token))
        assert await asyncio.to_thread(token_status, workers, disabled_client) == 401

        # A signing key rotated in by the operator: published by every worker.
        async with database.sessions() as session:
            rotated = await rotate_signing_key(
                session,
                algorithm="ES256",
                encryption_key=load_server_keys(settings).signing_key_encryption,
                max_token_lifetime=3600,
            )
        written_at = time.monotonic()
        await after_bound(written_at)
        kid = rotated.new_key.kid
        await asyncio.to_thread(workers.everywhere, "/.well-known/jwks.json", Check(200, kid))
    if announcer is not None:
        await announcer.close()


async def test_with_the_push_broken_a_revocation_arrives_within_the_fallback(
    tmp_path: Path,
    default_store: Store,
    database_url: str,
    make_client: MakeClient,
    private_redis: PrivateRedis,
) -> None:
    client = await make_client(name="backend")
    environment = {
        "KEYHOUSE_REDIS_URL": private_redis.url,
        "KEYHOUSE_CHANGE_POLL_SECONDS": str(FALLBACK_SECONDS),
    }
    with started(tmp_path, database_url, environment) as workers:
        token = await asyncio.to_thread(token_of, workers, client)
        await asyncio.to_thread(workers.everywhere, "/v2/products", Check(200), **bearer(token))
        private_redis.freeze()
        await asyncio.to_thread(revoke, workers, client, token)
        written_at = time.monotonic()
        await after_bound(written_at, FALLBACK_SECONDS + READ_SECONDS)
        await asyncio.to_thread(workers.everywhere, "/v2/products", Check(401), **bearer(token))
