"""The official commerce JavaScript SDKs, unmodified, set accounts up and log members in.

`tests/js/sdk_accounts.mjs` drives `@elasticpath/js-sdk` (and `@moltin/sdk`, which has the same
calls) under Node against the live server: a backend gateway reads and changes the account
authentication settings, creates a password profile, a member with a username and password,
two accounts and the member's memberships; a storefront gateway logs the member in (a token per
account), is refused a wrong password, and signs a new member up. Then, with one account's token
beside the implicit token, it reads the account, fills an account cart, lists the account's
carts, checks out with `CheckoutWithAccountManagementToken` and lists the account's orders; the
other account's token sees none of it (404, or empty lists); and the token is exchanged for
fresh tokens of every account of its member (switching), and the member changes their own
password with it (self-management) and logs in with the new one. Every call is the SDK's own.
"""

from typing import Any

import pytest

from app.oauth.clients import CreatedClient

from ..conftest import LiveServer, MakeClient
from ..node import SDKS, node_with_sdks, run_script

pytestmark = pytest.mark.node

TOKEN_TYPE = "account_management_authentication_token"


async def run_story(
    node: str, server: LiveServer, sdk: str, storefront: CreatedClient, backend: CreatedClient
) -> dict[str, Any]:
    assert backend.client_secret is not None
    environment = {
        "KEYHOUSE_URL": server.url,
        "SDK": sdk,
        "PUBLIC_CLIENT_ID": storefront.client.id,
        "BACKEND_CLIENT_ID": backend.client.id,
        "BACKEND_CLIENT_SECRET": backend.client_secret,
    }
    report: dict[str, Any] = await run_script(node, "sdk_accounts.mjs", environment)
    return report


def assert_set_up(report: dict[str, Any]) -> None:
    settings = report["settings"]
    assert settings["type"] == "account_authentication_settings"
    assert settings["account_management_authentication_token_timeout_secs"] == 86400
    assert report["settings_updated"]["enable_self_signup"] is True
    realm_id = settings["relationships"]["authentication_realm"]["data"]["id"]
    assert report["realm"] == {"id": realm_id, "type": "authentication-realm"}
    profile = report["password_profile"]
    assert (profile["type"], profile["username_format"]) == ("password_profile", "email")
    assert report["password_profile_ids"] == [profile["id"]] == [report["password_profile_got"]]
    member = report["account_member"]
    assert member["type"] == "account_member"
    assert member["id"] == report["user_authentication_info"]["id"]
    assert report["account_member_ids"] == [member["id"]]
    secret = report["password_profile_info"]
    assert secret["username"] == "ron@example.com" and "password" not in secret
    assert report["password_profile_info_ids"] == [secret["id"]]
    assert report["accounts_listed"] == report["account_ids"]
    assert report["memberships_of_first"] == [member["id"]]
    assert report["memberships_of_member"] == report["account_ids"]


def assert_logins(report: dict[str, Any]) -> None:
    login = report["login"]
    assert [t["account_id"] for t in login["data"]] == report["account_ids"]
    assert [t["account_name"] for t in login["data"]] == ["Acme", "Bolt"]
    assert {t["type"] for t in login["data"]} == {TOKEN_TYPE}
    assert login["meta"]["account_member_id"] == report["account_member"]["id"]
    wrong = report["wrong_password"]
    assert wrong["status"] == 401
    assert wrong["body"]["errors"][0]["detail"] == "The username or password is incorrect."
    assert [s["status"] for s in report["steps"]["account_token_password"]][-1] == 201
    signup = report["signup"]
    (token,) = signup["data"]
    assert token["account_name"] == "Leslie Knope"
    assert signup["meta"]["account_member_id"] != report["account_member"]["id"]


def assert_account_store(report: dict[str, Any]) -> None:
    acme = report["account_ids"][0]
    assert report["own_account"] == {"id": acme, "name": "Acme"}
    assert report["other_account"]["status"] == 404
    assert report["cart_items"] == [
        {"product_id": report["cart_items"][0]["product_id"], "quantity": 2}
    ]
    assert report["acme_carts"] == ["acme-sdk-cart"]
    assert report["bolt_carts"] == []
    assert report["other_cart"]["status"] == 404
    assert report["order"]["account"] == {"type": "account", "id": acme}
    assert report["order"]["customer"] == {"name": "Ron Swanson", "email": "ron@example.com"}
    assert report["acme_orders"] == [report["order"]["id"]]
    assert report["bolt_orders"] == []
    assert report["other_order"]["status"] == 404
    assert report["account_header_sent"] == ["EP-Account-Management-Authentication-Token"]
    assert report["switched"] == report["account_ids"]
    assert report["own_password_changed"] == report["password_profile_info"]["id"]
    assert report["relogin"] == report["account_ids"]


@pytest.mark.parametrize("sdk", SDKS)
async def test_sdk_account_management_story(
    live_server: LiveServer, make_client: MakeClient, sdk: str
) -> None:
    node = node_with_sdks()
    storefront = await make_client(name="storefront", public=True)
    backend = await make_client(name="backend")
    report = await run_story(node, live_server, sdk, storefront, backend)
    assert report["sdk"] == sdk
    assert_set_up(report)
    assert_logins(report)
    assert_account_store(report)
