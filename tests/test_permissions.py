"""The permission table of CONTRACT §4, row by row, for every kind of token.

Each row of ROWS is a route and what each token gets: an implicit token, the same token with
the logged-in customer's token on their own resources (`customer`) and on another customer's
(`other`), and a client_credentials token (`backend`). None is a cell the table leaves empty.
Refusals change nothing in the database; successful writes change something, reads nothing.
"""

import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import FastAPI
from sqlalchemy import update

from app.oauth.stores import Store
from app.runtime.db import Database

from .conftest import MakeClient
from .customers.shoppers import backend_token, headers
from .store.conftest import ADDRESS, product_body
from .world import (
    CART,
    Kind,
    Owner,
    World,
    assert_errors,
    build_world,
    checkout_body,
    snapshot,
)

Body = Callable[[dict[str, str]], dict[str, Any]]  # from `World.ids`
Check = Callable[[World, Kind, httpx.Response], None]


def ids_of(response: httpx.Response) -> set[str]:
    return {row["id"] for row in response.json()["data"]}


def only_own_orders(world: World, kind: Kind, response: httpx.Response) -> None:
    everyone = {world.own.order, world.other.order}
    assert ids_of(response) == ({world.own.order} if kind == "customer" else everyone)


def all_customers(world: World, kind: Kind, response: httpx.Response) -> None:
    assert ids_of(response) == {world.own.customer, world.other.customer}


def live_unless_backend(world: World, kind: Kind, response: httpx.Response) -> None:
    everything = {world.product, world.draft}
    assert ids_of(response) == (everything if kind == "backend" else {world.product})


def customer_of_order(response: httpx.Response) -> str | None:
    owner: str | None = response.json()["data"]["relationships"]["customer"]["data"]["id"]
    return owner


def guest_unless_logged_in(world: World, kind: Kind, response: httpx.Response) -> None:
    # A logged-in shopper's order is theirs even when guest details are sent.
    expected = world.own.customer if kind == "customer" else None
    assert customer_of_order(response) == expected


def ordered_by_own(world: World, kind: Kind, response: httpx.Response) -> None:
    assert customer_of_order(response) == world.own.customer


async def disable_signup(database: Database) -> None:
    async with database.sessions() as session:
        await session.execute(update(Store).values(allow_customer_signup=False))
        await session.commit()


def signup(ids: dict[str, str]) -> dict[str, Any]:
    email = f"new-{uuid.uuid4().hex}@example.com"
    return {"data": {"type": "customer", "name": "New", "email": email, "password": "x" * 12}}


def address(ids: dict[str, str]) -> dict[str, Any]:
    return {"data": {"type": "address", **ADDRESS}}


def renamed(kind: str) -> Body:
    return lambda ids: {"data": {"type": kind, "name": "Renamed"}}


def new_product(ids: dict[str, str]) -> dict[str, Any]:
    return product_body(sku="NEW")


def completed(ids: dict[str, str]) -> dict[str, Any]:
    return {"data": {"type": "order", "status": "complete"}}


def cart_item(ids: dict[str, str]) -> dict[str, Any]:
    return {"data": {"type": "cart_item", "id": ids["product"], "quantity": 2}}


def quantity(ids: dict[str, str]) -> dict[str, Any]:
    return {"data": {"type": "cart_item", "quantity": 3}}


def as_guest(ids: dict[str, str]) -> dict[str, Any]:
    return checkout_body({"email": "guest@example.com", "name": "Guest"})


def naming(ids: dict[str, str]) -> dict[str, Any]:
    return checkout_body({"id": ids["customer"]})


@dataclass(frozen=True)
class Row:
    """A route of the table; path placeholders come from `World.ids`."""

    method: str
    path: str
    implicit: int | None
    customer: int | None  # the logged-in customer's own resource
    other: int | None  # another customer's resource, same customer token
    backend: int | None
    body: Body | None = None
    check: Check | None = None
    prepare: Callable[[Database], Awaitable[None]] | None = None
    note: str = ""


@dataclass(frozen=True)
class Case:
    row: Row
    kind: Kind
    owner: Owner
    status: int

    @property
    def id(self) -> str:
        column = "other" if self.owner == "other" else self.kind
        note = f" ({self.row.note})" if self.row.note else ""
        return f"{self.row.method} {self.row.path}{note} [{column}]"

    def request(
        self, world: World, *, unknown: bool = False
    ) -> tuple[str, str, dict[str, Any] | None]:
        """The request; with `unknown`, for ids of the owner's that exist nowhere."""
        ids = world.ids(self.owner)
        if unknown:
            ids |= {name: str(uuid.uuid4()) for name in UNKNOWABLE}
        body = self.row.body(ids) if self.row.body else None
        return self.row.method, self.row.path.format(**ids), body


UNKNOWABLE = ("customer", "address", "order", "other_address", "draft")
PRODUCTS = "/v2/products"
PRODUCT = "/v2/products/{product}"
CUSTOMERS = "/v2/customers"
CUSTOMER = "/v2/customers/{customer}"
ADDRESSES = "/v2/customers/{customer}/addresses"
ADDRESS_URL = ADDRESSES + "/{address}"
CART_URL = "/v2/carts/{cart}"
ITEMS = "/v2/carts/{cart}/items"
CHECKOUT = "/v2/carts/{cart}/checkout"
ORDERS = "/v2/orders"
ORDER = "/v2/orders/{order}"

# fmt: off
ROWS = [
    #   method    path                     implicit customer other backend
    Row("GET",    PRODUCTS,                200,     200,     None,  200, check=live_unless_backend),
    Row("GET",    "/v2/products/{draft}",  404,     404,     None,  200, note="a draft"),
    Row("GET",    PRODUCT,                 200,     200,     None,  200),
    Row("POST",   PRODUCTS,                403,     403,     None,  201, new_product),
    Row("PUT",    PRODUCT,                 403,     403,     None,  200, renamed("product")),
    Row("DELETE", PRODUCT,                 403,     403,     None,  204),
    Row("POST",   CUSTOMERS,               201,     None,    None,  201, signup, note="sign-up"),
    Row("POST",   CUSTOMERS,               403,     None,    None,  201, signup,
        prepare=disable_signup, note="sign-up, disabled for the store"),
    Row("GET",    CUSTOMERS,               403,     403,     None,  200, check=all_customers),
    Row("GET",    CUSTOMER,                403,     200,     404,   200),
    Row("PUT",    CUSTOMER,                403,     200,     404,   200, renamed("customer")),
    Row("DELETE", CUSTOMER,                403,     403,     403,   204),
    Row("GET",    ADDRESSES,               403,     200,     404,   200),
    Row("GET",    ADDRESS_URL,             403,     200,     404,   200),
    Row("POST",   ADDRESSES,               403,     201,     404,   201, address),
    Row("PUT",    ADDRESS_URL,             403,     200,     404,   200, renamed("address")),
    Row("DELETE", ADDRESS_URL,             403,     204,     404,   204),
    # Another customer's address under one's own customer id is no more visible.
    Row("GET",    ADDRESSES + "/{other_address}", 403, 404,  None,  404),
    Row("GET",    CART_URL,                200,     200,     None,  200),
    Row("GET",    ITEMS,                   200,     200,     None,  200),
    Row("POST",   ITEMS,                   201,     201,     None,  201, cart_item),
    Row("PUT",    ITEMS + "/{item}",       200,     200,     None,  200, quantity),
    Row("DELETE", ITEMS + "/{item}",       200,     200,     None,  200),
    Row("POST",   CHECKOUT,                201,     201,     None,  201, as_guest,
        check=guest_unless_logged_in, note="guest details"),
    # Naming a customer other than oneself needs `write`: 403 whether or not the id exists.
    Row("POST",   CHECKOUT,                403,     201,     403,   201, naming,
        check=ordered_by_own, note="naming a customer"),
    Row("GET",    ORDERS,                  403,     200,     None,  200, check=only_own_orders),
    Row("GET",    ORDER,                   403,     200,     404,   200),
    Row("GET",    ORDER + "/items",        403,     200,     404,   200),
    Row("PUT",    ORDER,                   403,     403,     403,   200, completed),
]
# fmt: on


def cases() -> list[Case]:
    found = []
    for row in ROWS:
        cells: list[tuple[Kind, Owner, int | None]] = [
            ("implicit", "own", row.implicit),
            ("customer", "own", row.customer),
            ("customer", "other", row.other),
            ("backend", "own", row.backend),
        ]
        found += [Case(row, kind, owner, status) for kind, owner, status in cells if status]
    return found


CASES = cases()


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
async def test_permission_table(
    case: Case,
    http: httpx.AsyncClient,
    make_client: MakeClient,
    database: Database,
    default_store: Store,
) -> None:
    world = await build_world(http, make_client, database, default_store.id)
    if case.row.prepare is not None:
        await case.row.prepare(database)
    method, url, body = case.request(world)
    before = await snapshot(database)
    response = await http.request(method, url, json=body, headers=world.headers(case.kind))
    after = await snapshot(database)
    assert response.status_code == case.status, response.text
    if case.status == 403:
        assert 'error="insufficient_scope"' in response.headers["www-authenticate"]
    if case.status >= 400:
        assert_errors(response, case.status)
        assert after == before, "a refused request changed the database"
        await assert_no_id_confirmed(http, world, case, response)
        return
    assert (after == before) == (method == "GET"), "reads change nothing, writes something"
    if case.row.check is not None:
        case.row.check(world, case.kind, response)


async def assert_no_id_confirmed(
    http: httpx.AsyncClient, world: World, case: Case, refused: httpx.Response
) -> None:
    """A refusal of another's resource reads exactly as one of a resource that does not exist."""
    if case.owner != "other" and case.status != 404:
        return
    method, url, body = case.request(world, unknown=True)
    unknown = await http.request(method, url, json=body, headers=world.headers(case.kind))
    assert (unknown.status_code, unknown.json()) == (refused.status_code, refused.json())


# Unusable bearer tokens, on one route per router (and checkout).

REPRESENTATIVE_ROUTES = [
    ("POST", PRODUCTS),
    ("GET", "/v2/customers/{id}"),
    ("POST", "/v2/customers/{id}/addresses"),
    ("POST", f"/v2/carts/{CART}/items"),
    ("POST", f"/v2/carts/{CART}/checkout"),
    ("GET", "/v2/orders"),
]
BODIES: dict[str, dict[str, Any]] = {
    PRODUCTS: product_body(),
    "/v2/customers/{id}/addresses": {"data": {"type": "address", **ADDRESS}},
    f"/v2/carts/{CART}/items": {"data": {"type": "cart_item", "id": str(uuid.uuid4())}},
    f"/v2/carts/{CART}/checkout": checkout_body({"email": "g@example.com", "name": "G"}),
}


async def signed(app: FastAPI, claims: dict[str, Any]) -> str:
    """An access token signed with the server's own active key."""
    key = await app.state.keyring.active_key()
    token: str = key.signer.sign(claims, typ="at+jwt")
    return token


def forged(token: str) -> str:
    """The token's claims signed with a key of our own, under the server's key id."""
    claims = jwt.decode(token, options={"verify_signature": False})
    kid = jwt.get_unverified_header(token)["kid"]
    key = ec.generate_private_key(ec.SECP256R1())
    return jwt.encode(claims, key, algorithm="ES256", headers={"kid": kid, "typ": "at+jwt"})


@pytest.fixture
async def bad_bearers(
    app: FastAPI, http: httpx.AsyncClient, make_client: MakeClient
) -> dict[str, str]:
    token = await backend_token(http, await make_client(name="backend"))
    claims = jwt.decode(token, options={"verify_signature": False})
    now = int(time.time())
    control = await signed(app, {**claims, "iat": now, "exp": now + 3600})
    assert (await http.get(PRODUCTS, headers=headers(control))).status_code == 200
    return {
        "expired": await signed(app, {**claims, "iat": now - 7200, "exp": now - 3600}),
        "forged": forged(token),
        "foreign issuer": await signed(app, {**claims, "iss": "https://keyhouse.example"}),
    }


@pytest.mark.parametrize("bearer", [None, "expired", "forged", "foreign issuer"])
@pytest.mark.parametrize(("method", "path"), REPRESENTATIVE_ROUTES)
async def test_unusable_bearer_is_401(
    http: httpx.AsyncClient,
    database: Database,
    bad_bearers: dict[str, str],
    method: str,
    path: str,
    bearer: str | None,
) -> None:
    sent = {} if bearer is None else headers(bad_bearers[bearer])
    url = path.format(id=uuid.uuid4())
    before = await snapshot(database)
    response = await http.request(method, url, json=BODIES.get(path), headers=sent)
    assert_errors(response, 401)
    challenge = response.headers["www-authenticate"]
    if bearer is None:
        assert challenge == 'Bearer realm="keyhouse"'
    else:
        assert challenge.startswith("Bearer realm=") and 'error="invalid_token"' in challenge
    assert await snapshot(database) == before
