"""Stores are tenants (CONTRACT §4): no token of one store reads or changes another's rows.

Stores A and B are built alike, down to the product's SKU and the cart references, so every
row of B has a twin in A that a leak could be mistaken for (SKUs are unique per store only).
"""

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from app.oauth.stores import Store
from app.runtime.db import Database

from .conftest import MakeClient
from .customers.shoppers import headers
from .store.conftest import ADDRESS
from .world import CART, Kind, World, assert_errors, build_world, checkout_body, snapshot

MakeStore = Callable[[str], Awaitable[Store]]


@dataclass(frozen=True)
class Stores:
    a: World
    b: World


@pytest.fixture
async def stores(
    http: httpx.AsyncClient,
    make_client: MakeClient,
    make_store: MakeStore,
    database: Database,
    default_store: Store,
) -> Stores:
    other: Store = await make_store("Store B")
    return Stores(
        a=await build_world(http, make_client, database, default_store.id),
        b=await build_world(http, make_client, database, other.id),
    )


def listed(response: httpx.Response) -> set[str]:
    assert response.status_code == 200, response.text
    document = response.json()
    ids = {row["id"] for row in document["data"]}
    assert document["meta"]["results"]["total"] == len(ids)
    return ids


async def test_lists_hold_only_the_stores_own_rows(http: httpx.AsyncClient, stores: Stores) -> None:
    for this in (stores.a, stores.b):
        backend, shopper = this.headers("backend"), this.headers("customer")
        get = http.get
        assert listed(await get("/v2/products", headers=backend)) == {this.product, this.draft}
        assert listed(await get("/v2/products", headers=this.headers("implicit"))) == {this.product}
        customers = {this.own.customer, this.other.customer}
        assert listed(await get("/v2/customers", headers=backend)) == customers
        assert listed(await get("/v2/orders", headers=backend)) == {
            this.own.order, this.other.order
        }  # fmt: skip
        assert listed(await get("/v2/orders", headers=shopper)) == {this.own.order}
        addresses = f"/v2/customers/{this.own.customer}/addresses"
        assert listed(await get(addresses, headers=backend)) == {this.own.address}
        assert listed(await get(addresses, headers=shopper)) == {this.own.address}


async def test_filters_do_not_reach_into_another_store(
    http: httpx.AsyncClient, stores: Stores
) -> None:
    a, b = stores.a, stores.b
    by_b_customer = {"filter": f"eq(customer_id,{b.own.customer})"}
    response = await http.get("/v2/orders", params=by_b_customer, headers=a.headers("backend"))
    assert listed(response) == set()
    same_sku = {"filter": "eq(sku,TEE)"}
    response = await http.get("/v2/products", params=same_sku, headers=a.headers("backend"))
    assert listed(response) == {a.product}


@dataclass(frozen=True)
class Case:
    """A request with store A's token for a row of store B: 404, exactly as for no row."""

    method: str
    path: str  # placeholders from store B's `World.ids("own")`
    body: dict[str, Any] | None = None
    kind: Kind = "backend"

    @property
    def id(self) -> str:
        return f"{self.method} {self.path} [{self.kind}]"


ADDRESS_BODY = {"data": {"type": "address", **ADDRESS}}
PRODUCT = "/v2/products/{product}"
CUSTOMER = "/v2/customers/{customer}"
ADDRESS_URL = "/v2/customers/{customer}/addresses/{address}"
ORDER = "/v2/orders/{order}"
ITEM = f"/v2/carts/{CART}/items/{{item}}"  # A has a cart of the same reference
QUANTITY = {"data": {"type": "cart_item", "quantity": 5}}

CASES = [
    Case("GET", PRODUCT),
    Case("GET", PRODUCT, kind="implicit"),
    Case("PUT", PRODUCT, {"data": {"type": "product", "name": "Mine now"}}),
    Case("DELETE", PRODUCT),
    Case("GET", "/v2/products/{draft}"),
    Case("GET", CUSTOMER),
    Case("GET", CUSTOMER, kind="customer"),
    Case("PUT", CUSTOMER, {"data": {"type": "customer", "name": "Mine now"}}),
    Case("GET", "/v2/customers/{customer}/addresses"),
    Case("POST", "/v2/customers/{customer}/addresses", ADDRESS_BODY),
    Case("GET", ADDRESS_URL),
    Case("PUT", ADDRESS_URL, {"data": {"type": "address", "city": "Elsewhere"}}),
    Case("DELETE", ADDRESS_URL),
    Case("GET", ORDER),
    Case("GET", ORDER, kind="customer"),
    Case("GET", ORDER + "/items"),
    Case("PUT", ORDER, {"data": {"type": "order", "status": "cancelled"}}),
    Case("PUT", ITEM, QUANTITY),
    Case("PUT", ITEM, QUANTITY, kind="implicit"),
    Case("DELETE", ITEM),
    Case("POST", f"/v2/carts/{CART}/items", {"data": {"type": "cart_item", "id": "{product}"}}),
    Case("POST", f"/v2/carts/{CART}/checkout", checkout_body({"id": "{customer}"})),
]


def filled(value: Any, ids: dict[str, str]) -> Any:
    """`value` with the placeholders of every string in it filled from `ids`."""
    if isinstance(value, dict):
        return {key: filled(item, ids) for key, item in value.items()}
    return value.format(**ids) if isinstance(value, str) else value


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
async def test_another_stores_rows_do_not_exist(
    case: Case, http: httpx.AsyncClient, database: Database, stores: Stores
) -> None:
    sent = stores.a.headers(case.kind)
    b_ids = stores.b.ids("own")
    unknown_ids = {name: str(uuid.uuid4()) for name in b_ids} | {"cart": CART}
    before = await snapshot(database)
    response = await http.request(
        case.method, filled(case.path, b_ids), json=filled(case.body, b_ids), headers=sent
    )
    assert_errors(response, 404)
    assert await snapshot(database) == before, "store A's token changed the database"
    unknown = await http.request(
        case.method,
        filled(case.path, unknown_ids),
        json=filled(case.body, unknown_ids),
        headers=sent,
    )
    assert (unknown.status_code, unknown.json()) == (404, response.json())


async def test_a_customer_token_of_another_store_is_401(
    http: httpx.AsyncClient, database: Database, stores: Stores
) -> None:
    for this, that in ((stores.a, stores.b), (stores.b, stores.a)):
        # `this` store's bearer with `that` store's shopper, on that shopper's own rows.
        sent = headers(this.storefront, that.customer_token)
        before = await snapshot(database)
        requests = [
            ("GET", f"/v2/customers/{that.own.customer}", None),
            ("GET", "/v2/orders", None),
            ("POST", f"/v2/customers/{that.own.customer}/addresses", ADDRESS_BODY),
            ("POST", f"/v2/carts/{CART}/checkout", checkout_body()),
        ]
        for method, url, body in requests:
            response = await http.request(method, url, json=body, headers=sent)
            assert_errors(response, 401)
            assert 'error="invalid_token"' in response.headers["www-authenticate"], url
        assert await snapshot(database) == before


async def cart_lines(http: httpx.AsyncClient, world: World) -> list[tuple[str, int]]:
    response = await http.get(f"/v2/carts/{CART}/items", headers=world.headers("implicit"))
    assert response.status_code == 200, response.text
    return [(item["product_id"], item["quantity"]) for item in response.json()["data"]]


async def test_one_cart_reference_is_a_cart_per_store(
    http: httpx.AsyncClient, stores: Stores
) -> None:
    a, b = stores.a, stores.b
    assert await cart_lines(http, a) == [(a.product, 1)]
    assert await cart_lines(http, b) == [(b.product, 1)]
    body = {"data": {"type": "cart_item", "id": a.product, "quantity": 2}}
    added = await http.post(f"/v2/carts/{CART}/items", json=body, headers=a.headers("implicit"))
    assert added.status_code == 201, added.text
    assert await cart_lines(http, b) == [(b.product, 1)]
    checkout = checkout_body({"email": "guest@example.com", "name": "Guest"})
    sent = a.headers("implicit")
    response = await http.post(f"/v2/carts/{CART}/checkout", json=checkout, headers=sent)
    assert response.status_code == 201, response.text
    assert await cart_lines(http, a) == []
    assert await cart_lines(http, b) == [(b.product, 1)]
    b_cart = await http.get(f"/v2/carts/{CART}", headers=b.headers("backend"))
    assert b_cart.json()["data"]["meta"]["display_price"]["with_tax"]["amount"] == 1999
