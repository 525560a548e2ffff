"""`/v2/products`: the catalogue on the wire (CONTRACT §4, product shape and permissions)."""

from typing import Any

import httpx
import pytest
from sqlalchemy import select

from app.runtime.db import Database
from app.store.products import Product

from ..customers.shoppers import headers
from .conftest import CountRows, MakeProduct, MakeShopper, add_to_cart, product_body

URL = "/v2/products"


async def test_backend_creates_and_reads_a_product(http: httpx.AsyncClient, backend: str) -> None:
    created = await http.post(URL, json=product_body(sku="TEE-1"), headers=headers(backend))
    assert created.status_code == 201, created.text
    data = created.json()["data"]
    assert set(data) == {
        "type", "id", "name", "slug", "sku", "description", "manage_stock", "price", "status",
        "commodity_type", "meta",
    }  # fmt: skip
    assert data["type"] == "product"
    assert data["sku"] == "TEE-1" and data["slug"] == "tee-1"
    assert data["price"] == [{"amount": 1999, "currency": "USD", "includes_tax": True}]
    assert set(data["meta"]["timestamps"]) == {"created_at", "updated_at"}
    single = await http.get(f"{URL}/{data['id']}", headers=headers(backend))
    assert single.status_code == 200
    assert single.json() == {"data": data}


async def test_new_product_is_a_draft_unless_told(http: httpx.AsyncClient, backend: str) -> None:
    body = product_body()
    del body["data"]["status"], body["data"]["description"], body["data"]["manage_stock"]
    created = await http.post(URL, json=body, headers=headers(backend))
    assert created.status_code == 201, created.text
    data = created.json()["data"]
    assert (data["status"], data["description"], data["manage_stock"]) == ("draft", "", False)


async def test_storefront_sees_live_products_only(
    http: httpx.AsyncClient, backend: str, storefront: str, make_product: MakeProduct
) -> None:
    live = await make_product(sku="LIVE")
    draft = await make_product(sku="DRAFT", status="draft")
    listed = await http.get(URL, headers=headers(storefront))
    assert [p["id"] for p in listed.json()["data"]] == [live["id"]]
    assert listed.json()["meta"]["results"]["total"] == 1
    assert (await http.get(f"{URL}/{draft['id']}", headers=headers(storefront))).status_code == 404
    assert (await http.get(f"{URL}/{live['id']}", headers=headers(storefront))).status_code == 200
    everything = await http.get(URL, headers=headers(backend))
    assert everything.json()["meta"]["results"]["total"] == 2
    assert (await http.get(f"{URL}/{draft['id']}", headers=headers(backend))).status_code == 200


async def test_shopper_sees_live_products_only(
    http: httpx.AsyncClient,
    storefront: str,
    make_product: MakeProduct,
    make_shopper: MakeShopper,
) -> None:
    draft = await make_product(sku="DRAFT", status="draft")
    shopper = await make_shopper()
    response = await http.get(f"{URL}/{draft['id']}", headers=headers(storefront, shopper.token))
    assert response.status_code == 404


async def test_storefront_may_not_write(
    http: httpx.AsyncClient,
    storefront: str,
    make_product: MakeProduct,
    database: Database,
    count_rows: CountRows,
) -> None:
    product = await make_product(sku="KEEP")
    answers = [
        await http.post(URL, json=product_body(sku="NEW"), headers=headers(storefront)),
        await http.put(
            f"{URL}/{product['id']}",
            json={"data": {"type": "product", "name": "Changed"}},
            headers=headers(storefront),
        ),
        await http.delete(f"{URL}/{product['id']}", headers=headers(storefront)),
    ]
    for answer in answers:
        assert answer.status_code == 403
        assert 'error="insufficient_scope"' in answer.headers["www-authenticate"]
        assert answer.json()["errors"][0]["status"] == 403
    assert await count_rows(Product) == 1
    async with database.sessions() as session:
        assert (await session.scalars(select(Product.name))).one() == "Product KEEP"


async def test_no_token_is_401(http: httpx.AsyncClient) -> None:
    response = await http.get(URL)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_sku_is_unique_per_store(
    http: httpx.AsyncClient,
    backend: str,
    other_backend: str,
    make_product: MakeProduct,
    count_rows: CountRows,
) -> None:
    await make_product(sku="DUP")
    again = await http.post(URL, json=product_body(sku="DUP", slug="x"), headers=headers(backend))
    assert again.status_code == 409
    assert again.json()["errors"][0]["title"] == "Conflict"
    assert await count_rows(Product) == 1
    elsewhere = await http.post(URL, json=product_body(sku="DUP"), headers=headers(other_backend))
    assert elsewhere.status_code == 201


async def test_update_to_a_taken_sku_is_409_and_changes_nothing(
    http: httpx.AsyncClient, backend: str, make_product: MakeProduct
) -> None:
    await make_product(sku="A")
    second = await make_product(sku="B")
    body = {"data": {"type": "product", "sku": "A", "name": "Renamed"}}
    response = await http.put(f"{URL}/{second['id']}", json=body, headers=headers(backend))
    assert response.status_code == 409
    unchanged = await http.get(f"{URL}/{second['id']}", headers=headers(backend))
    assert unchanged.json()["data"]["sku"] == "B"
    assert unchanged.json()["data"]["name"] == "Product B"


async def test_partial_update(
    http: httpx.AsyncClient, backend: str, make_product: MakeProduct
) -> None:
    product = await make_product(sku="UPD")
    price = [{"amount": 500, "currency": "EUR", "includes_tax": False}]
    body = {"data": {"type": "product", "price": price, "status": "draft", "name": None}}
    response = await http.put(f"{URL}/{product['id']}", json=body, headers=headers(backend))
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["price"] == price and data["status"] == "draft"
    assert data["name"] == product["name"] and data["sku"] == "UPD"


async def test_delete_removes_the_product_and_its_cart_items(
    http: httpx.AsyncClient, backend: str, storefront: str, make_product: MakeProduct
) -> None:
    product = await make_product()
    assert (await add_to_cart(http, storefront, "cart-1", product["id"])).status_code == 201
    deleted = await http.delete(f"{URL}/{product['id']}", headers=headers(backend))
    assert deleted.status_code == 204
    assert (await http.get(f"{URL}/{product['id']}", headers=headers(backend))).status_code == 404
    items = await http.get("/v2/carts/cart-1/items", headers=headers(storefront))
    assert items.json()["data"] == []


async def test_another_stores_product_is_404(
    http: httpx.AsyncClient, other_backend: str, make_product: MakeProduct
) -> None:
    product = await make_product()
    url = f"{URL}/{product['id']}"
    assert (await http.get(url, headers=headers(other_backend))).status_code == 404
    body = {"data": {"type": "product", "name": "Stolen"}}
    assert (await http.put(url, json=body, headers=headers(other_backend))).status_code == 404
    assert (await http.delete(url, headers=headers(other_backend))).status_code == 404
    listed = await http.get(URL, headers=headers(other_backend))
    assert listed.json()["data"] == []


@pytest.mark.parametrize(
    "fields",
    [
        {"type": "products"},
        {"name": ""},
        {"sku": "x" * 65},
        {"price": [{"amount": 19.99, "currency": "USD"}]},
        {"price": [{"amount": "1999", "currency": "USD"}]},
        {"price": [{"amount": -1, "currency": "USD"}]},
        {"price": [{"amount": 1, "currency": "usd"}]},
        {"price": [{"amount": 1, "currency": "USD"}, {"amount": 2, "currency": "USD"}]},
        {"price": [{"amount": 1, "currency": "USD", "includes_tax": "yes"}]},
        {"status": "published"},
        {"commodity_type": "service"},
        # PostgreSQL refuses NUL in text: a 400 here, never a 500 from the database.
        {"name": "T\x00shirt"},
        {"sku": "\x00"},
        {"description": "fine\x00"},
        # Strict types: no "yes" for true, no 1 for true.
        {"manage_stock": "yes"},
        {"manage_stock": 1},
    ],
)
async def test_bad_product_is_400(
    http: httpx.AsyncClient, backend: str, count_rows: CountRows, fields: dict[str, Any]
) -> None:
    response = await http.post(URL, json=product_body(**fields), headers=headers(backend))
    assert response.status_code == 400
    assert response.json()["errors"][0]["status"] == 400
    assert await count_rows(Product) == 0


async def test_body_without_data_is_400(http: httpx.AsyncClient, backend: str) -> None:
    response = await http.post(URL, json=product_body()["data"], headers=headers(backend))
    assert response.status_code == 400


@pytest.mark.parametrize(
    ("filter_", "skus"),
    [
        ("eq(sku,B)", ["B"]),
        ("eq(status,draft)", ["C"]),
        ("eq(commodity_type,digital)", ["B", "C"]),
        ("like(name,*duct b)", ["B"]),
        ("in(slug,a,c)", ["A", "C"]),
        ("eq(commodity_type,digital):eq(status,live)", ["B"]),
    ],
)
async def test_list_is_filtered(
    http: httpx.AsyncClient,
    backend: str,
    make_product: MakeProduct,
    filter_: str,
    skus: list[str],
) -> None:
    await make_product(sku="A")
    await make_product(sku="B", commodity_type="digital")
    await make_product(sku="C", commodity_type="digital", status="draft")
    response = await http.get(URL, params={"filter": filter_}, headers=headers(backend))
    assert response.status_code == 200, response.text
    assert [p["sku"] for p in response.json()["data"]] == skus


async def test_list_is_paginated(
    http: httpx.AsyncClient, backend: str, make_product: MakeProduct
) -> None:
    for sku in "ABC":
        await make_product(sku=sku)
    params = {"page[limit]": "2", "page[offset]": "2"}
    response = await http.get(URL, params=params, headers=headers(backend))
    body = response.json()
    assert [p["sku"] for p in body["data"]] == ["C"]
    assert body["meta"]["results"]["total"] == 3
    assert body["meta"]["page"] == {"limit": 2, "offset": 2, "current": 2, "total": 2}
    assert body["links"]["next"] is None and body["links"]["prev"] is not None


@pytest.mark.parametrize(
    "params",
    [
        {"filter": "eq(price,1)"},
        {"filter": "eq(status,live"},
        {"filter": "eq(status,live);eq(sku,A)"},
        {"filter": "eq(name,T\x00shirt)"},
        {"filter": "like(sku,\x00*)"},
        {"page[limit]": "0"},
        {"page[offset]": "-1"},
        # Digits that are not ASCII: `str.isdigit()` says yes, `int()` refuses some of them.
        {"page[limit]": "\u00b2"},
        {"page[limit]": "\u0661\u0662"},
        {"page[offset]": "9" * 5000},
        {"page[offset]": "+5"},
        {"page[offset]": " 5"},
    ],
)
async def test_bad_query_is_400(
    http: httpx.AsyncClient, storefront: str, params: dict[str, str]
) -> None:
    response = await http.get(URL, params=params, headers=headers(storefront))
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["status"] == 400
