"""User authentication infos, their password profile infos, and `/v2/account-members`."""

import uuid

import httpx
from sqlalchemy import select

from app.accounts.passwords import MemberPassword
from app.runtime.db import Database

from ..customers.shoppers import PASSWORD, headers
from ..world import assert_errors
from .realm import data_of, infos_url, make_member, make_profile, passwords_url, realm_id


async def test_a_member_and_their_password(
    http: httpx.AsyncClient, backend: str, database: Database
) -> None:
    realm = await realm_id(http, backend)
    profile = await make_profile(http, backend, realm, username_format="email")
    info = {"data": {"type": "user_authentication_info", "name": "Ron", "email": "ron@example.com"}}
    member = data_of(await http.post(infos_url(realm), json=info, headers=headers(backend)), 201)
    assert member["type"] == "user_authentication_info"
    assert (member["name"], member["email"]) == ("Ron", "ron@example.com")
    body = {
        "data": {
            "type": "user_authentication_password_profile_info",
            "username": "Ron@example.com",
            "password": PASSWORD,
            "password_profile_id": profile,
        }
    }
    url = passwords_url(realm, member["id"])
    created = data_of(await http.post(url, json=body, headers=headers(backend)), 201)
    assert created["username"] == "Ron@example.com"
    assert created["password_profile_id"] == profile
    assert "password" not in created
    async with database.sessions() as session:
        stored = (await session.scalars(select(MemberPassword))).one()
    assert stored.password_hash.startswith("$argon2id$")
    assert PASSWORD not in stored.password_hash
    listed = (await http.get(url, headers=headers(backend))).json()["data"]
    assert [r["id"] for r in listed] == [created["id"]]
    # the same member, read as an account member
    read = data_of(
        await http.get(f"/v2/account-members/{member['id']}", headers=headers(backend)), 200
    )
    assert read["type"] == "account_member"
    assert (read["id"], read["name"], read["email"]) == (member["id"], "Ron", "ron@example.com")
    members = (
        await http.get(
            "/v2/account-members?filter=eq(email,RON@example.com)", headers=headers(backend)
        )
    ).json()
    assert [m["id"] for m in members["data"]] == [member["id"]]


async def test_usernames_are_unique_per_profile_whatever_the_case(
    http: httpx.AsyncClient, backend: str
) -> None:
    realm = await realm_id(http, backend)
    profile = await make_profile(http, backend, realm)
    await make_member(http, backend, realm, profile, username="ron")
    info = {"data": {"type": "user_authentication_info", "name": "Other"}}
    other = data_of(await http.post(infos_url(realm), json=info, headers=headers(backend)), 201)
    body = {
        "data": {
            "type": "user_authentication_password_profile_info",
            "username": "RON",
            "password": PASSWORD,
            "password_profile_id": profile,
        }
    }
    response = await http.post(
        passwords_url(realm, other["id"]), json=body, headers=headers(backend)
    )
    assert_errors(response, 409)


async def test_refusals(http: httpx.AsyncClient, backend: str, storefront: str) -> None:
    realm = await realm_id(http, backend)
    email_profile = await make_profile(http, backend, realm, username_format="email")
    member, _ = await make_member(http, backend, realm, email_profile)
    url = passwords_url(realm, member)
    other_profile = await make_profile(http, backend, realm)

    def body(**fields: str) -> dict[str, object]:
        data = {
            "type": "user_authentication_password_profile_info",
            "username": "someone",
            "password": PASSWORD,
            "password_profile_id": other_profile,
        }
        return {"data": {**data, **fields}}

    # not an email, in a profile of emails
    response = await http.post(
        url, json=body(password_profile_id=email_profile), headers=headers(backend)
    )
    assert_errors(response, 400)
    # a profile that is not this realm's
    response = await http.post(
        url, json=body(password_profile_id=str(uuid.uuid4())), headers=headers(backend)
    )
    assert_errors(response, 404)
    assert_errors(await http.post(url, json=body(password="short"), headers=headers(backend)), 400)
    # storefronts see no members
    assert_errors(await http.get(infos_url(realm), headers=headers(storefront)), 403)
    assert_errors(await http.get("/v2/account-members", headers=headers(storefront)), 403)
    assert_errors(
        await http.get(f"/v2/account-members/{uuid.uuid4()}", headers=headers(backend)), 404
    )


async def test_update_and_delete(http: httpx.AsyncClient, backend: str) -> None:
    realm = await realm_id(http, backend)
    profile = await make_profile(http, backend, realm)
    member, _ = await make_member(http, backend, realm, profile)
    url = f"{infos_url(realm)}/{member}"
    update = {"data": {"type": "user_authentication_info", "name": "Renamed"}}
    assert (
        data_of(await http.put(url, json=update, headers=headers(backend)), 200)["name"]
        == "Renamed"
    )
    secrets = (await http.get(passwords_url(realm, member), headers=headers(backend))).json()[
        "data"
    ]
    secret_url = f"{passwords_url(realm, member)}/{secrets[0]['id']}"
    change = {"data": {"type": "user_authentication_password_profile_info", "username": "new-name"}}
    assert (
        data_of(await http.put(secret_url, json=change, headers=headers(backend)), 200)["username"]
        == "new-name"
    )
    assert (await http.delete(url, headers=headers(backend))).status_code == 204
    assert_errors(await http.get(url, headers=headers(backend)), 404)
    assert_errors(await http.get(secret_url, headers=headers(backend)), 404)
