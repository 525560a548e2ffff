"""Checkout and `/v2/orders`: who may check out as whom, and who sees which order (§4)."""

import asyncio
from typing import Any

import httpx
import pytest

from app.store.orders import Order, OrderItem

from ..conftest import POSTGRES_URL
from ..customers.shoppers import Shopper, headers
from .conftest import ADDRESS, CountRows, MakeProduct, MakeShopper, add_to_cart

GUEST = {"email": "guest@example.com", "name": "Guest Person"}
UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"


def checkout_body(customer: dict[str, Any] | None = None, **addresses: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"billing_address": ADDRESS, "shipping_address": ADDRESS, **addresses}
    if customer is not None:
        data["customer"] = customer
    return {"data": data}


async def check_out(
    http: httpx.AsyncClient, sent: dict[str, str], body: dict[str, Any], ref: str = "abc"
) -> httpx.Response:
    return await http.post(f"/v2/carts/{ref}/checkout", json=body, headers=sent)


@pytest.fixture
async def product(make_product: MakeProduct) -> dict[str, Any]:
    return await make_product(sku="TEE")


@pytest.fixture
async def filled_cart(
    http: httpx.AsyncClient, storefront: str, product: dict[str, Any], make_product: MakeProduct
) -> str:
    """Cart `abc`: two of TEE at 19.99 and one MUG at 5.00."""
    mug = await make_product(sku="MUG", price=[{"amount": 500, "currency": "USD"}])
    await add_to_cart(http, storefront, "abc", product["id"], 2)
    await add_to_cart(http, storefront, "abc", mug["id"], 1)
    return "abc"


async def order_of(
    http: httpx.AsyncClient, storefront: str, shopper: Shopper, ref: str, product_id: str
) -> dict[str, Any]:
    """An order of `shopper`, checked out through the storefront with their token."""
    await add_to_cart(http, storefront, ref, product_id)
    response = await check_out(http, headers(storefront, shopper.token), checkout_body(), ref)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


async def test_guest_checkout(
    http: httpx.AsyncClient, backend: str, storefront: str, filled_cart: str
) -> None:
    response = await check_out(http, headers(storefront), checkout_body(GUEST))
    assert response.status_code == 201, response.text
    order = response.json()["data"]
    assert order["type"] == "order"
    assert (order["status"], order["payment"], order["shipping"]) == (
        "incomplete", "unpaid", "unfulfilled"
    )  # fmt: skip
    assert order["customer"] == GUEST
    assert order["billing_address"]["line_1"] == ADDRESS["line_1"]
    assert order["shipping_address"]["country"] == "GB"
    assert order["shipping_address"]["company_name"] == ""
    with_tax = order["meta"]["display_price"]["with_tax"]
    assert with_tax == {"amount": 2 * 1999 + 500, "currency": "USD", "formatted": "44.98 USD"}
    assert set(order["meta"]["timestamps"]) == {"created_at", "updated_at"}
    assert order["relationships"]["customer"]["data"] == {"type": "customer", "id": None}
    item_refs = order["relationships"]["items"]["data"]
    assert [ref["type"] for ref in item_refs] == ["item", "item"]
    items = await http.get(f"/v2/orders/{order['id']}/items", headers=headers(backend))
    assert [i["id"] for i in items.json()["data"]] == [ref["id"] for ref in item_refs]
    assert [(i["type"], i["sku"], i["quantity"]) for i in items.json()["data"]] == [
        ("order_item", "TEE", 2), ("order_item", "MUG", 1)
    ]  # fmt: skip
    assert items.json()["data"][0]["value"]["amount"] == 3998
    assert items.json()["meta"]["results"]["total"] == 2


async def test_checkout_empties_the_cart(
    http: httpx.AsyncClient, storefront: str, filled_cart: str
) -> None:
    assert (await check_out(http, headers(storefront), checkout_body(GUEST))).status_code == 201
    cart = await http.get("/v2/carts/abc/items", headers=headers(storefront))
    assert cart.json()["data"] == []
    again = await check_out(http, headers(storefront), checkout_body(GUEST))
    assert again.status_code == 409  # nothing left to check out


async def test_shopper_checkout_belongs_to_the_shopper(
    http: httpx.AsyncClient,
    storefront: str,
    product: dict[str, Any],
    make_shopper: MakeShopper,
) -> None:
    shopper = await make_shopper()
    # No customer, the shopper's own id, or guest details: the order is the shopper's.
    for customer in (None, {"id": shopper.id}, GUEST):
        await add_to_cart(http, storefront, "abc", product["id"])
        response = await check_out(
            http, headers(storefront, shopper.token), checkout_body(customer)
        )
        assert response.status_code == 201, response.text
        order = response.json()["data"]
        assert order["relationships"]["customer"]["data"]["id"] == shopper.id
        assert order["customer"] == {"name": "Ron", "email": shopper.email}


async def test_shopper_may_not_check_out_for_another_customer(
    http: httpx.AsyncClient,
    storefront: str,
    filled_cart: str,
    make_shopper: MakeShopper,
    count_rows: CountRows,
) -> None:
    shopper, other = await make_shopper(), await make_shopper()
    body = checkout_body({"id": other.id})
    response = await check_out(http, headers(storefront, shopper.token), body)
    assert response.status_code == 403
    assert 'error="insufficient_scope"' in response.headers["www-authenticate"]
    assert (await count_rows(Order), await count_rows(OrderItem)) == (0, 0)
    cart = await http.get("/v2/carts/abc/items", headers=headers(storefront))
    assert len(cart.json()["data"]) == 2


async def test_storefront_alone_checks_out_guests_only(
    http: httpx.AsyncClient,
    storefront: str,
    filled_cart: str,
    make_shopper: MakeShopper,
    count_rows: CountRows,
) -> None:
    shopper = await make_shopper()
    response = await check_out(http, headers(storefront), checkout_body({"id": shopper.id}))
    assert response.status_code == 403
    assert await count_rows(Order) == 0


async def test_backend_checks_out_for_any_customer_of_its_store(
    http: httpx.AsyncClient,
    backend: str,
    filled_cart: str,
    make_shopper: MakeShopper,
    count_rows: CountRows,
) -> None:
    unknown = await check_out(http, headers(backend), checkout_body({"id": UNKNOWN_ID}))
    assert unknown.status_code == 404
    assert await count_rows(Order) == 0
    shopper = await make_shopper()
    response = await check_out(http, headers(backend), checkout_body({"id": shopper.id}))
    assert response.status_code == 201
    assert response.json()["data"]["relationships"]["customer"]["data"]["id"] == shopper.id


async def test_empty_or_unknown_cart_is_409(http: httpx.AsyncClient, storefront: str) -> None:
    # A well-formed request: the cart's state refuses it, not its body.
    response = await check_out(http, headers(storefront), checkout_body(GUEST), "never-used")
    assert response.status_code == 409
    assert "empty" in response.json()["errors"][0]["detail"]


@pytest.mark.parametrize(
    "body",
    [
        {"data": {"customer": GUEST, "billing_address": ADDRESS}},
        checkout_body(),
        checkout_body({"name": "No Email"}),
        checkout_body({"email": "not-an-email", "name": "X"}),
        checkout_body(GUEST, billing_address={**ADDRESS, "country": "gb"}),
        checkout_body(GUEST, billing_address={**ADDRESS, "country": "GBR"}),
        checkout_body(GUEST, shipping_address={k: v for k, v in ADDRESS.items() if k != "city"}),
        checkout_body(GUEST, shipping_address={**ADDRESS, "postcode": ""}),
        checkout_body({"id": "not-a-uuid"}),
        checkout_body(GUEST)["data"],
        checkout_body({"email": "guest@example.com", "name": "Gu\x00est"}),
        checkout_body({"email": "gu\x00est@example.com", "name": "Guest"}),
        checkout_body(GUEST, billing_address={**ADDRESS, "city": "Lon\x00don"}),
    ],
)
async def test_bad_checkout_is_400_and_changes_nothing(
    http: httpx.AsyncClient,
    storefront: str,
    filled_cart: str,
    count_rows: CountRows,
    body: dict[str, Any],
) -> None:
    response = await check_out(http, headers(storefront), body)
    assert response.status_code == 400
    assert (await count_rows(Order), await count_rows(OrderItem)) == (0, 0)
    cart = await http.get("/v2/carts/abc/items", headers=headers(storefront))
    assert len(cart.json()["data"]) == 2


async def test_the_largest_prices_and_quantities_add_up_exactly(
    http: httpx.AsyncClient, backend: str, storefront: str, make_product: MakeProduct
) -> None:
    # A price is at most 10**12 minor units and a quantity at most 1000: amounts past 32 bits,
    # which PostgreSQL's `integer` would refuse (a 500) where SQLite stores them.
    largest = [{"amount": 10**12, "currency": "USD", "includes_tax": True}]
    products = [await make_product(sku=f"GOLD-{n}", price=largest) for n in range(3)]
    for product in products:
        added = await add_to_cart(http, storefront, "abc", product["id"], 1000)
        assert added.status_code == 201, added.text
    items = await http.get("/v2/carts/abc/items", headers=headers(storefront))
    assert items.json()["data"][0]["value"]["amount"] == 10**15
    assert items.json()["meta"]["display_price"]["with_tax"]["amount"] == 3 * 10**15
    response = await check_out(http, headers(storefront), checkout_body(GUEST))
    assert response.status_code == 201, response.text
    order = response.json()["data"]
    assert order["meta"]["display_price"]["with_tax"]["amount"] == 3 * 10**15
    order_items = await http.get(f"/v2/orders/{order['id']}/items", headers=headers(backend))
    assert [item["unit_price"]["amount"] for item in order_items.json()["data"]] == [10**12] * 3


async def test_a_product_withdrawn_since_is_409(
    http: httpx.AsyncClient,
    backend: str,
    storefront: str,
    product: dict[str, Any],
    filled_cart: str,
    count_rows: CountRows,
) -> None:
    draft = {"data": {"type": "product", "status": "draft"}}
    await http.put(f"/v2/products/{product['id']}", json=draft, headers=headers(backend))
    response = await check_out(http, headers(storefront), checkout_body(GUEST))
    assert response.status_code == 409
    assert await count_rows(Order) == 0
    cart = await http.get("/v2/carts/abc/items", headers=headers(storefront))
    assert len(cart.json()["data"]) == 2


async def test_shopper_sees_own_orders_only(
    http: httpx.AsyncClient,
    backend: str,
    storefront: str,
    product: dict[str, Any],
    make_shopper: MakeShopper,
) -> None:
    ron, ann = await make_shopper(), await make_shopper()
    rons = await order_of(http, storefront, ron, "ron-cart", product["id"])
    anns = await order_of(http, storefront, ann, "ann-cart", product["id"])
    await add_to_cart(http, storefront, "guest-cart", product["id"])
    await check_out(http, headers(storefront), checkout_body(GUEST), "guest-cart")
    as_ron = headers(storefront, ron.token)
    listed = await http.get("/v2/orders", headers=as_ron)
    assert [o["id"] for o in listed.json()["data"]] == [rons["id"]]
    assert listed.json()["meta"]["results"]["total"] == 1
    assert (await http.get(f"/v2/orders/{rons['id']}", headers=as_ron)).status_code == 200
    for url in (f"/v2/orders/{anns['id']}", f"/v2/orders/{anns['id']}/items"):
        missing = await http.get(url, headers=as_ron)
        assert missing.status_code == 404
    everything = await http.get("/v2/orders", headers=headers(backend))
    assert everything.json()["meta"]["results"]["total"] == 3


async def test_storefront_without_customer_token_reads_no_orders(
    http: httpx.AsyncClient, storefront: str, filled_cart: str
) -> None:
    order = (await check_out(http, headers(storefront), checkout_body(GUEST))).json()["data"]
    for url in ("/v2/orders", f"/v2/orders/{order['id']}", f"/v2/orders/{order['id']}/items"):
        response = await http.get(url, headers=headers(storefront))
        assert response.status_code == 403, url
        assert 'error="insufficient_scope"' in response.headers["www-authenticate"]
    refused = await http.get("/v2/orders", params={"page[limit]": "0"}, headers=headers(storefront))
    assert refused.status_code == 403


async def test_orders_belong_to_a_store(
    http: httpx.AsyncClient, storefront: str, other_backend: str, filled_cart: str
) -> None:
    order = (await check_out(http, headers(storefront), checkout_body(GUEST))).json()["data"]
    theirs = headers(other_backend)
    assert (await http.get(f"/v2/orders/{order['id']}", headers=theirs)).status_code == 404
    assert (await http.get("/v2/orders", headers=theirs)).json()["data"] == []


async def test_backend_updates_an_order(
    http: httpx.AsyncClient, backend: str, storefront: str, filled_cart: str
) -> None:
    order = (await check_out(http, headers(storefront), checkout_body(GUEST))).json()["data"]
    body = {"data": {"type": "order", "status": "complete", "payment": "paid"}}
    response = await http.put(f"/v2/orders/{order['id']}", json=body, headers=headers(backend))
    assert response.status_code == 200, response.text
    updated = response.json()["data"]
    assert (updated["status"], updated["payment"], updated["shipping"]) == (
        "complete", "paid", "unfulfilled"
    )  # fmt: skip
    assert updated["relationships"] == order["relationships"]
    body = {"data": {"type": "order", "shipping": "fulfilled"}}
    shipped = await http.put(f"/v2/orders/{order['id']}", json=body, headers=headers(backend))
    assert shipped.json()["data"]["shipping"] == "fulfilled"
    assert shipped.json()["data"]["status"] == "complete"


async def test_only_a_backend_updates_an_order(
    http: httpx.AsyncClient,
    backend: str,
    storefront: str,
    product: dict[str, Any],
    make_shopper: MakeShopper,
) -> None:
    shopper = await make_shopper()
    order = await order_of(http, storefront, shopper, "abc", product["id"])
    body = {"data": {"type": "order", "status": "complete", "payment": "paid"}}
    url = f"/v2/orders/{order['id']}"
    for sent in (headers(storefront), headers(storefront, shopper.token)):
        assert (await http.put(url, json=body, headers=sent)).status_code == 403
    for bad in ({"type": "order", "status": "shipped"}, {"type": "cart", "status": "complete"}):
        assert (
            await http.put(url, json={"data": bad}, headers=headers(backend))
        ).status_code == 400
    unknown = await http.put(f"/v2/orders/{UNKNOWN_ID}", json=body, headers=headers(backend))
    assert unknown.status_code == 404
    unchanged = (await http.get(url, headers=headers(storefront, shopper.token))).json()["data"]
    assert (unchanged["status"], unchanged["payment"]) == ("incomplete", "unpaid")


@pytest.mark.parametrize(
    ("filter_", "expected"),
    [
        ("eq(status,complete)", ["ron"]),
        ("eq(status,incomplete)", ["guest"]),
        ("in(payment,paid,refunded)", ["ron"]),
        ("eq(shipping,unfulfilled)", ["ron", "guest"]),
        ("eq(customer_id,{ron})", ["ron"]),
        ("gt(created_at,2000-01-01)", ["ron", "guest"]),
        ("gt(created_at,2999-01-01T00:00:00+00:00)", []),
        ("eq(status,complete):eq(payment,unpaid)", []),
    ],
)
async def test_orders_are_filtered(
    http: httpx.AsyncClient,
    backend: str,
    storefront: str,
    product: dict[str, Any],
    make_shopper: MakeShopper,
    filter_: str,
    expected: list[str],
) -> None:
    ron = await make_shopper()
    ids = {"ron": (await order_of(http, storefront, ron, "r", product["id"]))["id"]}
    await add_to_cart(http, storefront, "g", product["id"])
    guest = await check_out(http, headers(storefront), checkout_body(GUEST), "g")
    ids["guest"] = guest.json()["data"]["id"]
    body = {"data": {"type": "order", "status": "complete", "payment": "paid"}}
    await http.put(f"/v2/orders/{ids['ron']}", json=body, headers=headers(backend))
    params = {"filter": filter_.replace("{ron}", ron.id)}
    response = await http.get("/v2/orders", params=params, headers=headers(backend))
    assert response.status_code == 200, response.text
    assert [o["id"] for o in response.json()["data"]] == [ids[name] for name in expected]


@pytest.mark.parametrize(
    "params",
    [
        {"filter": "eq(customer_id,not-a-uuid)"},
        {"filter": "gt(created_at,yesterday)"},
        {"filter": "eq(total,1)"},
        {"filter": "eq(status,complete"},
        {"filter": "eq(status,\x00)"},
        # PostgreSQL has no ILIKE on a timestamp or a UUID.
        {"filter": "like(created_at,2026-01-01)"},
        {"filter": "like(customer_id," + UNKNOWN_ID + ")"},
        {"filter": "gt(created_at,2026-02-29)"},  # no such day
        {"page[limit]": "101"},
        {"page[offset]": "x"},
    ],
)
async def test_bad_order_query_is_400(
    http: httpx.AsyncClient, backend: str, params: dict[str, str]
) -> None:
    response = await http.get("/v2/orders", params=params, headers=headers(backend))
    assert response.status_code == 400


@pytest.mark.parametrize(
    "filter_",
    # Times that exist in their own zone but not in UTC's years 1 to 9999: after (or before)
    # every time there is, so no order matches, rather than a 400 for a well-formed filter.
    ["gt(created_at,9999-12-31T23:59:59-12:00)", "lt(created_at,0001-01-01T00:00:00+01:00)"],
)
async def test_times_past_the_end_of_time_match_nothing(
    http: httpx.AsyncClient, backend: str, storefront: str, product: dict[str, Any], filter_: str
) -> None:
    await add_to_cart(http, storefront, "one", product["id"])
    assert (await check_out(http, headers(storefront), checkout_body(GUEST), "one")).is_success
    response = await http.get("/v2/orders", params={"filter": filter_}, headers=headers(backend))
    assert response.status_code == 200, response.text
    assert response.json()["data"] == []


async def test_orders_are_paginated(
    http: httpx.AsyncClient, backend: str, storefront: str, product: dict[str, Any]
) -> None:
    for ref in ("one", "two", "three"):
        await add_to_cart(http, storefront, ref, product["id"])
        await check_out(http, headers(storefront), checkout_body(GUEST), ref)
    page = await http.get("/v2/orders", params={"page[limit]": "2"}, headers=headers(backend))
    body = page.json()
    assert len(body["data"]) == 2 and body["meta"]["results"]["total"] == 3
    assert body["links"]["next"] is not None


@pytest.mark.skipif(not POSTGRES_URL, reason="SQLite serialises writers; the race needs PostgreSQL")
async def test_a_cart_checks_out_once_under_a_race(
    http: httpx.AsyncClient, storefront: str, filled_cart: str, count_rows: CountRows
) -> None:
    answers = await asyncio.gather(
        *(check_out(http, headers(storefront), checkout_body(GUEST)) for _ in range(5))
    )
    assert sorted(a.status_code for a in answers) == [201, 409, 409, 409, 409]
    assert (await count_rows(Order), await count_rows(OrderItem)) == (1, 2)
