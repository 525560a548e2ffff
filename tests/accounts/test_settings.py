"""`/v2/settings/account-authentication`: every store's realm, and its settings."""

from collections.abc import Awaitable, Callable

import httpx
from fastapi import FastAPI

from app.oauth.stores import Store

from ..conftest import MakeClient
from ..customers.shoppers import backend_token, headers
from ..world import assert_errors

URL = "/v2/settings/account-authentication"


async def test_a_store_has_one_realm_with_the_default_settings(
    http: httpx.AsyncClient, backend: str, storefront: str
) -> None:
    first = await http.get(URL, headers=headers(backend))
    assert first.status_code == 200, first.text
    data = first.json()["data"]
    realm_id = data["relationships"]["authentication_realm"]["data"]["id"]
    assert data == {
        "id": realm_id,
        "type": "account_authentication_settings",
        "enable_self_signup": False,
        "auto_create_account_for_account_members": False,
        "account_member_self_management": "disabled",
        "account_management_authentication_token_timeout_secs": 86400,
        "relationships": {
            "authentication_realm": {
                "data": {
                    "id": realm_id,
                    "type": "authentication_realm",
                    "links": {"self": f"http://keyhouse.test/v2/authentication-realms/{realm_id}"},
                }
            }
        },
        "meta": {"client_id": "account-management"},
    }
    again = await http.get(URL, headers=headers(storefront))  # a storefront reads it too
    assert again.json()["data"] == data


async def test_a_backend_changes_the_settings(http: httpx.AsyncClient, backend: str) -> None:
    body = {
        "data": {
            "type": "account_authentication_settings",
            "enable_self_signup": True,
            "account_management_authentication_token_timeout_secs": 3600,
        }
    }
    response = await http.put(URL, json=body, headers=headers(backend))
    assert response.status_code == 200, response.text
    data = (await http.get(URL, headers=headers(backend))).json()["data"]
    assert data["enable_self_signup"] is True
    assert data["account_management_authentication_token_timeout_secs"] == 3600
    assert data["auto_create_account_for_account_members"] is False  # unchanged


async def test_a_storefront_may_not_change_them(http: httpx.AsyncClient, storefront: str) -> None:
    body = {"data": {"type": "account_authentication_settings", "enable_self_signup": True}}
    response = await http.put(URL, json=body, headers=headers(storefront))
    assert_errors(response, 403)


async def test_bad_settings_are_400(http: httpx.AsyncClient, backend: str) -> None:
    for data in (
        {"type": "account_authentication_settings", "account_member_self_management": "all"},
        {
            "type": "account_authentication_settings",
            "account_management_authentication_token_timeout_secs": 10,
        },
        {"type": "settings"},
        # JSON's booleans and whole numbers only, as the schema says.
        {"type": "account_authentication_settings", "enable_self_signup": 1},
        {"type": "account_authentication_settings", "auto_create_account_for_account_members": 0},
        {
            "type": "account_authentication_settings",
            "account_management_authentication_token_timeout_secs": "3600",
        },
        {
            "type": "account_authentication_settings",
            "account_management_authentication_token_timeout_secs": 3600.5,
        },
    ):
        response = await http.put(URL, json={"data": data}, headers=headers(backend))
        assert_errors(response, 400)


async def test_the_schema_states_the_token_lifetime_bounds(
    app: FastAPI, http: httpx.AsyncClient, backend: str
) -> None:
    schemas = app.openapi()["components"]["schemas"]
    lifetime = schemas["RealmSettingsUpdate"]["properties"][
        "account_management_authentication_token_timeout_secs"
    ]
    assert {"type": "integer", "minimum": 60, "maximum": 30 * 86400} in lifetime["anyOf"]
    data = {
        "type": "account_authentication_settings",
        "account_management_authentication_token_timeout_secs": 60.0,  # JSON Schema's integer
    }
    response = await http.put(URL, json={"data": data}, headers=headers(backend))
    assert response.status_code == 200, response.text
    assert response.json()["data"]["account_management_authentication_token_timeout_secs"] == 60


async def test_each_store_has_its_own_realm(
    http: httpx.AsyncClient,
    backend: str,
    make_client: MakeClient,
    make_store: Callable[[str], Awaitable[Store]],
) -> None:
    other = await make_store("other")
    other_backend = await backend_token(http, await make_client(name="b", store_id=other.id))
    ours = (await http.get(URL, headers=headers(backend))).json()["data"]
    theirs = (await http.get(URL, headers=headers(other_backend))).json()["data"]
    assert ours["id"] != theirs["id"]


async def test_the_realm_itself(http: httpx.AsyncClient, backend: str, storefront: str) -> None:
    settings = (await http.get(URL, headers=headers(backend))).json()["data"]
    realm_id = settings["relationships"]["authentication_realm"]["data"]["id"]
    url = f"/v2/authentication-realms/{realm_id}"
    response = await http.get(url, headers=headers(backend))
    assert response.status_code == 200, response.text
    realm = response.json()["data"]
    assert (realm["id"], realm["type"]) == (realm_id, "authentication-realm")
    assert realm["relationships"]["origin"]["data"]["type"] == "account_authentication_settings"
    assert_errors(await http.get(url, headers=headers(storefront)), 403)
    other = "/v2/authentication-realms/00000000-0000-4000-8000-000000000000"
    assert_errors(await http.get(other, headers=headers(backend)), 404)
