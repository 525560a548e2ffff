"""The busiest reads served ahead of FastAPI (app/store/reads.py): the very answers FastAPI's
routes give, for every outcome; everything else left to FastAPI; outages and bugs answered as
the app's handlers answer them; and the metrics counting them under their route."""

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import exc as sa_exc
from starlette.types import Message, Receive, Scope, Send

from app.main import create_app
from app.runtime.db import Database
from app.runtime.settings import Settings
from app.store.reads import StoreReads

from ..conftest import http_client
from ..customers.shoppers import Shopper, headers
from .conftest import ADDRESS, MakeProduct, MakeShopper, add_to_cart

CHECKOUT = {"data": {"billing_address": ADDRESS, "shipping_address": ADDRESS}}
UNKNOWN_ID = "0a1b2c3d-0000-4000-8000-00000000000f"
PER_RESPONSE = {"date", "x-request-id"}


@pytest.fixture
async def fastapi_only(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The same app on the same database, without the layer: FastAPI answers everything."""
    app = create_app(settings)
    app.user_middleware = [m for m in app.user_middleware if m.cls is not StoreReads]
    async with app.router.lifespan_context(app), http_client(app) as client:
        yield client


@pytest.fixture
async def shopper(
    http: httpx.AsyncClient, storefront: str, make_shopper: MakeShopper, make_product: MakeProduct
) -> Shopper:
    """A shopper with an order, beside a live product and a draft."""
    live = await make_product(sku="LIVE")
    await make_product(sku="DRAFT", status="draft")
    shopper = await make_shopper()
    await add_to_cart(http, storefront, "abc", live["id"], 2)
    sent = headers(storefront, shopper.token)
    assert (await http.post("/v2/carts/abc/checkout", json=CHECKOUT, headers=sent)).is_success
    return shopper


def _reads(backend: str, storefront: str, shopper: Shopper, ids: dict[str, str]) -> list[Any]:
    """(path, headers) of each read, for each outcome: found, not found, refused, malformed."""
    live, draft = ids["LIVE"], ids["DRAFT"]
    as_shopper = headers(storefront, shopper.token)
    return [
        *((f"/v2/products/{live}", sent) for sent in (headers(storefront), headers(backend))),
        (f"/v2/products/{draft}", headers(storefront)),
        (f"/v2/products/{draft}", headers(backend)),
        (f"/v2/products/{UNKNOWN_ID}", headers(backend)),
        (f"/v2/products/{live.upper()}", headers(storefront)),  # FastAPI's in both
        (f"/v2/products/{live}", {}),
        (f"/v2/products/{live}", {"Authorization": "Bearer not-a-token"}),
        ("/v2/products", headers(storefront)),
        ("/v2/products?page[limit]=1&page[offset]=1", headers(backend)),
        ("/v2/products?filter=eq(sku,LIVE)", headers(backend)),
        ("/v2/products?filter=eq(colour,red)", headers(backend)),
        ("/v2/products?page[limit]=0", headers(storefront)),
        ("/v2/products", {"Authorization": "Basic abc"}),
        ("/v2/orders", as_shopper),
        ("/v2/orders?filter=eq(status,incomplete)", headers(backend)),
        ("/v2/orders?page[offset]=5", as_shopper),
        ("/v2/orders", headers(storefront)),  # a storefront without a shopper: 403
        ("/v2/orders?page[limit]=abc", as_shopper),
        ("/v2/orders", {**as_shopper, "X-Moltin-Customer-Token": "not-a-token"}),
    ]


async def test_every_answer_is_the_one_fastapi_gives(
    http: httpx.AsyncClient,
    fastapi_only: httpx.AsyncClient,
    backend: str,
    storefront: str,
    shopper: Shopper,
) -> None:
    listed = (await http.get("/v2/products", headers=headers(backend))).json()["data"]
    ids = {product["sku"]: product["id"] for product in listed}
    statuses = []
    for path, sent in _reads(backend, storefront, shopper, ids):
        served, reference = (
            await http.get(path, headers=sent),
            await fastapi_only.get(path, headers=sent),
        )
        assert (served.status_code, served.content) == (reference.status_code, reference.content)
        assert {k: v for k, v in served.headers.items() if k not in PER_RESPONSE} == {
            k: v for k, v in reference.headers.items() if k not in PER_RESPONSE
        }
        statuses.append(served.status_code)
    assert set(statuses) == {200, 400, 401, 403, 404}


class Sentinel:
    """An app standing for FastAPI: answers 299 and remembers what it was asked."""

    def __init__(self) -> None:
        self.paths: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.paths.append(f"{scope['method']} {scope['path']}")
        await send({"type": "http.response.start", "status": 299, "headers": []})
        await send({"type": "http.response.body", "body": b""})


async def _status(app: FastAPI, layer: StoreReads, method: str, path: str, bearer: str) -> int:
    scope = {
        **{"type": "http", "method": method, "path": path, "raw_path": path.encode()},
        **{"query_string": b"", "root_path": "", "app": app, "scheme": "http"},
        "headers": [(b"authorization", f"Bearer {bearer}".encode())],
    }
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    await layer(scope, receive, send)
    status: int = sent[0]["status"]
    return status


@pytest.mark.parametrize(
    "method, path",
    [
        ("POST", "/v2/products"),
        ("HEAD", "/v2/products"),
        ("PUT", f"/v2/products/{UNKNOWN_ID}"),
        ("GET", "/v2/products/"),
        ("GET", f"/v2/products/{UNKNOWN_ID.upper()}"),
        ("GET", f"/v2/products/{UNKNOWN_ID}/"),
        ("GET", "/v2/products/not-an-id"),
        ("GET", "/v2/productsx"),
        ("GET", f"/v2/orders/{UNKNOWN_ID}"),
        ("GET", "/v2/carts/abc"),
    ],
)
async def test_everything_else_goes_on_to_fastapi(
    app: FastAPI, backend: str, method: str, path: str
) -> None:
    sentinel = Sentinel()
    assert await _status(app, StoreReads(sentinel), method, path, backend) == 299
    assert sentinel.paths == [f"{method} {path}"]


@pytest.mark.parametrize("path", ["/v2/products", f"/v2/products/{UNKNOWN_ID}", "/v2/orders"])
async def test_the_three_reads_are_answered_here(app: FastAPI, backend: str, path: str) -> None:
    sentinel = Sentinel()
    assert await _status(app, StoreReads(sentinel), "GET", path, backend) in (200, 404)
    assert sentinel.paths == []


def _failing_reads(app: FastAPI, monkeypatch: pytest.MonkeyPatch, error: Exception) -> None:
    database: Database = app.state.database

    def reading() -> Any:
        raise error

    monkeypatch.setattr(database, "reading", reading)


@pytest.mark.parametrize("path", ["/v2/products", f"/v2/products/{UNKNOWN_ID}", "/v2/orders"])
async def test_a_database_away_is_a_503_as_elsewhere(
    app: FastAPI, http: httpx.AsyncClient, backend: str, path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _failing_reads(app, monkeypatch, sa_exc.TimeoutError("pool exhausted"))  # as the pool's
    response = await http.get(path, headers=headers(backend))
    assert (response.status_code, response.headers["retry-after"]) == (503, "2")
    assert response.json()["errors"][0]["title"] == "Service Unavailable"


async def test_a_bug_is_a_500_logged_as_elsewhere(
    app: FastAPI,
    backend: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    _failing_reads(app, monkeypatch, sa_exc.ProgrammingError("SELECT", {}, Exception("no")))
    # As served: Starlette's 500 handler answers, then raises the error on to the server.
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://keyhouse.test") as client:
        response = await client.get("/v2/orders", headers=headers(backend))
    assert response.status_code == 500
    assert response.json()["errors"][0]["title"] == "Internal Server Error"
    assert "unhandled error on GET /v2/orders" in caplog.text


async def test_the_metrics_count_them_under_their_route(
    http: httpx.AsyncClient, backend: str, make_product: MakeProduct
) -> None:
    product = await make_product()
    await http.get(f"/v2/products/{product['id']}", headers=headers(backend))
    await http.get(f"/v2/products/{UNKNOWN_ID}", headers=headers(backend))
    await http.get("/v2/orders")
    counted = [
        line for line in (await http.get("/metrics")).text.splitlines()
        if line.startswith("keyhouse_http_requests_total{")
    ]  # fmt: skip
    for route, status in (
        ("/v2/products/{product_id}", "200"),
        ("/v2/products/{product_id}", "404"),
        ("/v2/orders", "401"),
    ):
        labels = (f'route="{route}"', 'method="GET"', f'status="{status}"')
        assert any(all(label in line for label in labels) for line in counted), counted
