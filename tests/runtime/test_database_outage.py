"""PostgreSQL restarts under load: 503s meanwhile, recovery by itself, no acknowledged write lost.

A real restart of a real server, without touching the suite's shared one: the test starts a
PostgreSQL server of its own from the installed binaries (`initdb`, `pg_ctl`) in a temporary
directory, on a free loopback port, with trust authentication and default durability settings
(bench/fault_services.py's `PrivatePostgres`, which the fault scripts restart too).
PostgreSQL refuses to run as root, so when the tests run as root its commands run as the
`postgres` OS user (`subprocess`'s `user=`, no `runuser` needed). It migrates the schema with
`keyhouse db upgrade` and serves it with `keyhouse serve` (a real subprocess; one worker, then
two).

A few concurrent clients then create products (writes whose 201 is recorded as acknowledged)
and ask for client_credentials and implicit tokens, for a bounded time. Meanwhile the server is
stopped (`pg_ctl stop -m fast`: sessions are terminated, new connections refused) and, a few
seconds later, started again. Checked: every answer during the outage is a 503 with
`Retry-After` and the contract's error body (JSON:API on /v2, the OAuth body at the token
endpoint), never a 500 or a hang; the service answers again by itself within a few seconds of
PostgreSQL being back, and every request sent after that succeeds; every product whose creation
was acknowledged is in the database; the server logged no error, only warnings.

Skipped unless the suite runs on PostgreSQL (`KEYHOUSE_TEST_DATABASE_URL`), like CI's second
pass; under CI a missing PostgreSQL installation fails instead.
"""

import asyncio
import contextlib
import json
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fault_services import PrivatePostgres
from sqlalchemy import select

from app.oauth.clients import CreatedClient, create_client
from app.oauth.stores import ensure_default_store
from app.runtime.db import Database
from app.runtime.passwords import ClientSecretHasher
from app.runtime.server_secret import load_server_keys
from app.store.products import Product

from ..cli.test_cli import KEYHOUSE, SERVER_STOP_SECONDS, clean_environment, wait_for_metadata
from ..conftest import POSTGRES_URL, TEST_SERVER_SECRET, free_port, make_settings

pytestmark = [
    pytest.mark.skipif(
        not POSTGRES_URL.startswith("postgresql"), reason="restarts a PostgreSQL server"
    ),
    pytest.mark.timing,
]

CLIENTS = 4  # concurrent load clients
REQUEST_TIMEOUT_SECONDS = 5.0  # an answer slower than this is a hang
WARM_UP_SECONDS = 10.0  # at most, until every kind of request has succeeded once
OUTAGE_SECONDS = 3.0  # PostgreSQL stays down this long
RECOVERY_BOUND_SECONDS = 5.0  # after `pg_ctl start` returned
AFTER_RECOVERY_SECONDS = 2.0  # of load once recovered, all of which must succeed
TOKEN_URL = "/oauth/access_token"
KINDS = ("client_credentials", "product", "implicit")  # in the order each load client loops
OUTAGE_DETAIL = (
    "The service is unavailable for a moment; try again after the time in the Retry-After header."
)


@contextlib.contextmanager
def serving(postgres: PrivatePostgres, tmp_path: Path, workers: int) -> Iterator[str]:
    """`keyhouse serve` on the private server; yields its URL, stops it after."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [str(KEYHOUSE), "serve", "--port", str(port), "--workers", str(workers)],
            env=environment(postgres, tmp_path, url),
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=output,
        )
    try:
        wait_for_metadata(process, url)
        yield url
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=SERVER_STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def environment(postgres: PrivatePostgres, tmp_path: Path, url: str) -> dict[str, str]:
    return clean_environment() | {
        "KEYHOUSE_DATABASE_URL": postgres.url,
        "KEYHOUSE_DATA_DIR": str(tmp_path),
        "KEYHOUSE_ISSUER": url,
        "KEYHOUSE_SERVER_SECRET": TEST_SERVER_SECRET.get_secret_value(),
        # All the load comes from one address: no rate limit may answer in the outage's place.
        "KEYHOUSE_TOKEN_RATE_LIMIT_PER_ADDRESS": "1000000/minute",
        "KEYHOUSE_TOKEN_RATE_LIMIT_PER_CLIENT": "1000000/minute",
    }


async def make_clients(postgres: PrivatePostgres, tmp_path: Path) -> tuple[CreatedClient, ...]:
    settings = make_settings(postgres.url, tmp_path)
    hasher = ClientSecretHasher(load_server_keys(settings).client_secret_hmac)
    database = Database(postgres.url)
    try:
        async with database.sessions() as session:
            store = await ensure_default_store(session)
            return tuple(
                [
                    await create_client(
                        session, hasher=hasher, store_id=store.id, name=name, public=public
                    )
                    for name, public in (("backend", False), ("storefront", True))
                ]
            )
    finally:
        await database.dispose()


async def product_skus(postgres: PrivatePostgres) -> set[str]:
    database = Database(postgres.url)
    try:
        async with database.sessions() as session:
            return set(await session.scalars(select(Product.sku)))
    finally:
        await database.dispose()


@dataclass(frozen=True)
class Answer:
    kind: str  # "product", "client_credentials" or "implicit"
    sent: float  # monotonic
    took: float
    status: int  # 0 for no answer: none within REQUEST_TIMEOUT_SECONDS, or a dropped connection
    body: Any
    retry_after: str | None


@dataclass
class Load:
    """A few clients looping over writes and token requests until told to stop."""

    url: str
    backend: CreatedClient
    storefront: CreatedClient
    answers: list[Answer] = field(default_factory=list)
    acknowledged: set[str] = field(default_factory=set)  # skus answered 201
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    _sku: int = 0
    _token: str | None = None

    async def run(self, number: int) -> None:
        timeout = httpx.Timeout(REQUEST_TIMEOUT_SECONDS)
        async with httpx.AsyncClient(base_url=self.url, timeout=timeout) as http:
            while not self.stop.is_set():
                for kind in KINDS:
                    await self.send(http, kind, number)

    async def send(self, http: httpx.AsyncClient, kind: str, number: int) -> None:
        if kind == "product" and self._token is None:
            return  # no backend token yet
        sent = time.monotonic()
        sku = None
        try:
            if kind == "product":
                self._sku += 1
                sku = f"OUTAGE-{number}-{self._sku}"
                response = await self.create_product(http, sku)
            elif kind == "client_credentials":
                assert self.backend.client_secret is not None
                form = {"grant_type": "client_credentials"}
                auth = (self.backend.client.id, self.backend.client_secret)
                response = await http.post(TOKEN_URL, data=form, auth=auth)
                if response.status_code == 200:
                    self._token = response.json()["access_token"]
            else:
                form = {"grant_type": "implicit", "client_id": self.storefront.client.id}
                response = await http.post(TOKEN_URL, data=form)
        except httpx.TransportError:  # a timeout (a hang), or a connection dropped
            self.answers.append(Answer(kind, sent, time.monotonic() - sent, 0, None, None))
            return
        took = time.monotonic() - sent
        if kind == "product" and response.status_code == 201:
            assert sku is not None
            self.acknowledged.add(sku)
        retry_after = response.headers.get("Retry-After")
        body = response.json() if response.content else None
        self.answers.append(Answer(kind, sent, took, response.status_code, body, retry_after))

    async def create_product(self, http: httpx.AsyncClient, sku: str) -> httpx.Response:
        data = {
            "type": "product",
            "name": sku,
            "slug": sku.lower(),
            "sku": sku,
            "manage_stock": False,
            "price": [{"amount": 100, "currency": "USD", "includes_tax": True}],
            "status": "live",
            "commodity_type": "physical",
        }
        bearer = {"Authorization": f"Bearer {self._token}"}
        return await http.post("/v2/products", json={"data": data}, headers=bearer)

    def succeeded(self, kind: str, after: float) -> bool:
        expected = 201 if kind == "product" else 200
        return any(
            a.kind == kind and a.sent >= after and a.status == expected for a in self.answers
        )


@contextlib.asynccontextmanager
async def loaded(load: Load) -> AsyncIterator[None]:
    tasks = [asyncio.create_task(load.run(number)) for number in range(CLIENTS)]
    try:
        yield
    finally:
        load.stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), REQUEST_TIMEOUT_SECONDS + 5)


async def wait_until(condition: Any, bound: float) -> float:
    """Seconds until `condition()` held, polled every 10 ms; fails past `bound`."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < bound, "timed out"
        await asyncio.sleep(0.01)
    return time.monotonic() - started


def assert_clean_503(answer: Answer) -> None:
    assert answer.status == 503, answer
    assert answer.retry_after == "2", answer
    if answer.kind == "product":
        expected: dict[str, Any] = {
            "errors": [{"status": 503, "title": "Service Unavailable", "detail": OUTAGE_DETAIL}]
        }
    else:
        expected = {
            "error": "temporarily_unavailable",
            "error_description": OUTAGE_DETAIL,
            "errors": [
                {"status": 503, "title": "temporarily_unavailable", "detail": OUTAGE_DETAIL}
            ],
        }
    assert answer.body == expected, answer


@pytest.mark.parametrize("workers", [1, 2])
async def test_postgres_restart_under_load(
    private_postgres: PrivatePostgres, tmp_path: Path, workers: int
) -> None:
    postgres = private_postgres
    await asyncio.to_thread(
        subprocess.run,
        [str(KEYHOUSE), "db", "upgrade"],
        env=environment(postgres, tmp_path, "http://127.0.0.1"),
        cwd=tmp_path,
        capture_output=True,
        timeout=60,
        check=True,
    )
    backend, storefront = await make_clients(postgres, tmp_path)
    with serving(postgres, tmp_path, workers) as url:
        load = Load(url, backend, storefront)
        async with loaded(load):
            start = time.monotonic()
            await wait_until(
                lambda: all(load.succeeded(kind, start) for kind in KINDS),
                WARM_UP_SECONDS,
            )
            await asyncio.sleep(0.5)

            stopping = time.monotonic()
            await asyncio.to_thread(postgres.stop)
            stopped = time.monotonic()
            await asyncio.sleep(OUTAGE_SECONDS)

            starting = time.monotonic()
            await asyncio.to_thread(postgres.start)
            started = time.monotonic()
            recovery = await wait_until(
                lambda: load.succeeded("product", started), RECOVERY_BOUND_SECONDS
            )
            recovered = started + recovery
            await asyncio.sleep(AFTER_RECOVERY_SECONDS)

    answers = load.answers
    first_503 = min(a.sent + a.took for a in answers if a.status == 503) - stopping
    refused = {kind: sum(a.kind == kind and a.status == 503 for a in answers) for kind in KINDS}
    print(
        f"\n{workers} worker(s): {len(answers)} requests, {len(load.acknowledged)} writes "
        f"acknowledged, 503s {refused}; first 503 {first_503:.3f} s after `pg_ctl stop` "
        f"began (it took {stopped - stopping:.3f} s); PostgreSQL down {starting - stopped:.2f} s; "
        f"`pg_ctl start` took {started - starting:.2f} s, and the first write was acknowledged "
        f"{recovery:.3f} s after it returned; slowest answer {max(a.took for a in answers):.3f} s"
    )
    assert not [a for a in answers if a.status == 0], "a request got no answer"
    assert not [a for a in answers if a.status == 500]
    down = [a for a in answers if stopped <= a.sent and a.sent + a.took <= starting]
    assert any(a.kind == "product" for a in down)
    for answer in down:
        if answer.kind == "product":
            assert_clean_503(answer)  # every write needs the database
        elif answer.status != 200:  # a token for a client still cached is fine
            assert_clean_503(answer)
    during = [a for a in answers if stopping <= a.sent <= recovered]
    for answer in during:
        if answer.status not in {200, 201}:
            assert_clean_503(answer)
    after = [a for a in answers if a.sent >= recovered]
    assert after and all(a.status in {200, 201} for a in after), [
        a for a in after if a.status not in {200, 201}
    ][:3]
    assert all(a.status in {200, 201, 503} for a in answers)

    missing = load.acknowledged - await product_skus(postgres)
    assert not missing, f"{len(missing)} acknowledged writes lost"

    lines = [json.loads(line) for line in (tmp_path / "serve.log").read_text().splitlines()]
    errors = [line for line in lines if line["level"] in {"ERROR", "CRITICAL"}]
    assert not errors, errors[:3]
    outage_lines = [line for line in lines if "database unavailable" in line["message"]]
    assert outage_lines and all(line["level"] == "WARNING" for line in outage_lines)
    assert not any("exception" in line for line in outage_lines)  # no tracebacks
    assert not any("[redacted]" in line["message"] for line in outage_lines)  # nor a hidden cause
