"""`EP-Account-Management-Authentication-Token` on the store API, beside an implicit token: an
account's own account, member, carts, checkout and orders, and never another account's."""

import uuid
from typing import Any

import httpx
from fastapi import FastAPI

from app.accounts.accounts import Account
from app.accounts.members import AccountMember
from app.accounts.memberships import AccountMembership
from app.accounts.tokens import AccountTokenIssuer
from app.runtime.db import Database

from ..customers.shoppers import backend_token, headers, new_shopper
from ..store.conftest import ADDRESS
from ..world import assert_errors
from .realm import (
    HEADER,
    RENEWAL,
    SETTINGS_URL,
    TOKENS_URL,
    Member,
    Setup,
    add_member,
    checkout_body,
    data_of,
    item,
    login_body,
    passwords_url,
    realm_id,
)


async def test_an_account_token_reads_its_own_account_and_member(
    http: httpx.AsyncClient, setup: Setup
) -> None:
    a, b = setup.a, setup.b
    own = data_of(await http.get(f"/v2/accounts/{a.account}", headers=setup.as_member(a)), 200)
    assert (own["id"], own["name"]) == (a.account, "Acme")
    assert_errors(await http.get(f"/v2/accounts/{b.account}", headers=setup.as_member(a)), 404)
    assert_errors(
        await http.get(f"/v2/accounts/{a.account}", headers=headers(setup.storefront)), 403
    )
    me = data_of(await http.get(f"/v2/account-members/{a.id}", headers=setup.as_member(a)), 200)
    assert me["id"] == a.id
    assert_errors(await http.get(f"/v2/account-members/{b.id}", headers=setup.as_member(a)), 404)
    # the rest of accounts stays the backends'
    assert_errors(await http.get("/v2/accounts", headers=setup.as_member(a)), 403)


async def test_account_carts_checkout_and_orders(http: httpx.AsyncClient, setup: Setup) -> None:
    a, b = setup.a, setup.b
    added = await http.post(
        "/v2/carts/acme-cart/items", json=item(setup.product), headers=setup.as_member(a)
    )
    assert added.status_code == 201, added.text
    listed = (await http.get("/v2/carts", headers=setup.as_member(a))).json()
    assert [c["id"] for c in listed["data"]] == ["acme-cart"]
    assert listed["data"][0]["meta"]["display_price"]["with_tax"]["amount"] > 0
    # another account, and a storefront alone, do not see it
    for sent in (setup.as_member(b), headers(setup.storefront)):
        assert_errors(await http.get("/v2/carts/acme-cart", headers=sent), 404)
        refused = await http.post(
            "/v2/carts/acme-cart/items", json=item(setup.product), headers=sent
        )
        assert_errors(refused, 404)
        assert_errors(
            await http.post("/v2/carts/acme-cart/checkout", json=checkout_body(), headers=sent), 404
        )
    assert (await http.get("/v2/carts", headers=setup.as_member(b))).json()["data"] == []
    assert_errors(await http.get("/v2/carts", headers=headers(setup.storefront)), 403)
    backend_carts = (await http.get("/v2/carts", headers=headers(setup.backend))).json()["data"]
    assert "acme-cart" in [c["id"] for c in backend_carts]
    # checkout: an order of the account
    response = await http.post(
        "/v2/carts/acme-cart/checkout", json=checkout_body(), headers=setup.as_member(a)
    )
    order = data_of(response, 201)
    assert order["relationships"]["account"]["data"] == {"type": "account", "id": a.account}
    assert order["customer"] == {"name": "Ron", "email": "ron@example.com"}
    orders = (await http.get("/v2/orders", headers=setup.as_member(a))).json()
    assert [o["id"] for o in orders["data"]] == [order["id"]]
    assert (
        data_of(await http.get(f"/v2/orders/{order['id']}", headers=setup.as_member(a)), 200)["id"]
        == order["id"]
    )
    assert (await http.get("/v2/orders", headers=setup.as_member(b))).json()["data"] == []
    assert_errors(await http.get(f"/v2/orders/{order['id']}", headers=setup.as_member(b)), 404)
    assert_errors(
        await http.get(f"/v2/orders/{order['id']}/items", headers=setup.as_member(b)), 404
    )
    filtered = await http.get(
        f"/v2/orders?filter=eq(account_id,{a.account})", headers=headers(setup.backend)
    )
    assert [o["id"] for o in filtered.json()["data"]] == [order["id"]]


async def test_a_checkout_with_an_account_token_needs_a_contact(
    http: httpx.AsyncClient, setup: Setup
) -> None:
    a = setup.a
    await http.post("/v2/carts/c2/items", json=item(setup.product), headers=setup.as_member(a))
    body = {"data": {"billing_address": ADDRESS, "shipping_address": ADDRESS}}
    assert_errors(
        await http.post("/v2/carts/c2/checkout", json=body, headers=setup.as_member(a)), 400
    )


async def expired_token(app: FastAPI, database: Database, member: Member) -> str:
    """A token of the member's (one) account that expired the moment it was signed."""
    async with database.sessions() as session:
        found = await session.get(AccountMember, uuid.UUID(member.id))
        membership = await session.get(AccountMembership, uuid.UUID(member.membership))
        account = await session.get(Account, uuid.UUID(member.account))
    assert found is not None and membership is not None and account is not None
    issuer: AccountTokenIssuer = app.state.account_token_issuer
    (expired,) = await issuer.issue(
        found,
        [(membership, account)],
        store_id=account.store_id,
        epoch=0,
        password_profile_id=None,
        ttl=0,
    )
    return expired.token


async def test_ended_tokens_are_401(
    app: FastAPI, http: httpx.AsyncClient, setup: Setup, database: Database
) -> None:
    a, b = setup.a, setup.b
    url = f"/v2/accounts/{a.account}"
    assert_errors(await http.get(url, headers=setup.as_member(a, "not-a-token")), 401)
    response = await http.get(
        url, headers=setup.as_member(a, await expired_token(app, database, a))
    )
    assert_errors(response, 401)
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    # a removed membership
    membership_url = f"/v2/accounts/{a.account}/account-memberships/{a.membership}"
    assert (await http.delete(membership_url, headers=headers(setup.backend))).status_code == 204
    assert_errors(await http.get(url, headers=setup.as_member(a)), 401)
    assert_errors(await http.get("/v2/orders", headers=setup.as_member(a)), 401)
    # a deleted account's member token
    assert (
        await http.delete(f"/v2/accounts/{b.account}", headers=headers(setup.backend))
    ).status_code == 204
    assert_errors(await http.get("/v2/carts", headers=setup.as_member(b)), 401)


async def test_a_customer_token_and_an_account_token_together_are_400(
    http: httpx.AsyncClient, setup: Setup
) -> None:
    shopper = await new_shopper(http, setup.storefront)
    sent = {**headers(setup.storefront, shopper.token), HEADER: setup.a.token}
    assert_errors(await http.get("/v2/orders", headers=sent), 400)


async def test_a_token_of_another_store_is_401(
    http: httpx.AsyncClient, setup: Setup, make_client: Any, make_store: Any
) -> None:
    other = await make_store("other")
    their_backend = await backend_token(http, await make_client(name="b", store_id=other.id))
    sent = {**headers(their_backend), HEADER: setup.a.token}
    assert_errors(await http.get("/v2/orders", headers=sent), 401)


async def test_switching_accounts_with_the_current_token(
    http: httpx.AsyncClient, setup: Setup
) -> None:
    a, b = setup.a, setup.b
    await add_member(http, setup.backend, b.account, a.id)  # A's member joins Bolt too
    response = await http.post(TOKENS_URL, json=RENEWAL, headers=setup.as_member(a))
    assert response.status_code == 201, response.text
    tokens = response.json()["data"]
    assert [t["account_id"] for t in tokens] == [a.account, b.account]
    assert response.json()["meta"]["account_member_id"] == a.id
    bolt = {**headers(setup.storefront), HEADER: tokens[1]["token"]}
    assert data_of(await http.get(f"/v2/accounts/{b.account}", headers=bolt), 200)["name"] == "Bolt"
    without = await http.post(TOKENS_URL, json=RENEWAL, headers=headers(setup.storefront))
    assert_errors(without, 401)


async def test_a_member_changes_their_own_password_where_the_realm_allows_it(
    http: httpx.AsyncClient, setup: Setup
) -> None:
    a, b = setup.a, setup.b
    realm = await realm_id(http, setup.backend)
    secrets = await http.get(passwords_url(realm, a.id), headers=headers(setup.backend))
    (secret,) = secrets.json()["data"]
    url = f"{passwords_url(realm, a.id)}/{secret['id']}"
    change = {
        "data": {
            "type": "user_authentication_password_profile_info",
            "password": "a brand new password",
        }
    }
    assert_errors(await http.put(url, json=change, headers=setup.as_member(a)), 403)  # off
    assert_errors(await http.put(url, json=change, headers=headers(setup.storefront)), 403)
    settings = {
        "data": {
            "type": "account_authentication_settings",
            "account_member_self_management": "update_only",
        }
    }
    data_of(await http.put(SETTINGS_URL, json=settings, headers=headers(setup.backend)), 200)
    assert_errors(await http.put(url, json=change, headers=setup.as_member(b)), 404)  # not theirs
    # another token of the member, from a second login
    again = await http.post(
        TOKENS_URL,
        json=login_body(secret["password_profile_id"], secret["username"]),
        headers=headers(setup.storefront),
    )
    (other_token,) = data_of(again, 201)
    changed = data_of(await http.put(url, json=change, headers=setup.as_member(a)), 200)
    assert changed["username"] == secret["username"]
    # the token it was changed with goes on; the member's other tokens end
    assert (
        await http.get(f"/v2/accounts/{a.account}", headers=setup.as_member(a))
    ).status_code == 200
    other = setup.as_member(a, other_token["token"])
    assert_errors(await http.get(f"/v2/accounts/{a.account}", headers=other), 401)
    login = login_body(secret["password_profile_id"], secret["username"], "a brand new password")
    assert (
        await http.post(TOKENS_URL, json=login, headers=headers(setup.storefront))
    ).status_code == 201
