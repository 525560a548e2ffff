"""Health, readiness and Prometheus metrics (app/observability/monitoring.py and
metrics.py).

Metrics are per process and the suite shares one, so tests compare a scrape after with one
before. The last test serves two worker processes and checks that a scrape from either adds up
both.
"""

import asyncio
import socket
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from app.oauth.clients import CreatedClient, disable_client
from app.oauth.revocation import RevocationList
from app.observability import monitoring
from app.runtime.db import Database

from ..conftest import POSTGRES_URL, TEST_ISSUER, MakeClient, free_port
from ..customers.shoppers import backend_token, headers, implicit_token, log_in, new_email, sign_up
from ..serve import Serving, serving

Labels = frozenset[tuple[str, str]]
Samples = dict[tuple[str, Labels], float]


def parse(exposition: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
    }


async def scrape(http: httpx.AsyncClient) -> Samples:
    response = await http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return parse(response.text)


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def grew(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


REQUESTS = "keyhouse_http_requests_total"
TIMED = "keyhouse_http_request_duration_seconds_count"


# Health and readiness


async def test_health_and_readiness_answer_without_a_token(http: httpx.AsyncClient) -> None:
    health = await http.get("/healthz")
    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    ready = await http.get("/readyz")
    assert (ready.status_code, ready.json()) == (200, {"status": "ready"})


@pytest.fixture
async def database_away(app: FastAPI, tmp_path: Path) -> AsyncIterator[FastAPI]:
    """The app, its database swapped for one whose SQLite directory does not exist."""
    served = app.state.database
    app.state.database = Database(f"sqlite+aiosqlite:///{tmp_path / 'missing' / 'keyhouse.db'}")
    yield app
    await app.state.database.dispose()
    app.state.database = served


def assert_unavailable(response: httpx.Response) -> None:
    """503 with `Retry-After`, in the JSON:API errors body."""
    assert response.status_code == 503, response.text
    assert int(response.headers["retry-after"]) > 0
    (error,) = response.json()["errors"]
    assert error["status"] == 503
    assert error["title"] == "Service Unavailable"
    assert error["detail"] == monitoring.DATABASE_UNREACHABLE


async def test_readiness_is_503_while_the_database_is_away_and_health_stays_200(
    database_away: FastAPI, http: httpx.AsyncClient
) -> None:
    assert_unavailable(await http.get("/readyz"))
    health = await http.get("/healthz")  # liveness never asks the database
    assert (health.status_code, health.json()) == (200, {"status": "ok"})


async def test_readiness_is_503_when_nothing_listens_at_the_database_port(
    app: FastAPI, http: httpx.AsyncClient
) -> None:
    served = app.state.database
    app.state.database = Database(f"postgresql+asyncpg://root@127.0.0.1:{free_port()}/keyhouse")
    try:
        assert_unavailable(await http.get("/readyz"))
    finally:
        await app.state.database.dispose()
        app.state.database = served


@pytest.mark.timing
async def test_readiness_gives_up_on_a_database_that_never_answers(
    app: FastAPI, http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(monitoring, "READINESS_TIMEOUT_SECONDS", 0.3)
    served = app.state.database
    with socket.socket() as silent:  # accepts connections (in the kernel), never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        app.state.database = Database(f"postgresql+asyncpg://root@127.0.0.1:{port}/keyhouse")
        try:
            started = time.monotonic()
            assert_unavailable(await http.get("/readyz"))
            assert time.monotonic() - started < 2
        finally:
            await app.state.database.dispose()
            app.state.database = served


# What /metrics counts


METRICS_TOKEN = "metrics-token-" + "m" * 24


@pytest.mark.settings(metrics_token=METRICS_TOKEN)
async def test_with_a_metrics_token_only_a_scrape_that_sends_it_reads_the_metrics(
    http: httpx.AsyncClient,
) -> None:
    for authorization in (None, "Bearer wrong-token", f"Basic {METRICS_TOKEN}"):
        sent = {"Authorization": authorization} if authorization else {}
        refused = await http.get("/metrics", headers=sent)
        assert refused.status_code == 401, authorization
        assert refused.headers["www-authenticate"] == monitoring.METRICS_REALM
        (error,) = refused.json()["errors"]
        assert (error["status"], error["title"]) == (401, "Unauthorized")
        assert "keyhouse_" not in refused.text

    # What Prometheus sends with `authorization: {credentials: ...}` in its scrape config.
    scraped = await http.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert scraped.status_code == 200
    parse(scraped.text)  # a well-formed exposition
    assert "# TYPE keyhouse_http_requests" in scraped.text


async def test_requests_are_counted_by_route_template_never_by_raw_path(
    http: httpx.AsyncClient, make_client: MakeClient
) -> None:
    backend = await backend_token(http, await make_client(name="backend"))
    storefront = await implicit_token(http, await make_client(name="storefront", public=True))
    assert (await sign_up(http, backend, email=new_email())).status_code == 201
    customers = (await http.get("/v2/customers", headers=headers(backend))).json()["data"]
    customer_id = customers[0]["id"]
    missing = str(uuid.uuid4())
    before = await scrape(http)

    for _ in range(3):
        answer = await http.get(f"/v2/customers/{customer_id}", headers=headers(backend))
        assert answer.status_code == 200
    forbidden = await http.get(f"/v2/customers/{customer_id}", headers=headers(storefront))
    assert forbidden.status_code == 403
    assert (await http.get(f"/v2/nothing/{missing}")).status_code == 404
    assert (await http.request("BREW", "/v2/products")).status_code == 405
    for path in ("/healthz", "/readyz"):
        assert (await http.get(path)).status_code == 200
    after = await scrape(http)
    text = (await http.get("/metrics")).text

    route = "/v2/customers/{customer_id}"
    assert grew(before, after, REQUESTS, route=route, method="GET", status="200") == 3
    assert grew(before, after, REQUESTS, route=route, method="GET", status="403") == 1
    assert grew(before, after, TIMED, route=route, method="GET") == 4
    assert grew(before, after, REQUESTS, route="unmatched", method="GET", status="404") == 1
    # A method the client made up is counted, but under a fixed name.
    brewed = {"route": "/v2/products", "method": "other", "status": "405"}
    assert grew(before, after, REQUESTS, **brewed) == 1
    assert customer_id not in text and missing not in text and "BREW" not in text
    # Probes and scrapes are not counted.
    for path in ("/healthz", "/readyz", "/metrics"):
        assert f'route="{path}"' not in text


async def test_tokens_are_counted_by_grant_type(
    http: httpx.AsyncClient, make_client: MakeClient
) -> None:
    confidential = await make_client(name="backend")
    public = await make_client(name="storefront", public=True)
    before = await scrape(http)

    backend = await backend_token(http, confidential)
    storefront = await implicit_token(http, public)
    await implicit_token(http, public)
    email = new_email()
    assert (await sign_up(http, backend, email=email)).status_code == 201
    assert (await log_in(http, storefront, email=email)).status_code == 200
    refused = await http.post("/oauth/token", data={"grant_type": "implicit", "client_id": "x"})
    assert refused.status_code == 401
    after = await scrape(http)

    for grant, count in [("client_credentials", 1), ("implicit", 2), ("customer", 1)]:
        assert grew(before, after, "keyhouse_tokens_issued_total", grant_type=grant) == count
    # The token endpoint is served ahead of routing, under its own fixed path (and its alias).
    for route, status, count in [("/oauth/access_token", "200", 3), ("/oauth/token", "401", 1)]:
        assert grew(before, after, REQUESTS, route=route, method="POST", status=status) == count


@pytest.mark.settings(lockout_pair_failures=2)
async def test_login_failures_and_lockouts_are_counted(
    http: httpx.AsyncClient, make_client: MakeClient
) -> None:
    storefront = await implicit_token(http, await make_client(name="storefront", public=True))
    email = new_email()
    before = await scrape(http)

    for number in range(2):
        refused = await log_in(http, storefront, email=email, password=f"wrong {number}")
        assert refused.status_code == 401
    assert (await log_in(http, storefront, email=email)).status_code == 429  # locked: no failure
    after = await scrape(http)

    assert grew(before, after, "keyhouse_customer_login_failures_total") == 2
    for scope, started in [("pair", 1), ("account", 0), ("address", 0)]:
        assert grew(before, after, "keyhouse_lockouts_total", scope=scope) == started


async def test_revocations_are_counted_by_kind(
    app: FastAPI, http: httpx.AsyncClient, make_client: MakeClient, database: Database
) -> None:
    confidential = await make_client(name="backend")
    assert confidential.client_secret is not None
    backend = await backend_token(http, confidential)
    email = new_email()
    assert (await sign_up(http, backend, email=email)).status_code == 201
    customers = (await http.get("/v2/customers", headers=headers(backend))).json()["data"]
    before = await scrape(http)

    auth = (confidential.client.id, confidential.client_secret)
    revoked = await http.post("/oauth/revoke", data={"token": backend}, auth=auth)
    assert revoked.status_code == 200
    backend = await backend_token(http, confidential)
    deleted = await http.delete(f"/v2/customers/{customers[0]['id']}", headers=headers(backend))
    assert deleted.status_code == 204
    await disable_client_elsewhere(app, database, await make_client(name="disabled"))
    after = await scrape(http)

    for kind in ("token", "customer"):
        assert grew(before, after, "keyhouse_revocations_total", kind=kind) == 1
    # What the worker holds, whoever made it: the CLI disables clients.
    for kind in ("token", "client", "customer"):
        assert value(after, "keyhouse_revocations_active", kind=kind) == 1


async def disable_client_elsewhere(app: FastAPI, database: Database, client: CreatedClient) -> None:
    """As `keyhouse clients disable` does it; the worker learns of it at its next poll."""
    async with database.sessions() as session:
        await disable_client(session, client_id=client.client.id, issuing_lag_seconds=1)
    revocations: RevocationList = app.state.revocations
    await revocations.poll()


async def test_a_request_that_fails_is_counted_as_the_500_it_got(app: FastAPI) -> None:
    async def fail() -> None:
        raise RuntimeError("boom")

    app.add_api_route("/v2/fails", fail, methods=["GET"])
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=TEST_ISSUER) as http:
        before = await scrape(http)
        assert (await http.get("/v2/fails")).status_code == 500
        after = await scrape(http)
    assert grew(before, after, REQUESTS, route="/v2/fails", method="GET", status="500") == 1


# Several workers

SPREAD = 40  # requests on fresh connections, which the kernel hands to either worker


class Served(Serving):
    def __init__(self, serving: Serving, temporary: Path) -> None:
        super().__init__(serving.url, serving.log)
        self.temporary = temporary


@pytest.fixture
def two_workers(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Served]:
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    environment = {"TMPDIR": str(temporary)}
    if POSTGRES_URL:
        environment["KEYHOUSE_DATABASE_URL"] = request.getfixturevalue("database_url")
    with serving(tmp_path, workers=2, environment=environment) as served:
        yield Served(served, temporary)
    # The workers' metric files went with the directory `serve` made for them.
    assert list(temporary.iterdir()) == []


async def test_a_scrape_from_either_worker_adds_up_both(two_workers: Served) -> None:
    await asyncio.to_thread(spread_and_scrape, two_workers)


def spread_and_scrape(served: Served) -> None:
    (directory,) = served.temporary.iterdir()
    assert directory.name.startswith("keyhouse-metrics-")
    assert directory.stat().st_mode & 0o077 == 0  # private
    for _ in range(SPREAD):
        assert served.get("/.well-known/jwks.json").status_code == 200
        assert served.get("/v2/nothing").status_code == 404
    assert len(served.pids_that_answered("/.well-known/jwks.json")) == 2

    for _ in range(SPREAD):  # whichever worker answers, it counts both
        samples = parse(served.get("/metrics").text)
        jwks = {"route": "/.well-known/jwks.json", "method": "GET"}
        assert value(samples, REQUESTS, **jwks, status="200") == SPREAD
        assert value(samples, TIMED, **jwks) == SPREAD
        assert value(samples, REQUESTS, route="unmatched", method="GET", status="404") == SPREAD
        if len(served.pids_that_answered("/metrics")) == 2:
            return
    pytest.fail("one worker answered every scrape")
