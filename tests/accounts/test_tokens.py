"""`POST /v2/account-members/tokens`: password logins, self sign-up, and the tokens' life."""

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import jwt
import pytest
from fastapi import FastAPI

from app.oauth.clients import CreatedClient
from app.oauth.stores import Store

from ..conftest import MakeClient
from ..customers.shoppers import backend_token, headers, implicit_token
from ..world import assert_errors
from .realm import (
    SETTINGS_URL,
    TOKEN_TYPE,
    TOKENS_URL,
    add_member,
    data_of,
    login_body,
    make_account,
    make_member,
    make_profile,
    passwords_url,
    realm_id,
    signup_body,
)


@pytest.fixture
async def backend_client(make_client: MakeClient) -> CreatedClient:
    return await make_client(name="backend client")


async def introspect(http: httpx.AsyncClient, client: CreatedClient, token: str) -> Any:
    assert client.client_secret is not None
    response = await http.post(
        "/oauth/introspect", data={"token": token}, auth=(client.client.id, client.client_secret)
    )
    assert response.status_code == 200, response.text
    return response.json()


async def test_a_member_gets_a_token_per_account(
    http: httpx.AsyncClient, backend: str, storefront: str
) -> None:
    realm = await realm_id(http, backend)
    profile = await make_profile(http, backend, realm)
    member, username = await make_member(http, backend, realm, profile)
    first, second = (
        await make_account(http, backend, "Acme"),
        await make_account(http, backend, "Bolt"),
    )
    await add_member(http, backend, first, member)
    await add_member(http, backend, second, member)
    response = await http.post(
        TOKENS_URL, json=login_body(profile, username.upper()), headers=headers(storefront)
    )
    assert response.status_code == 201, response.text
    document = response.json()
    assert document["meta"]["account_member_id"] == member
    assert document["meta"]["results"]["total"] == 2
    tokens = document["data"]
    assert [(t["type"], t["account_id"], t["account_name"]) for t in tokens] == [
        (TOKEN_TYPE, first, "Acme"),
        (TOKEN_TYPE, second, "Bolt"),
    ]
    assert jwt.get_unverified_header(tokens[0]["token"])["typ"] == "account+jwt"
    claims = jwt.decode(tokens[0]["token"], options={"verify_signature": False})
    assert (claims["sub"], claims["account_id"], claims["cred_epoch"]) == (member, first, 0)
    assert claims["exp"] - claims["iat"] == 86400
    assert tokens[0]["expires"].endswith("Z")


async def test_a_member_of_no_account_gets_no_token(
    http: httpx.AsyncClient, backend: str, storefront: str
) -> None:
    realm = await realm_id(http, backend)
    profile = await make_profile(http, backend, realm)
    member, username = await make_member(http, backend, realm, profile)
    response = await http.post(
        TOKENS_URL, json=login_body(profile, username), headers=headers(storefront)
    )
    assert response.status_code == 201, response.text
    assert response.json()["data"] == []
    assert response.json()["meta"]["account_member_id"] == member


async def test_wrong_password_unknown_username_and_foreign_profile_look_alike(
    http: httpx.AsyncClient,
    backend: str,
    storefront: str,
    make_client: MakeClient,
    make_store: Callable[[str], Awaitable[Store]],
) -> None:
    realm = await realm_id(http, backend)
    profile = await make_profile(http, backend, realm)
    _, username = await make_member(http, backend, realm, profile)
    other = await make_store("other")
    their_backend = await backend_token(http, await make_client(name="b", store_id=other.id))
    their_profile = await make_profile(http, their_backend, await realm_id(http, their_backend))
    await make_member(
        http, their_backend, await realm_id(http, their_backend), their_profile, username="same"
    )
    answers = [
        await http.post(TOKENS_URL, json=body, headers=headers(storefront))
        for body in (
            login_body(profile, username, "wrong password"),
            login_body(profile, "nobody@example.com"),
            login_body(their_profile, "same"),
            login_body(str(uuid.uuid4()), username),
        )
    ]
    assert {a.status_code for a in answers} == {401}
    assert len({a.text for a in answers}) == 1
    assert answers[0].json()["errors"][0]["detail"] == "The username or password is incorrect."
    assert answers[0].headers["www-authenticate"].startswith("Bearer")


@pytest.mark.settings(lockout_pair_failures=2)
async def test_failures_lock_the_username_out(
    http: httpx.AsyncClient, backend: str, storefront: str
) -> None:
    realm = await realm_id(http, backend)
    profile = await make_profile(http, backend, realm)
    _, username = await make_member(http, backend, realm, profile)
    for guess in ("guess one", "guess two"):
        response = await http.post(
            TOKENS_URL, json=login_body(profile, username, guess), headers=headers(storefront)
        )
        assert response.status_code == 401
    locked = await http.post(
        TOKENS_URL, json=login_body(profile, username), headers=headers(storefront)
    )
    assert_errors(locked, 429)
    assert int(locked.headers["retry-after"]) > 0


async def test_bad_requests_are_400(http: httpx.AsyncClient, storefront: str) -> None:
    for data in (
        {"type": TOKEN_TYPE, "authentication_mechanism": "password", "username": "x"},
        {"type": TOKEN_TYPE, "authentication_mechanism": "magic"},
        {"type": "token", "authentication_mechanism": "password"},
    ):
        assert_errors(
            await http.post(TOKENS_URL, json={"data": data}, headers=headers(storefront)), 400
        )


def test_the_schema_says_each_mechanisms_fields(app: FastAPI) -> None:
    # What the server requires of each mechanism, the schema requires too (present, not null).
    request = app.openapi()["components"]["schemas"]["AccountTokenRequest"]
    required = {
        branch["properties"]["authentication_mechanism"]["const"]: set(branch["required"])
        for branch in request["oneOf"]
    }
    login = {"authentication_mechanism", "password_profile_id", "username", "password"}
    assert required == {
        "password": login,
        "self_signup": login | {"name", "email"},
        "account_management_authentication_token": {"authentication_mechanism"},
    }
    for branch in request["oneOf"]:
        fields = branch["properties"].items()
        for name, field in ((n, f) for n, f in fields if n != "authentication_mechanism"):
            assert "anyOf" not in field and field["type"] == "string", name


async def test_self_signup_only_where_the_realm_allows_it(
    http: httpx.AsyncClient, backend: str, storefront: str
) -> None:
    realm = await realm_id(http, backend)
    profile = await make_profile(http, backend, realm)
    refused = await http.post(
        TOKENS_URL, json=signup_body(profile, "leslie"), headers=headers(storefront)
    )
    assert_errors(refused, 403)
    settings = {
        "data": {
            "type": "account_authentication_settings",
            "enable_self_signup": True,
            "auto_create_account_for_account_members": True,
        }
    }
    data_of(await http.put(SETTINGS_URL, json=settings, headers=headers(backend)), 200)
    weak = signup_body(profile, "leslie", password="1234567")  # the rule a backend is held to
    assert_errors(await http.post(TOKENS_URL, json=weak, headers=headers(storefront)), 400)
    response = await http.post(
        TOKENS_URL, json=signup_body(profile, "leslie"), headers=headers(storefront)
    )
    assert response.status_code == 201, response.text
    (token,) = response.json()["data"]
    assert token["account_name"] == "Leslie"
    member = response.json()["meta"]["account_member_id"]
    read = data_of(await http.get(f"/v2/account-members/{member}", headers=headers(backend)), 200)
    assert (read["name"], read["email"]) == ("Leslie", "leslie@example.com")
    # and the new member logs in
    login = await http.post(
        TOKENS_URL, json=login_body(profile, "leslie"), headers=headers(storefront)
    )
    assert [t["account_id"] for t in login.json()["data"]] == [token["account_id"]]
    again = await http.post(
        TOKENS_URL, json=signup_body(profile, "LESLIE"), headers=headers(storefront)
    )
    assert_errors(again, 409)
    elsewhere = signup_body(str(uuid.uuid4()), "someone")
    assert_errors(await http.post(TOKENS_URL, json=elsewhere, headers=headers(storefront)), 404)


async def test_tokens_are_introspectable_and_revocable(
    http: httpx.AsyncClient, backend_client: CreatedClient, make_client: MakeClient
) -> None:
    backend = await backend_token(http, backend_client)
    storefront = await implicit_token(http, await make_client(name="front", public=True))
    realm = await realm_id(http, backend)
    profile = await make_profile(http, backend, realm)
    member, username = await make_member(http, backend, realm, profile)
    accounts = [await make_account(http, backend, name) for name in ("A", "B")]
    memberships = [await add_member(http, backend, account, member) for account in accounts]

    async def tokens() -> list[str]:
        response = await http.post(
            TOKENS_URL, json=login_body(profile, username), headers=headers(storefront)
        )
        assert response.status_code == 201, response.text
        return [t["token"] for t in response.json()["data"]]

    first, second = await tokens()
    seen = await introspect(http, backend_client, first)
    assert seen["active"] is True
    assert seen["account_id"] == accounts[0] and seen["account_member_id"] == member
    assert seen["token_type"] == TOKEN_TYPE
    # /oauth/revoke: that token alone
    assert backend_client.client_secret is not None
    auth = (backend_client.client.id, backend_client.client_secret)
    assert (await http.post("/oauth/revoke", data={"token": first}, auth=auth)).status_code == 200
    assert (await introspect(http, backend_client, first))["active"] is False
    assert (await introspect(http, backend_client, second))["active"] is True
    # a removed membership: that account's tokens
    url = f"/v2/accounts/{accounts[1]}/account-memberships/{memberships[1]}"
    assert (await http.delete(url, headers=headers(backend))).status_code == 204
    assert (await introspect(http, backend_client, second))["active"] is False
    # a new password: every earlier token of the member
    (third,) = await tokens()
    secrets = (await http.get(passwords_url(realm, member), headers=headers(backend))).json()[
        "data"
    ]
    change = {
        "data": {"type": "user_authentication_password_profile_info", "password": "a new password"}
    }
    secret_url = f"{passwords_url(realm, member)}/{secrets[0]['id']}"
    data_of(await http.put(secret_url, json=change, headers=headers(backend)), 200)
    assert (await introspect(http, backend_client, third))["active"] is False
    old = await http.post(
        TOKENS_URL, json=login_body(profile, username), headers=headers(storefront)
    )
    assert_errors(old, 401)
