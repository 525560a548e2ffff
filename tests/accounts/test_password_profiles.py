"""`/v2/authentication-realms/{realm}/password-profiles`: CRUD, realm-bound."""

import uuid
from collections.abc import Awaitable, Callable

import httpx

from app.oauth.stores import Store

from ..conftest import MakeClient
from ..customers.shoppers import backend_token, headers
from ..world import assert_errors
from .realm import data_of, make_profile, profiles_url, realm_id


async def test_crud(http: httpx.AsyncClient, backend: str, storefront: str) -> None:
    realm = await realm_id(http, backend)
    body = {
        "data": {
            "type": "password_profile",
            "name": "Username and password",
            "username_format": "email",
            "enable_one_time_password_token": True,
        }
    }
    created = data_of(
        await http.post(profiles_url(realm), json=body, headers=headers(backend)), 201
    )
    assert created["type"] == "password_profile"
    assert created["name"] == "Username and password"
    assert created["username_format"] == "email"
    assert created["enable_one_time_password_token"] is True
    url = f"{profiles_url(realm)}/{created['id']}"
    # a storefront reads them: its login form names one
    assert data_of(await http.get(url, headers=headers(storefront)), 200) == created
    listed = (await http.get(profiles_url(realm), headers=headers(storefront))).json()
    assert [p["id"] for p in listed["data"]] == [created["id"]]
    assert listed["meta"]["results"]["total"] == 1
    update = {"data": {"type": "password_profile", "username_format": "any"}}
    updated = data_of(await http.put(url, json=update, headers=headers(backend)), 200)
    assert updated["username_format"] == "any" and updated["name"] == "Username and password"
    assert (await http.delete(url, headers=headers(backend))).status_code == 204
    assert_errors(await http.get(url, headers=headers(backend)), 404)


async def test_a_storefront_may_not_write(
    http: httpx.AsyncClient, backend: str, storefront: str
) -> None:
    realm = await realm_id(http, backend)
    body = {"data": {"type": "password_profile", "name": "x", "username_format": "any"}}
    assert_errors(await http.post(profiles_url(realm), json=body, headers=headers(storefront)), 403)
    profile = await make_profile(http, backend, realm)
    url = f"{profiles_url(realm)}/{profile}"
    assert_errors(await http.delete(url, headers=headers(storefront)), 403)


async def test_bad_bodies_are_400(http: httpx.AsyncClient, backend: str) -> None:
    realm = await realm_id(http, backend)
    for data in (
        {"type": "password_profile", "name": "x", "username_format": "phone"},
        {"type": "password_profile", "name": ""},
        {"type": "profile", "name": "x"},
    ):
        response = await http.post(
            profiles_url(realm), json={"data": data}, headers=headers(backend)
        )
        assert_errors(response, 400)


async def test_another_stores_realm_is_404(
    http: httpx.AsyncClient,
    backend: str,
    make_client: MakeClient,
    make_store: Callable[[str], Awaitable[Store]],
) -> None:
    other = await make_store("other")
    other_backend = await backend_token(http, await make_client(name="b", store_id=other.id))
    theirs = await realm_id(http, other_backend)
    their_profile = await make_profile(http, other_backend, theirs)
    ours = await realm_id(http, backend)
    assert_errors(await http.get(profiles_url(theirs), headers=headers(backend)), 404)
    # their profile under our realm's path is not there either
    url = f"{profiles_url(ours)}/{their_profile}"
    assert_errors(await http.get(url, headers=headers(backend)), 404)
    assert_errors(await http.get(profiles_url(str(uuid.uuid4())), headers=headers(backend)), 404)
