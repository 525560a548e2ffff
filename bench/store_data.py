"""The store the `protected` scenario reads: live products, a shopper and an account with orders.

Made through Keyhouse's own API and command line, as a storefront and a backend would: 30 live
products (`POST /v2/products` with a backend token), a customer (`keyhouse customers create`)
who logs in (`POST /v2/customers/tokens`) and checks out 25 carts of two products each, and an
account member (bench/account_data.py) who logs in (`POST /v2/account-members/tokens`) and
checks out 25 such carts for their account, so that one product, a page of 25 products, a page
of a shopper's 25 orders and a page of an account's 25 orders are there to read.
"""

import json
import secrets
from dataclasses import dataclass
from typing import Any

import jwt
from account_data import ACCOUNT_TOKEN_HEADER, account_token, make_account_member
from harness import Deployment, fail, issue_token, keyhouse, send_json

PRODUCTS_PATH = "/v2/products"
LOGIN_PATH = "/v2/customers/tokens"
PRODUCT_COUNT = 30
ORDER_COUNT = 25
READER_EMAIL = "bench-reader@example.com"  # not the logins scenario's shopper
MEMBER_USERNAME = "bench-buyer@example.com"  # nor its account member
CONTACT = {"name": "Bench Buyer", "email": MEMBER_USERNAME}  # who placed an account's order
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
    account_id: str
    account_token: str  # the account member's for their account, sent beside it too


def _customer(deployment: Deployment, bearer: str) -> tuple[str, str]:
    """A customer made on the command line, and the customer token of their login."""
    password = secrets.token_urlsafe(18)
    output = keyhouse(
        ["customers", "create", "--email", READER_EMAIL, "--password-stdin", "--json"],
        deployment.env,
        stdin=password + "\n",
    )
    login = {"data": {"type": "token", "email": READER_EMAIL, "password": password}}
    data = send_json(deployment.keyhouse.port, "POST", LOGIN_PATH, login, {"Authorization": bearer})
    customer_id, token = json.loads(output).get("id"), data["data"].get("token")
    if not isinstance(customer_id, str) or not isinstance(token, str):
        fail(f"no customer or no customer token: {output} {data}")
    return customer_id, token


def _check_out(
    port: int, cart: str, products: list[str], headers: dict[str, str], contact: bool
) -> None:
    for product_id in products:
        item = {"data": {"type": "cart_item", "id": product_id, "quantity": 1}}
        send_json(port, "POST", f"/v2/carts/{cart}/items", item, headers)
    addresses: dict[str, Any] = {"billing_address": ADDRESS, "shipping_address": ADDRESS}
    body = {"data": {**addresses, **({"contact": CONTACT} if contact else {})}}
    send_json(port, "POST", f"/v2/carts/{cart}/checkout", body, headers)


def make_products(port: int, backend: str) -> list[str]:
    """`PRODUCT_COUNT` live products, made with `backend` (a client_credentials bearer header);
    their ids."""
    headers = {"Authorization": backend}
    return [
        send_json(port, "POST", PRODUCTS_PATH, {"data": product_body(number)}, headers)["data"][
            "id"
        ]
        for number in range(1, PRODUCT_COUNT + 1)
    ]


def _orders(port: int, ids: list[str], cart: str, headers: dict[str, str], contact: bool) -> None:
    """`ORDER_COUNT` checkouts of two products each, carts named `cart`-0, -1, …"""
    for number in range(ORDER_COUNT):
        pair = [ids[number % len(ids)], ids[(number + 1) % len(ids)]]
        _check_out(port, f"{cart}-{number}", pair, headers, contact)


def make_store_data(deployment: Deployment) -> StoreData:
    port, client = deployment.keyhouse.port, deployment.client
    backend = f"Bearer {issue_token(port, 'client_credentials', client)}"
    implicit_token = issue_token(port, "implicit", client)
    ids = make_products(port, backend)
    bearer = f"Bearer {implicit_token}"
    customer_id, customer_token = _customer(deployment, bearer)
    shopper = {"Authorization": bearer, "X-Moltin-Customer-Token": customer_token}
    _orders(port, ids, "bench-reads", shopper, contact=False)
    member = make_account_member(port, backend, MEMBER_USERNAME)
    member_token = account_token(port, bearer, member)
    buyer = {"Authorization": bearer, ACCOUNT_TOKEN_HEADER: member_token}
    _orders(port, ids, "bench-account-reads", buyer, contact=True)
    # The store the client (and so every token above) belongs to, as tokens name it.
    claims = jwt.decode(implicit_token, options={"verify_signature": False})
    return StoreData(
        claims["store_id"],
        ids,
        customer_id,
        implicit_token,
        customer_token,
        member.account_id,
        member_token,
    )
