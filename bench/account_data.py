"""An account member who logs in with a password, made through Keyhouse's API as a backend sets
one up (docs/contract.md §8): the store's account realm (made when its settings are first
read), a password profile, a member with a username and a password (hashed as customers'
passwords are), an account, and the membership that gives the member a token for it.
"""

import json
import secrets
from dataclasses import dataclass
from typing import Any

from harness import fail, request, send_json

SETTINGS_PATH = "/v2/settings/account-authentication"
ACCOUNT_LOGIN_PATH = "/v2/account-members/tokens"
ACCOUNT_TOKEN_HEADER = "EP-Account-Management-Authentication-Token"  # noqa: S105 (a header)
LOGIN_TYPE = "account_management_authentication_token"


@dataclass(frozen=True, slots=True)
class AccountMember:
    """A member of one account, and what they log in with."""

    member_id: str
    account_id: str
    profile_id: str
    username: str
    password: str

    def login_body(self) -> bytes:
        """`POST /v2/account-members/tokens`, mechanism `password`."""
        data = {
            "type": LOGIN_TYPE,
            "authentication_mechanism": "password",
            "password_profile_id": self.profile_id,
            "username": self.username,
            "password": self.password,
        }
        return json.dumps({"data": data}).encode()


def _realm_id(port: int, headers: dict[str, str]) -> str:
    status, _, body = request(port, "GET", SETTINGS_PATH, headers=headers)
    if status != 200:
        fail(f"Keyhouse answered {status} to GET {SETTINGS_PATH}: {body[:300]!r}")
    realm: str = json.loads(body)["data"]["relationships"]["authentication_realm"]["data"]["id"]
    return realm


def _created(port: int, path: str, data: dict[str, Any], headers: dict[str, str]) -> str:
    created: str = send_json(port, "POST", path, {"data": data}, headers)["data"]["id"]
    return created


def make_account_member(port: int, backend: str, username: str) -> AccountMember:
    """A member of a new account, made with `backend` (a client_credentials bearer header)."""
    headers = {"Authorization": backend}
    realm = f"/v2/authentication-realms/{_realm_id(port, headers)}"
    profile = {"type": "password_profile", "name": "Benchmark", "username_format": "email"}
    profile_id = _created(port, f"{realm}/password-profiles", profile, headers)
    info = {"type": "user_authentication_info", "name": "Bench Member", "email": username}
    member_id = _created(port, f"{realm}/user-authentication-info", info, headers)
    password = secrets.token_urlsafe(18)
    credentials = {
        "type": "user_authentication_password_profile_info",
        "username": username,
        "password": password,
        "password_profile_id": profile_id,
    }
    _created(
        port,
        f"{realm}/user-authentication-info/{member_id}/user-authentication-password-profile-info",
        credentials,
        headers,
    )
    account = {"type": "account", "name": "Benchmark Ltd"}
    account_id = _created(port, "/v2/accounts", account, headers)
    membership = {"type": "account_membership", "account_member_id": member_id}
    _created(port, f"/v2/accounts/{account_id}/account-memberships", membership, headers)
    return AccountMember(member_id, account_id, profile_id, username, password)


def account_token(port: int, bearer: str, member: AccountMember) -> str:
    """The member's account token for their one account, from a password login beside
    `bearer` (any access token of the store, as an `Authorization` header)."""
    headers = {"Authorization": bearer}
    document = send_json(port, "POST", ACCOUNT_LOGIN_PATH, json.loads(member.login_body()), headers)
    tokens = [entry["token"] for entry in document["data"]]
    if len(tokens) != 1 or document["data"][0].get("account_id") != member.account_id:
        fail(f"POST {ACCOUNT_LOGIN_PATH} gave no token of the member's account: {document}")
    token: str = tokens[0]
    return token
