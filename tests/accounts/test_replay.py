"""Account tokens replayed after their end: revoked, of a member whose password changed or who
was deleted, of an account deleted or left, of a login through a password profile deleted. Each
is refused on every route that takes one."""

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from ..conftest import MakeClient
from ..customers.shoppers import headers
from ..world import assert_errors
from .realm import (
    RENEWAL,
    TOKENS_URL,
    Member,
    Setup,
    checkout_body,
    data_of,
    infos_url,
    item,
    login_body,
    passwords_url,
)
from .test_takeover import settle

NEW_PASSWORD = "a brand new password"


async def secret_url(http: httpx.AsyncClient, setup: Setup, member: Member) -> str:
    url = passwords_url(setup.realm, member.id)
    (secret,) = data_of(await http.get(url, headers=headers(setup.backend)), 200)
    return f"{url}/{secret['id']}"


def password_change(password: str = NEW_PASSWORD) -> dict[str, Any]:
    return {"data": {"type": "user_authentication_password_profile_info", "password": password}}


Ending = Callable[[httpx.AsyncClient, Setup, MakeClient], Awaitable[None]]


async def revoked(http: httpx.AsyncClient, setup: Setup, make_client: MakeClient) -> None:
    client = await make_client(name="revoker", public=True)
    form = {"token": setup.a.token, "client_id": client.client.id}
    assert (await http.post("/oauth/revoke", data=form)).status_code == 200


async def password_set_by_a_backend(
    http: httpx.AsyncClient, setup: Setup, make_client: MakeClient
) -> None:
    url = await secret_url(http, setup, setup.a)
    data_of(await http.put(url, json=password_change(), headers=headers(setup.backend)), 200)


async def password_changed_by_the_member(
    http: httpx.AsyncClient, setup: Setup, make_client: MakeClient
) -> None:
    # with another of their tokens: the one it is changed with goes on, this one ends
    login = login_body(setup.profile, setup.a.username)
    (other,) = data_of(
        await http.post(TOKENS_URL, json=login, headers=headers(setup.storefront)), 201
    )
    url = await secret_url(http, setup, setup.a)
    sent = setup.as_member(setup.a, other["token"])
    data_of(await http.put(url, json=password_change(), headers=sent), 200)


async def password_removed(http: httpx.AsyncClient, setup: Setup, make_client: MakeClient) -> None:
    url = await secret_url(http, setup, setup.a)
    assert (await http.delete(url, headers=headers(setup.backend))).status_code == 204


async def member_deleted(http: httpx.AsyncClient, setup: Setup, make_client: MakeClient) -> None:
    url = f"{infos_url(setup.realm)}/{setup.a.id}"
    assert (await http.delete(url, headers=headers(setup.backend))).status_code == 204


async def membership_removed(
    http: httpx.AsyncClient, setup: Setup, make_client: MakeClient
) -> None:
    url = f"/v2/accounts/{setup.a.account}/account-memberships/{setup.a.membership}"
    assert (await http.delete(url, headers=headers(setup.backend))).status_code == 204


async def account_deleted(http: httpx.AsyncClient, setup: Setup, make_client: MakeClient) -> None:
    url = f"/v2/accounts/{setup.a.account}"
    assert (await http.delete(url, headers=headers(setup.backend))).status_code == 204


async def profile_deleted(http: httpx.AsyncClient, setup: Setup, make_client: MakeClient) -> None:
    url = f"/v2/authentication-realms/{setup.realm}/password-profiles/{setup.profile}"
    assert (await http.delete(url, headers=headers(setup.backend))).status_code == 204


ENDINGS = [
    revoked,
    password_set_by_a_backend,
    password_changed_by_the_member,
    password_removed,
    member_deleted,
    membership_removed,
    account_deleted,
    profile_deleted,
]


@pytest.mark.parametrize("ending", ENDINGS, ids=[e.__name__ for e in ENDINGS])
async def test_an_ended_account_token_is_refused_on_every_route(
    app: FastAPI,
    http: httpx.AsyncClient,
    setup: Setup,
    make_client: MakeClient,
    ending: Ending,
) -> None:
    a = setup.a
    await settle(http, setup.backend, account_member_self_management="update_only")
    as_a = setup.as_member(a)
    data_of(await http.post("/v2/carts/a-cart/items", json=item(setup.product), headers=as_a), 201)
    data_of(
        await http.post("/v2/carts/a-cart-2/items", json=item(setup.product), headers=as_a), 201
    )
    order = data_of(
        await http.post("/v2/carts/a-cart/checkout", json=checkout_body(), headers=as_a), 201
    )
    password_url = await secret_url(http, setup, a)

    await ending(http, setup, make_client)

    requests = [
        ("GET", f"/v2/accounts/{a.account}", None),
        ("GET", f"/v2/account-members/{a.id}", None),
        ("PUT", password_url, password_change("the thiefs own password")),
        ("POST", TOKENS_URL, RENEWAL),
        ("GET", "/v2/carts", None),
        ("GET", "/v2/carts/a-cart-2", None),
        ("GET", "/v2/carts/a-cart-2/items", None),
        ("POST", "/v2/carts/a-cart-2/items", item(setup.product)),
        ("POST", "/v2/carts/a-cart-2/checkout", checkout_body()),
        ("GET", "/v2/orders", None),
        ("GET", f"/v2/orders/{order['id']}", None),
        ("GET", f"/v2/orders/{order['id']}/items", None),
    ]
    for method, url, body in requests:
        response = await http.request(method, url, json=body, headers=as_a)
        assert_errors(response, 401)
        assert 'error="invalid_token"' in response.headers["www-authenticate"], (method, url)
