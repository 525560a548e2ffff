"""The store the `protected` scenario reads: live products, and a shopper with orders.

Made through Keyhouse's own API and command line, as a storefront and a backend would: 30 live
products (`POST /v2/products` with a backend token), a customer (`keyhouse customers create`)
who logs in (`POST /v2/customers/tokens`) and checks out 25 carts of two products each, so that
one product, a page of 25 products and a page of 25 orders are there to read.
"""

import json
import secrets
from dataclasses import dataclass
from typing import Any

import jwt
from harness import Deployment, fail, issue_token, keyhouse, request

PRODUCTS_PATH = "/v2/products"
LOGIN_PATH = "/v2/customers/tokens"
PRODUCT_COUNT = 30
ORDER_COUNT = 25
READER_EMAIL = "bench-reader@example.com"  # not the logins scenario's shopper
ADDRESS = {
    "first_name": "Ron",
    "last_name": "Swanson",
    "line_1": "1 Sun Street",
    "city": "London",
    "postcode": "E1 6AN",
    "country": "GB",
}


def product_body(number: int) -> dict[str, Any]:
    return {
        "type": "product",
        "name": f"Benchmark kettle {number}",
        "slug": f"benchmark-kettle-{number}",
        "sku": f"BENCH-KETTLE-{number}",
        "description": "A product for the protected-read benchmark.",
        "manage_stock": False,
        "price": [
            {"amount": 4999, "currency": "USD", "includes_tax": True},
            {"amount": 4599, "currency": "EUR", "includes_tax": True},
        ],
        "status": "live",  # an implicit (read-only) token sees live products only
        "commodity_type": "physical",
    }


@dataclass(frozen=True, slots=True)
class StoreData:
    """What was made, and the tokens that read it."""

    store_id: str
    product_ids: list[str]
    customer_id: str
    implicit_token: str  # a storefront's access token (`read`)
    customer_token: str  # the shopper's, sent beside the implicit token


def _send(port: int, method: str, path: str, body: Any, headers: dict[str, str]) -> Any:
    sent = {**headers, "Content-Type": "application/json", "Accept": "application/json"}
    status, _, answer = request(port, method, path, json.dumps(body).encode(), headers=sent)
    if status not in (200, 201):
        fail(f"Keyhouse answered {status} to {method} {path}: {answer[:300]!r}")
    return json.loads(answer)


def _customer(deployment: Deployment, bearer: str) -> tuple[str, str]:
    """A customer made on the command line, and the customer token of their login."""
    password = secrets.token_urlsafe(18)
    output = keyhouse(
        ["customers", "create", "--email", READER_EMAIL, "--password-stdin", "--json"],
        deployment.env,
        stdin=password + "\n",
    )
    login = {"data": {"type": "token", "email": READER_EMAIL, "password": password}}
    data = _send(deployment.keyhouse.port, "POST", LOGIN_PATH, login, {"Authorization": bearer})
    customer_id, token = json.loads(output).get("id"), data["data"].get("token")
    if not isinstance(customer_id, str) or not isinstance(token, str):
        fail(f"no customer or no customer token: {output} {data}")
    return customer_id, token


def _check_out(port: int, cart: str, products: list[str], headers: dict[str, str]) -> None:
    for product_id in products:
        item = {"data": {"type": "cart_item", "id": product_id, "quantity": 1}}
        _send(port, "POST", f"/v2/carts/{cart}/items", item, headers)
    addresses = {"data": {"billing_address": ADDRESS, "shipping_address": ADDRESS}}
    _send(port, "POST", f"/v2/carts/{cart}/checkout", addresses, headers)


def make_store_data(deployment: Deployment) -> StoreData:
    port, client = deployment.keyhouse.port, deployment.client
    backend = {"Authorization": f"Bearer {issue_token(port, 'client_credentials', client)}"}
    implicit_token = issue_token(port, "implicit", client)
    products = [
        _send(port, "POST", PRODUCTS_PATH, {"data": product_body(number)}, backend)["data"]
        for number in range(1, PRODUCT_COUNT + 1)
    ]
    bearer = f"Bearer {implicit_token}"
    customer_id, customer_token = _customer(deployment, bearer)
    shopper = {"Authorization": bearer, "X-Moltin-Customer-Token": customer_token}
    ids = [product["id"] for product in products]
    for number in range(ORDER_COUNT):
        pair = [ids[number % len(ids)], ids[(number + 1) % len(ids)]]
        _check_out(port, f"bench-reads-{number}", pair, shopper)
    # The store the client (and so every token above) belongs to, as tokens name it.
    claims = jwt.decode(implicit_token, options={"verify_signature": False})
    return StoreData(claims["store_id"], ids, customer_id, implicit_token, customer_token)
