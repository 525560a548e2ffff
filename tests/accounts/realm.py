"""Realms, profiles and members made through the real endpoints, for the accounts tests."""

import itertools
from dataclasses import dataclass
from typing import Any

import httpx

from ..customers.shoppers import PASSWORD, headers
from ..store.conftest import ADDRESS

SETTINGS_URL = "/v2/settings/account-authentication"
TOKENS_URL = "/v2/account-members/tokens"
TOKEN_TYPE = "account_management_authentication_token"
HEADER = "EP-Account-Management-Authentication-Token"
_numbers = itertools.count(1)


def data_of(response: httpx.Response, status: int) -> Any:
    assert response.status_code == status, response.text
    return response.json()["data"]


async def realm_id(http: httpx.AsyncClient, bearer: str) -> str:
    settings = data_of(await http.get(SETTINGS_URL, headers=headers(bearer)), 200)
    found: str = settings["relationships"]["authentication_realm"]["data"]["id"]
    return found


def profiles_url(realm: str) -> str:
    return f"/v2/authentication-realms/{realm}/password-profiles"


def infos_url(realm: str) -> str:
    return f"/v2/authentication-realms/{realm}/user-authentication-info"


def passwords_url(realm: str, member: str) -> str:
    return f"{infos_url(realm)}/{member}/user-authentication-password-profile-info"


async def make_profile(
    http: httpx.AsyncClient, backend: str, realm: str, *, username_format: str = "any"
) -> str:
    body = {
        "data": {"type": "password_profile", "name": "Shop", "username_format": username_format}
    }
    response = await http.post(profiles_url(realm), json=body, headers=headers(backend))
    return str(data_of(response, 201)["id"])


async def make_member(
    http: httpx.AsyncClient,
    backend: str,
    realm: str,
    profile: str,
    *,
    username: str | None = None,
    password: str = PASSWORD,
) -> tuple[str, str]:
    """A member with a username and password in `profile`: (member id, username)."""
    number = next(_numbers)
    username = username or f"member{number}@example.com"
    info = {"data": {"type": "user_authentication_info", "name": f"Member {number}"}}
    info["data"]["email"] = username if "@" in username else f"m{number}@example.com"
    response = await http.post(infos_url(realm), json=info, headers=headers(backend))
    member = str(data_of(response, 201)["id"])
    secret = {
        "data": {
            "type": "user_authentication_password_profile_info",
            "username": username,
            "password": password,
            "password_profile_id": profile,
        }
    }
    response = await http.post(passwords_url(realm, member), json=secret, headers=headers(backend))
    data_of(response, 201)
    return member, username


async def make_account(http: httpx.AsyncClient, backend: str, name: str = "Acme") -> str:
    body = {"data": {"type": "account", "name": name, "legal_name": f"{name} Ltd"}}
    response = await http.post("/v2/accounts", json=body, headers=headers(backend))
    return str(data_of(response, 201)["id"])


async def add_member(http: httpx.AsyncClient, backend: str, account: str, member: str) -> str:
    body = {"data": {"type": "account_membership", "account_member_id": member}}
    url = f"/v2/accounts/{account}/account-memberships"
    return str(data_of(await http.post(url, json=body, headers=headers(backend)), 201)["id"])


def login_body(profile: str, username: str, password: str = PASSWORD) -> dict[str, Any]:
    return {
        "data": {
            "type": TOKEN_TYPE,
            "authentication_mechanism": "password",
            "password_profile_id": profile,
            "username": username,
            "password": password,
        }
    }


def signup_body(profile: str, username: str, **extra: str) -> dict[str, Any]:
    data = {
        "type": TOKEN_TYPE,
        "authentication_mechanism": "self_signup",
        "password_profile_id": profile,
        "username": username,
        "password": PASSWORD,
        "name": "Leslie",
        "email": "leslie@example.com",
        **extra,
    }
    return {"data": data}


# With the current account token beside the access token: switching accounts, and renewal.
RENEWAL = {"data": {"type": TOKEN_TYPE, "authentication_mechanism": TOKEN_TYPE}}


@dataclass(frozen=True)
class Member:
    """A member of one account, with the username they log in with and an account token."""

    id: str
    account: str
    membership: str
    token: str
    username: str


@dataclass(frozen=True)
class Setup:
    """Two members (A of Acme, B of Bolt) in one profile of the default store, and a product."""

    backend: str
    storefront: str
    product: str
    realm: str
    profile: str
    a: Member
    b: Member

    def as_member(self, member: Member, token: str | None = None) -> dict[str, str]:
        return {**headers(self.storefront), HEADER: token or member.token}


async def member_of_account(
    http: httpx.AsyncClient, backend: str, storefront: str, realm: str, profile: str, name: str
) -> Member:
    """A new member of a new account `name`, logged in."""
    member, username = await make_member(http, backend, realm, profile)
    account = await make_account(http, backend, name)
    membership = await add_member(http, backend, account, member)
    response = await http.post(
        TOKENS_URL, json=login_body(profile, username), headers=headers(storefront)
    )
    (token,) = data_of(response, 201)
    return Member(member, account, membership, token["token"], username)


def item(product: str) -> dict[str, Any]:
    return {"data": {"type": "cart_item", "id": product, "quantity": 2}}


def checkout_body() -> dict[str, Any]:
    contact = {"name": "Ron", "email": "ron@example.com"}
    return {"data": {"contact": contact, "billing_address": ADDRESS, "shipping_address": ADDRESS}}
