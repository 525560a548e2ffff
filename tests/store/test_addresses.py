"""`/v2/customers/{id}/addresses`: the shopper's own, any of its store's for a backend, and
nobody else's (CONTRACT §4)."""

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, select

from app.customers.customers import Customer
from app.runtime.db import Database
from app.store.addresses import ADDRESS_FIELDS, Address

from ..customers.shoppers import Shopper, headers
from .conftest import ADDRESS, CountRows, MakeShopper


def addresses_url(customer_id: str, address_id: str | None = None) -> str:
    url = f"/v2/customers/{customer_id}/addresses"
    return url if address_id is None else f"{url}/{address_id}"


def address_body(**fields: Any) -> dict[str, Any]:
    return {"data": {"type": "address", **ADDRESS, **fields}}


async def stored_addresses(database: Database) -> list[dict[str, Any]]:
    """Every address row, as plain values, to compare before and after a refused write."""
    async with database.sessions() as session:
        rows = await session.scalars(select(Address).order_by(Address.id))
        return [
            {c.key: getattr(row, c.key) for c in Address.__mapper__.column_attrs} for row in rows
        ]


async def create(
    http: httpx.AsyncClient, sent: dict[str, str], customer_id: str, **fields: Any
) -> Any:
    response = await http.post(
        addresses_url(customer_id), json=address_body(**fields), headers=sent
    )
    assert response.status_code == 201, response.text
    return response.json()["data"]


def assert_status(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.json()["errors"][0]["status"] == status


async def test_shopper_manages_own_addresses(
    http: httpx.AsyncClient, storefront: str, make_shopper: MakeShopper, count_rows: CountRows
) -> None:
    shopper = await make_shopper()
    own = headers(storefront, shopper.token)
    created = await create(http, own, shopper.id, name="Home", instructions="Leave by the door")
    assert set(created) == {"type", "id", "meta", *ADDRESS_FIELDS}
    assert created["type"] == "address"
    uuid.UUID(created["id"])
    assert {key: created[key] for key in ADDRESS} == ADDRESS
    assert created["name"] == "Home" and created["instructions"] == "Leave by the door"
    assert created["line_2"] == created["company_name"] == created["phone_number"] == ""
    assert set(created["meta"]["timestamps"]) == {"created_at", "updated_at"}

    url = addresses_url(shopper.id, created["id"])
    assert (await http.get(url, headers=own)).json()["data"] == created
    listed = (await http.get(addresses_url(shopper.id), headers=own)).json()
    assert listed["data"] == [created]
    assert listed["meta"]["results"] == {"total": 1}

    change = {"data": {"type": "address", "line_2": "Flat 2", "country": "IE", "city": None}}
    updated = await http.put(url, json=change, headers=own)
    assert updated.status_code == 200, updated.text
    assert updated.json()["data"] == {
        **created,
        "line_2": "Flat 2",
        "country": "IE",
        "meta": updated.json()["data"]["meta"],
    }  # null and left-out fields keep their values
    assert (await http.get(url, headers=own)).json()["data"]["line_2"] == "Flat 2"

    deleted = await http.delete(url, headers=own)
    assert deleted.status_code == 204 and deleted.content == b""
    assert_status(await http.get(url, headers=own), 404)
    assert_status(await http.delete(url, headers=own), 404)
    assert await count_rows(Address) == 0


async def test_backend_manages_any_customers_addresses(
    http: httpx.AsyncClient, backend: str, make_shopper: MakeShopper, count_rows: CountRows
) -> None:
    shopper = await make_shopper()
    sent = headers(backend)
    created = await create(http, sent, shopper.id)
    url = addresses_url(shopper.id, created["id"])
    assert (await http.get(url, headers=sent)).json()["data"] == created
    listed = await http.get(addresses_url(shopper.id), headers=sent)
    assert [a["id"] for a in listed.json()["data"]] == [created["id"]]
    change = {"data": {"type": "address", "first_name": "Leslie"}}
    assert (await http.put(url, json=change, headers=sent)).json()["data"]["first_name"] == "Leslie"
    assert (await http.delete(url, headers=sent)).status_code == 204
    assert await count_rows(Address) == 0


async def test_addresses_are_paginated(
    http: httpx.AsyncClient, backend: str, make_shopper: MakeShopper
) -> None:
    shopper = await make_shopper()
    ids = [(await create(http, headers(backend), shopper.id, name=f"n{i}"))["id"] for i in range(3)]
    page = {"page[limit]": "2", "page[offset]": "2"}
    response = await http.get(addresses_url(shopper.id), params=page, headers=headers(backend))
    assert [a["id"] for a in response.json()["data"]] == ids[2:]
    assert response.json()["meta"]["results"] == {"total": 3}


async def refused_requests(
    http: httpx.AsyncClient, sent: dict[str, str], owner: Shopper, address_id: str
) -> list[httpx.Response]:
    """Every address operation on `owner`'s addresses, with `sent` headers."""
    url = addresses_url(owner.id, address_id)
    change = {"data": {"type": "address", "first_name": "Hijacked"}}
    return [
        await http.get(addresses_url(owner.id), headers=sent),
        await http.post(addresses_url(owner.id), json=address_body(), headers=sent),
        await http.get(url, headers=sent),
        await http.put(url, json=change, headers=sent),
        await http.delete(url, headers=sent),
    ]


async def test_another_customers_addresses_do_not_exist(
    http: httpx.AsyncClient, database: Database, storefront: str, make_shopper: MakeShopper
) -> None:
    owner, other = await make_shopper(), await make_shopper()
    address = await create(http, headers(storefront, owner.token), owner.id)
    before = await stored_addresses(database)
    for response in await refused_requests(
        http, headers(storefront, other.token), owner, address["id"]
    ):
        assert_status(response, 404)
    # Under the other customer's own id, the owner's address is not found either.
    own = headers(storefront, other.token)
    for response in [
        await http.get(addresses_url(other.id, address["id"]), headers=own),
        await http.put(
            addresses_url(other.id, address["id"]),
            json={"data": {"type": "address", "first_name": "Hijacked"}},
            headers=own,
        ),
        await http.delete(addresses_url(other.id, address["id"]), headers=own),
    ]:
        assert_status(response, 404)
    assert (await http.get(addresses_url(other.id), headers=own)).json()["data"] == []
    assert await stored_addresses(database) == before


async def test_another_stores_backend_finds_nothing(
    http: httpx.AsyncClient,
    database: Database,
    backend: str,
    other_backend: str,
    make_shopper: MakeShopper,
) -> None:
    owner = await make_shopper()
    address = await create(http, headers(backend), owner.id)
    before = await stored_addresses(database)
    for response in await refused_requests(http, headers(other_backend), owner, address["id"]):
        assert_status(response, 404)
    assert await stored_addresses(database) == before


async def test_storefront_without_customer_token_is_403(
    http: httpx.AsyncClient,
    database: Database,
    backend: str,
    storefront: str,
    make_shopper: MakeShopper,
) -> None:
    owner = await make_shopper()
    address = await create(http, headers(backend), owner.id)
    before = await stored_addresses(database)
    for response in await refused_requests(http, headers(storefront), owner, address["id"]):
        assert_status(response, 403)
        assert 'error="insufficient_scope"' in response.headers["www-authenticate"]
    assert await stored_addresses(database) == before


async def test_unknown_customer_is_404(http: httpx.AsyncClient, backend: str) -> None:
    nobody = str(uuid.uuid4())
    assert_status(await http.get(addresses_url(nobody), headers=headers(backend)), 404)
    created = await http.post(addresses_url(nobody), json=address_body(), headers=headers(backend))
    assert_status(created, 404)


BAD_ADDRESSES: dict[str, dict[str, Any]] = {
    "lower-case country": {"country": "gb"},
    "three-letter country": {"country": "GBR"},
    "one-letter country": {"country": "G"},
    "country with a digit": {"country": "G1"},
    "non-ASCII country": {"country": "ÅÄ"},
    "country not a string": {"country": 44},
    "no country": {"country": None},
    "no line_1": {"line_1": None},
    "empty first_name": {"first_name": ""},
    "no postcode": {"postcode": None},
    "line_1 too long": {"line_1": "x" * 201},
    "wrong type": {"type": "customer-address"},
    # PostgreSQL refuses NUL in text: a 400 here, never a 500 from the database.
    "NUL in line_1": {"line_1": "1 Sun\x00Street"},
    "NUL in an optional field": {"instructions": "\x00"},
}


@pytest.mark.parametrize("fields", BAD_ADDRESSES.values(), ids=BAD_ADDRESSES.keys())
async def test_bad_address_is_400_and_stores_nothing(
    http: httpx.AsyncClient,
    database: Database,
    backend: str,
    make_shopper: MakeShopper,
    fields: dict[str, Any],
) -> None:
    owner = await make_shopper()
    body = address_body(**fields)
    body["data"] = {key: value for key, value in body["data"].items() if value is not None}
    assert_status(
        await http.post(addresses_url(owner.id), json=body, headers=headers(backend)), 400
    )
    assert await stored_addresses(database) == []


@pytest.mark.parametrize("country", ["gb", "GBR", "", None])
async def test_bad_country_in_an_update_is_400_and_changes_nothing(
    http: httpx.AsyncClient,
    database: Database,
    backend: str,
    make_shopper: MakeShopper,
    country: str | None,
) -> None:
    owner = await make_shopper()
    address = await create(http, headers(backend), owner.id)
    before = await stored_addresses(database)
    change = {"data": {"type": "address", "country": country, "city": "Paris"}}
    if country is None:
        change["data"]["type"] = "product"  # and a body of the wrong type
    response = await http.put(
        addresses_url(owner.id, address["id"]), json=change, headers=headers(backend)
    )
    assert_status(response, 400)
    assert await stored_addresses(database) == before


async def test_a_customers_addresses_go_with_the_customer(
    http: httpx.AsyncClient,
    database: Database,
    backend: str,
    make_shopper: MakeShopper,
    count_rows: CountRows,
) -> None:
    owner, other = await make_shopper(), await make_shopper()
    await create(http, headers(backend), owner.id)
    await create(http, headers(backend), other.id)
    async with database.sessions() as session:
        await session.execute(delete(Customer).where(Customer.id == uuid.UUID(owner.id)))
        await session.commit()
    assert await count_rows(Address) == 1  # ON DELETE CASCADE, in the database itself
