"""A small store built through the HTTP API, for the permission and isolation tables (§4).

Two customers with an address and an order each, a live product, and a cart with one item.
Customers are stored with one password hash computed once per run (sign-up has rows of its
own in the table); only the first logs in, so a world costs one argon2 verification.
"""

import functools
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx
from sqlalchemy import select

from app.customers.customers import Customer
from app.runtime.db import Database
from app.runtime.models import Base
from app.runtime.passwords import password_context

from .accounts.realm import (
    add_member,
    make_account,
    make_member,
    make_profile,
    passwords_url,
    realm_id,
)
from .conftest import MakeClient
from .customers.shoppers import PASSWORD, backend_token, headers, implicit_token, log_in
from .store.conftest import ADDRESS, add_to_cart, product_body

Kind = Literal["implicit", "customer", "backend"]
Owner = Literal["own", "other"]
Snapshot = dict[str, list[tuple[Any, ...]]]
CART = "world-cart"


@dataclass(frozen=True)
class Holdings:
    """One customer and what they own."""

    customer: str
    address: str
    order: str


@dataclass(frozen=True)
class World:
    """One store's tokens and rows; `own` is the logged-in customer, `other` is not."""

    backend: str
    storefront: str
    customer_token: str
    product: str
    draft: str  # a product storefronts do not see
    item: str  # the one item of cart CART
    own: Holdings
    other: Holdings
    # The ids of the store's account realm and what is in it, by path parameter name.
    accounts: dict[str, str] = field(default_factory=dict)

    def headers(self, kind: Kind) -> dict[str, str]:
        if kind == "backend":
            return headers(self.backend)
        token = self.customer_token if kind == "customer" else None
        return headers(self.storefront, token)

    def ids(self, owner: Owner) -> dict[str, str]:
        """Values for a path template: `owner`'s customer, address and order, and the rest."""
        held = self.own if owner == "own" else self.other
        return {
            "customer": held.customer,
            "address": held.address,
            "order": held.order,
            "other_address": self.other.address,
            "product": self.product,
            "draft": self.draft,
            "cart": CART,
            "item": self.item,
        }

    def path_parameters(self) -> dict[str, str]:
        """The logged-in customer's ids and the rest, by the names of the schema's path
        parameters that take them."""
        ids = self.ids("own")
        return {
            "customer_id": ids["customer"],
            "address_id": ids["address"],
            "order_id": ids["order"],
            "product_id": ids["product"],
            "item_id": ids["item"],
            "cart_ref": ids["cart"],
            # A login provider's name; the world has none, so a sign-in there is refused.
            "provider": "example",
            **self.accounts,
        }


def checkout_body(customer: dict[str, Any] | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {"billing_address": ADDRESS, "shipping_address": ADDRESS}
    if customer is not None:
        data["customer"] = customer
    return {"data": data}


def data_of(response: httpx.Response, status: int) -> Any:
    assert response.status_code == status, response.text
    return response.json()["data"]


async def _product(http: httpx.AsyncClient, backend: str, **fields: Any) -> str:
    response = await http.post(
        "/v2/products", json=product_body(**fields), headers=headers(backend)
    )
    return str(data_of(response, 201)["id"])


async def _address(http: httpx.AsyncClient, backend: str, customer: str) -> str:
    body = {"data": {"type": "address", **ADDRESS}}
    url = f"/v2/customers/{customer}/addresses"
    return str(data_of(await http.post(url, json=body, headers=headers(backend)), 201)["id"])


async def _order(
    http: httpx.AsyncClient, sent: dict[str, str], ref: str, product: str, customer: str
) -> str:
    """An order of `customer`: one of `product` in cart `ref`, checked out with `sent`."""
    body = {"data": {"type": "cart_item", "id": product, "quantity": 1}}
    data_of(await http.post(f"/v2/carts/{ref}/items", json=body, headers=sent), 201)
    checkout = checkout_body({"id": customer})
    response = await http.post(f"/v2/carts/{ref}/checkout", json=checkout, headers=sent)
    return str(data_of(response, 201)["id"])


@functools.cache
def _password_hash() -> str:
    hashed: str = password_context.hash(PASSWORD)
    return hashed


async def _customer(database: Database, store_id: uuid.UUID, name: str) -> Customer:
    email = f"{name.lower()}-{uuid.uuid4().hex[:12]}@example.com"
    customer = Customer(
        store_id=store_id, name=name, email=email, email_key=email, password_hash=_password_hash()
    )
    async with database.sessions() as session:
        session.add(customer)
        await session.commit()
    return customer


async def build_world(
    http: httpx.AsyncClient, make_client: MakeClient, database: Database, store_id: uuid.UUID
) -> World:
    """Builds the world in store `store_id`, through the HTTP API but for the customer rows."""
    backend = await backend_token(http, await make_client(name="backend", store_id=store_id))
    storefront = await implicit_token(
        http, await make_client(name="storefront", public=True, store_id=store_id)
    )
    product, draft = (
        await _product(http, backend, sku="TEE"),
        await _product(http, backend, sku="DRAFT", status="draft"),
    )
    logged_in = await _customer(database, store_id, "Own")
    shopper, other = str(logged_in.id), str((await _customer(database, store_id, "Other")).id)
    token = data_of(await log_in(http, storefront, email=logged_in.email), 200)["token"]
    as_shopper = headers(storefront, token)
    own = Holdings(
        customer=shopper,
        address=await _address(http, backend, shopper),
        order=await _order(http, as_shopper, "own-order", product, shopper),
    )
    theirs = Holdings(
        customer=other,
        address=await _address(http, backend, other),
        order=await _order(http, headers(backend), "other-order", product, other),
    )
    items = data_of(await add_to_cart(http, storefront, CART, product), 201)
    accounts = await _accounts(http, backend)
    return World(backend, storefront, token, product, draft, items[0]["id"], own, theirs, accounts)


async def _accounts(http: httpx.AsyncClient, backend: str) -> dict[str, str]:
    """The realm, a password profile, and a member with a password in it."""
    realm = await realm_id(http, backend)
    profile = await make_profile(http, backend, realm)
    member, _ = await make_member(http, backend, realm, profile)
    secrets = await http.get(passwords_url(realm, member), headers=headers(backend))
    account = await make_account(http, backend)
    return {
        "account_id": account,
        "membership_id": await add_member(http, backend, account, member),
        "realm_id": realm,
        "profile_id": profile,
        "info_id": member,
        "password_info_id": secrets.json()["data"][0]["id"],
        "account_member_id": member,
    }


async def snapshot(database: Database) -> Snapshot:
    """Every row of every table, in primary-key order: equal snapshots mean nothing changed."""
    rows: Snapshot = {}
    async with database.sessions() as session:
        for table in Base.metadata.sorted_tables:
            query = select(table).order_by(*table.primary_key.columns)
            rows[table.name] = [tuple(row) for row in (await session.execute(query)).all()]
    return rows


def assert_errors(response: httpx.Response, status: int) -> None:
    """The §4 errors envelope with `status`."""
    assert response.status_code == status, response.text
    (error,) = response.json()["errors"]
    assert error["status"] == status
    assert error["title"] and error["detail"]
