"""The official commerce JavaScript SDKs, unmodified, run the whole storefront story (§3, §4).

`tests/js/sdk_store.mjs` drives `@moltin/sdk` or `@elasticpath/js-sdk` under Node against the
live server: a backend gateway (client_credentials) creates a live product; a storefront
gateway (implicit) lists and reads it, signs a shopper up, logs them in, saves and lists an
address with the customer token, fills a cart, checks out, and reads the shopper's orders,
filtered and one by one. The script reports what it saw and what the SDK sent; every call is
the SDK's own.
"""

import uuid
from typing import Any

import pytest
from sqlalchemy import select

from app.oauth.clients import CreatedClient
from app.runtime.db import Database
from app.store.orders import Order, OrderItem

from ..conftest import LiveServer, MakeClient
from ..node import SDKS, node_with_sdks, run_script

pytestmark = pytest.mark.node

EMAIL = "ron.sdk@example.com"
PASSWORD = "correct horse battery staple"
SKU = "SDK-TEE"
CART_REF = "sdk-cart-1"
UNIT_AMOUNT = 1999
QUANTITY = 2
UNIT_PRICE = {"amount": UNIT_AMOUNT, "currency": "USD", "includes_tax": True}
CUSTOMER_TOKEN_HEADER = "x-moltin-customer-token"


async def run_story(
    node: str, server: LiveServer, sdk: str, storefront: CreatedClient, backend: CreatedClient
) -> dict[str, Any]:
    assert backend.client_secret is not None
    environment = {
        "KEYHOUSE_URL": server.url,
        "SDK": sdk,
        "PUBLIC_CLIENT_ID": storefront.client.id,
        "BACKEND_CLIENT_ID": backend.client.id,
        "BACKEND_CLIENT_SECRET": backend.client_secret,
        "CUSTOMER_EMAIL": EMAIL,
        "CUSTOMER_PASSWORD": PASSWORD,
        "PRODUCT_SKU": SKU,
        "CART_REF": CART_REF,
    }
    report: dict[str, Any] = await run_script(node, "sdk_store.mjs", environment)
    return report


def header(headers: dict[str, str], name: str) -> str | None:
    return next((v for k, v in headers.items() if k.lower() == name.lower()), None)


def assert_refused_403(report: dict[str, Any], name: str) -> None:
    """A valid storefront token without the right to this: 403 `insufficient_scope`, which the
    SDK rejects at once (it re-authenticates and retries only on 401 and 429)."""
    refusal = report[name]
    assert [r["status"] for r in report["steps"][name]] == [403]
    assert refusal["status"] == 403
    assert refusal["body"]["errors"][0]["status"] == 403
    assert 'error="insufficient_scope"' in (refusal["www_authenticate"] or "")


def assert_catalogue(report: dict[str, Any]) -> str:
    product_id: str = report["product"]["id"]
    assert report["product"] == {"id": product_id, "status": "live", "sku": SKU}
    assert product_id in report["storefront_products"]["ids"]
    assert report["storefront_products"]["total"] == 1
    seen = report["storefront_product"]
    assert seen["id"] == product_id and seen["status"] == "live"
    assert seen["price"] == [UNIT_PRICE]
    return product_id


def assert_customer(report: dict[str, Any]) -> str:
    customer_id: str = report["customer"]["id"]
    assert report["customer"] == {
        "id": customer_id,
        "type": "customer",
        "email": EMAIL,
        "has_password": False,
    }
    token = report["customer_token"]
    assert token["type"] == "token"
    assert token["customer_id"] == customer_id
    assert isinstance(token["token"], str) and token["token"].count(".") == 2
    assert isinstance(token["expires"], int) and token["expires_in"] == 86400
    # Customers.Update of the name with the shopper's own token; not of the password.
    assert report["customer_update"] == {"name": "Ronald Swanson", "email": EMAIL}
    refusal = report["customer_password_update"]
    assert [r["status"] for r in report["steps"]["customer_password_update"]] == [403]
    assert "PUT /v2/customers/{id}/password" in refusal["body"]["errors"][0]["detail"]
    address = report["address"]
    assert address["type"] == "address" and address["line_1"] == "1 Sun Street"
    assert report["addresses"] == {"ids": [address["id"]], "total": 1}
    assert report["address_get"] == {"id": address["id"], "line_1": "1 Sun Street"}
    return customer_id


def assert_cart(report: dict[str, Any], product_id: str) -> None:
    value = {"amount": UNIT_AMOUNT * QUANTITY, "currency": "USD", "includes_tax": True}
    for items in (report["cart_add_response"], report["cart_items"]):
        [item] = items["data"]
        assert item["type"] == "cart_item" and item["product_id"] == product_id
        assert item["sku"] == SKU and item["quantity"] == QUANTITY
        assert item["unit_price"] == UNIT_PRICE
        assert item["value"] == value
        assert items["meta"]["display_price"]["with_tax"]["amount"] == UNIT_AMOUNT * QUANTITY
    assert report["cart"]["id"] == CART_REF
    assert report["cart"]["meta"]["display_price"]["with_tax"]["amount"] == UNIT_AMOUNT * QUANTITY


def assert_orders(report: dict[str, Any], customer_id: str) -> str:
    # Cart.Checkout(customerId, …) alone sends no customer token: naming a customer is refused.
    assert_refused_403(report, "checkout_without_customer_token")
    order = report["order"]
    order_id: str = order["id"]
    assert order["type"] == "order" and order["status"] == "incomplete"
    assert order["payment"] == "unpaid" and order["shipping"] == "unfulfilled"
    assert order["relationships"]["customer"]["data"]["id"] == customer_id
    assert order["customer"] == {"name": "Ron Swanson", "email": EMAIL}
    assert order["billing_address"]["line_1"] == "1 Sun Street"
    assert order["meta"]["display_price"]["with_tax"]["amount"] == UNIT_AMOUNT * QUANTITY
    assert len(order["relationships"]["items"]["data"]) == 1
    assert report["cart_items_after_checkout"] == 0
    assert report["orders_incomplete"] == {
        "ids": [order_id],
        "statuses": ["incomplete"],
        "customer_ids": [customer_id],
        "total": 1,
    }
    assert report["orders_complete"] == {"ids": [], "total": 0}
    assert report["order_get"] == {
        "id": order_id,
        "status": "incomplete",
        "customer_id": customer_id,
    }
    assert_refused_403(report, "orders_without_customer_token")
    assert_refused_403(report, "order_get_without_customer_token")
    assert report["backend_order"] == {"id": order_id, "customer_id": customer_id}
    return order_id


def assert_sent_headers(report: dict[str, Any], order_id: str) -> None:
    """The customer token went beside the storefront's bearer token, on exactly those calls."""
    customer_token = report["customer_token"]["token"]
    bearer = f"Bearer {report['credentials']['storefront']['access_token']}"
    sent = report["customer_token_requests"]
    calls = [(r["method"], r["path"], r["query"]) for r in sent]
    customer_id = report["customer"]["id"]
    addresses = f"/v2/customers/{customer_id}/addresses"
    profile = f"/v2/customers/{customer_id}"
    assert calls == [
        ("PUT", profile, ""),  # renamed
        ("PUT", profile, ""),  # and back
        ("PUT", profile, ""),  # a new password: refused
        ("POST", addresses, ""),
        ("GET", addresses, ""),
        ("GET", f"{addresses}/{report['address']['id']}", ""),
        ("POST", f"/v2/carts/{CART_REF}/checkout", ""),
        ("GET", "/v2/orders", "?filter=eq(status,incomplete)"),
        ("GET", "/v2/orders", "?filter=eq(status,complete)"),
        ("GET", f"/v2/orders/{order_id}", ""),
    ]
    for request in sent:
        refused = request is sent[2]
        assert request["status"] == 403 if refused else request["status"] in (200, 201), request
        assert header(request["headers"], CUSTOMER_TOKEN_HEADER) == customer_token
        assert header(request["headers"], "Authorization") == bearer
        assert header(request["headers"], "Content-Type") == "application/json"
    # One token per gateway, each used for that gateway's calls only.
    assert report["token_requests"] == {"storefront": 1, "backend": 1}
    assert report["credentials"]["storefront"]["identifier"] == "implicit"
    assert report["credentials"]["backend"]["identifier"] == "client_credentials"
    for request in report["requests"]:
        if not request["is_token_request"]:
            gateway = report["credentials"][request["gateway"]]
            assert request["authorization"] == f"Bearer {gateway['access_token']}"


async def assert_order_row(database: Database, order_id: str, customer_id: str) -> None:
    async with database.sessions() as session:
        order = await session.get(Order, uuid.UUID(order_id))
        assert order is not None
        assert order.customer_id == uuid.UUID(customer_id)
        assert order.status == "incomplete"
        assert order.total_amount == UNIT_AMOUNT * QUANTITY
        query = select(OrderItem).where(OrderItem.order_id == order.id)
        [item] = list(await session.scalars(query))
        assert item.sku == SKU and item.quantity == QUANTITY


@pytest.mark.parametrize("sdk", SDKS)
async def test_sdk_storefront_story(
    live_server: LiveServer, make_client: MakeClient, database: Database, sdk: str
) -> None:
    node = node_with_sdks()
    storefront = await make_client(name=f"{sdk} storefront", public=True)
    backend = await make_client(name=f"{sdk} backend")
    report = await run_story(node, live_server, sdk, storefront, backend)
    assert report["sdk"] == sdk
    product_id = assert_catalogue(report)
    customer_id = assert_customer(report)
    assert_cart(report, product_id)
    order_id = assert_orders(report, customer_id)
    assert_sent_headers(report, order_id)
    await assert_order_row(database, order_id, customer_id)
