"""`/v2/accounts` and their memberships: backends only, store-bound."""

import uuid
from collections.abc import Awaitable, Callable

import httpx

from app.oauth.stores import Store

from ..conftest import MakeClient
from ..customers.shoppers import backend_token, headers
from ..world import assert_errors
from .realm import add_member, data_of, make_account, make_member, make_profile, realm_id


async def test_account_crud(http: httpx.AsyncClient, backend: str) -> None:
    body = {
        "data": {
            "type": "account",
            "name": "Acme",
            "legal_name": "Acme Corporation",
            "registration_id": "00012345",
        }
    }
    created = data_of(await http.post("/v2/accounts", json=body, headers=headers(backend)), 201)
    assert created["type"] == "account"
    assert (created["name"], created["legal_name"], created["registration_id"]) == (
        "Acme",
        "Acme Corporation",
        "00012345",
    )
    assert created["relationships"] == {}
    child_body = {"data": {"type": "account", "name": "Acme UK", "parent_id": created["id"]}}
    child = data_of(await http.post("/v2/accounts", json=child_body, headers=headers(backend)), 201)
    assert child["legal_name"] == "Acme UK"
    assert child["relationships"]["parent"]["data"] == {"id": created["id"], "type": "account"}
    url = f"/v2/accounts/{created['id']}"
    assert data_of(await http.get(url, headers=headers(backend)), 200) == created
    listed = await http.get("/v2/accounts?filter=eq(name,Acme UK)", headers=headers(backend))
    assert [a["id"] for a in listed.json()["data"]] == [child["id"]]
    update = {"data": {"type": "account", "name": "Acme Inc"}}
    assert (
        data_of(await http.put(url, json=update, headers=headers(backend)), 200)["name"]
        == "Acme Inc"
    )
    assert_errors(await http.delete(url, headers=headers(backend)), 409)  # it has a child
    child_url = f"/v2/accounts/{child['id']}"
    assert (await http.delete(child_url, headers=headers(backend))).status_code == 204
    assert (await http.delete(url, headers=headers(backend))).status_code == 204
    assert_errors(await http.get(url, headers=headers(backend)), 404)


async def test_refusals(
    http: httpx.AsyncClient,
    backend: str,
    storefront: str,
    make_client: MakeClient,
    make_store: Callable[[str], Awaitable[Store]],
) -> None:
    body = {"data": {"type": "account", "name": "Acme"}}
    assert_errors(await http.post("/v2/accounts", json=body, headers=headers(storefront)), 403)
    assert_errors(await http.get("/v2/accounts", headers=headers(storefront)), 403)
    orphan = {"data": {"type": "account", "name": "Acme", "parent_id": str(uuid.uuid4())}}
    assert_errors(await http.post("/v2/accounts", json=orphan, headers=headers(backend)), 404)
    other = await make_store("other")
    theirs = await backend_token(http, await make_client(name="b", store_id=other.id))
    their_account = await make_account(http, theirs)
    assert_errors(await http.get(f"/v2/accounts/{their_account}", headers=headers(backend)), 404)


async def test_memberships(http: httpx.AsyncClient, backend: str) -> None:
    realm = await realm_id(http, backend)
    profile = await make_profile(http, backend, realm)
    member, _ = await make_member(http, backend, realm, profile)
    account = await make_account(http, backend)
    membership = await add_member(http, backend, account, member)
    url = f"/v2/accounts/{account}/account-memberships"
    one = data_of(await http.get(f"{url}/{membership}", headers=headers(backend)), 200)
    assert one["type"] == "account_membership"
    assert one["relationships"]["account_member"]["data"] == {
        "id": member,
        "type": "account_member",
    }
    listed = (await http.get(url, headers=headers(backend))).json()
    assert [m["id"] for m in listed["data"]] == [membership]
    of_member = await http.get(
        f"/v2/account-members/{member}/account-memberships", headers=headers(backend)
    )
    assert [m["relationships"]["account"]["data"]["id"] for m in of_member.json()["data"]] == [
        account
    ]
    again = {"data": {"type": "account_membership", "account_member_id": member}}
    assert_errors(await http.post(url, json=again, headers=headers(backend)), 409)
    nobody = {"data": {"type": "account_membership", "account_member_id": str(uuid.uuid4())}}
    assert_errors(await http.post(url, json=nobody, headers=headers(backend)), 404)
    assert (await http.delete(f"{url}/{membership}", headers=headers(backend))).status_code == 204
    assert_errors(await http.get(f"{url}/{membership}", headers=headers(backend)), 404)
