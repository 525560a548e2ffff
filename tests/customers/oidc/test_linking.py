"""Sign-in never links a provider's shopper to the wrong customer: the attacks of issue 19,
each tried as an attacker would, and each refused without a second account of the same email.

A sign-in links by email only when the operator made the provider the authority for the email,
the customer verified it, and the customer holds no account at any provider; it takes `email`
and `email_verified` from one source; it creates no customer where the store takes no sign-ups;
and its code gives no token once the provider is disabled or the customer's credentials moved.
"""

from typing import Any

import httpx
import pytest
from sqlalchemy import update

from app.customers.oidc.id_tokens import identity_of
from app.customers.oidc.providers import LoginProvider, disable_login_provider
from app.oauth.stores import Store
from app.runtime.db import Database

from ..shoppers import PASSWORD, headers, log_in, new_shopper
from .conftest import (
    Shop,
    allow_linking,
    counts,
    exchange,
    sign_in,
    verified_shopper,
)
from .fake_provider import FakeProvider, User
from .test_sign_in import events

pytestmark = pytest.mark.usefixtures("login_provider")

ACCOUNT_EXISTS = (
    "An account with this email already exists: sign in with your password, then link this "
    "login provider from your account."
)


async def refused_as(database: Database, reason: str) -> None:
    (failed,) = await events(database, "customer.provider_login_failed")
    assert failed.details["reason"] == reason


async def test_a_pre_registered_account_is_not_taken_over(
    http: httpx.AsyncClient,
    shop: Shop,
    shop_token: str,
    fake_provider: FakeProvider,
    database: Database,
) -> None:
    """The attacker signs up first, unverified, with the victim's email and keeps the token.
    The victim's first sign-in with a provider (here one trusted for every domain) must not
    link to the attacker's account, nor make a second account of the same email."""
    attacker = await new_shopper(http, shop_token, email="Ron@Example.com")
    await allow_linking(database, link_by_email=True)
    fake_provider.user = User("victim-sub", "ron@example.com")
    answer = await sign_in(http, shop)
    assert answer["error"] == "access_denied" and "code" not in answer
    assert answer["error_description"] == ACCOUNT_EXISTS
    assert await counts(database) == (1, 0)  # the attacker's account, and nothing linked to it
    await refused_as(database, "account_exists")
    # Nothing of the victim's is anywhere the attacker's token or password reaches.
    sent = headers(shop_token, attacker.token)
    assert (await http.get("/v2/orders", headers=sent)).json()["data"] == []
    addresses = await http.get(f"/v2/customers/{attacker.id}/addresses", headers=sent)
    assert addresses.status_code == 200 and addresses.json()["data"] == []
    mine = await http.get(f"/v2/customers/{attacker.id}/provider-links", headers=sent)
    assert mine.json()["data"] == []


async def test_a_second_provider_cannot_take_over_a_customer_of_another(
    http: httpx.AsyncClient,
    shop: Shop,
    shop_token: str,
    fake_provider: FakeProvider,
    second_provider: FakeProvider,
    database: Database,
) -> None:
    """A customer made by a sign-in with `example` (their email verified by it); `second`, which
    its operator lets link by email in every domain, asserts the same email, verified, in
    another case. The customer already has an account at a provider: no link."""
    first = await exchange(http, shop_token, shop, (await sign_in(http, shop))["code"])
    owner = first.json()["data"]
    second_provider.user = User("someone-at-second", "RON@example.COM")
    answer = await sign_in(http, shop, provider="second")
    assert answer["error"] == "access_denied" and answer["error_description"] == ACCOUNT_EXISTS
    assert await counts(database) == (1, 1)
    await refused_as(database, "account_exists")
    # The owner's session is untouched, and `example` still signs them in.
    assert (await http.get("/v2/orders", headers=headers(shop_token, owner["token"]))).is_success
    again = await exchange(http, shop_token, shop, (await sign_in(http, shop))["code"])
    assert again.json()["data"]["customer_id"] == owner["customer_id"]


async def test_a_provider_the_operator_did_not_trust_never_links(
    http: httpx.AsyncClient,
    shop: Shop,
    shop_token: str,
    backend: str,
    fake_provider: FakeProvider,
    database: Database,
) -> None:
    """A verified customer, and a provider registered without `--link-by-email` or domains:
    however verified the provider says the email is, it is not the authority for it."""
    shopper = await verified_shopper(http, shop_token, backend, email="ron@example.com")
    answer = await sign_in(http, shop)
    assert answer["error"] == "access_denied" and answer["error_description"] == ACCOUNT_EXISTS
    assert await counts(database) == (1, 0)
    await refused_as(database, "account_exists")
    sent = headers(shop_token, shopper.token)
    assert (await http.get("/v2/orders", headers=sent)).status_code == 200
    assert (await log_in(http, shop_token, email=shopper.email)).status_code == 200


async def test_a_provider_links_only_in_the_domains_it_is_the_authority_for(
    http: httpx.AsyncClient,
    shop: Shop,
    shop_token: str,
    backend: str,
    fake_provider: FakeProvider,
    database: Database,
) -> None:
    await allow_linking(database, email_domains="example.com")
    ann = await verified_shopper(http, shop_token, backend, email="ann@elsewhere.example")
    fake_provider.user = User("ann-sub", "ann@elsewhere.example")
    refused = await sign_in(http, shop)
    assert refused["error"] == "access_denied" and refused["error_description"] == ACCOUNT_EXISTS
    assert (await http.get("/v2/orders", headers=headers(shop_token, ann.token))).status_code == 200

    ron = await verified_shopper(http, shop_token, backend, email="ron@example.com")
    fake_provider.user = User("ron-sub", "Ron@Example.com")
    token = await exchange(http, shop_token, shop, (await sign_in(http, shop))["code"])
    assert token.status_code == 200, token.text
    assert token.json()["data"]["customer_id"] == ron.id
    assert await counts(database) == (2, 1)
    (linked,) = await events(database, "customer.provider_linked")
    assert linked.subject == ron.id and linked.details == {"provider": "example"}
    # The link moved Ron's credential epoch: the session from before it has ended.
    assert (await http.get("/v2/orders", headers=headers(shop_token, ron.token))).status_code == 401
    fresh = headers(shop_token, token.json()["data"]["token"])
    assert (await http.get("/v2/orders", headers=fresh)).status_code == 200
    assert (await log_in(http, shop_token, email=ron.email, password=PASSWORD)).status_code == 200


async def test_email_and_email_verified_come_from_one_source(
    http: httpx.AsyncClient,
    shop: Shop,
    shop_token: str,
    backend: str,
    fake_provider: FakeProvider,
    database: Database,
) -> None:
    """The ID token names the victim's email without `email_verified`; UserInfo (the same
    `sub`) says another address is verified. The victim's email is not verified by anyone."""
    await allow_linking(database, link_by_email=True)
    victim = await verified_shopper(http, shop_token, backend, email="ron@example.com")
    fake_provider.user = User("attacker-sub", "attacker@example.com", email_verified=True)
    fake_provider.id_token_changes = {"email": "ron@example.com", "email_verified": None}
    answer = await sign_in(http, shop)
    assert answer["error"] == "access_denied"
    assert "not verified your email" in answer["error_description"]
    assert await counts(database) == (1, 0)
    await refused_as(database, "email_not_verified")
    sent = headers(shop_token, victim.token)
    assert (await http.get("/v2/orders", headers=sent)).status_code == 200


PAIRS: dict[str, tuple[dict[str, Any], dict[str, Any] | None, tuple[str | None, bool]]] = {
    "the ID token's pair": (
        {"email": "a@example.com", "email_verified": True},
        {"email": "b@example.com", "email_verified": False},
        ("a@example.com", True),
    ),
    "the ID token's email, unverified there": (
        {"email": "a@example.com"},
        {"email": "a@example.com", "email_verified": True},
        ("a@example.com", False),
    ),
    "UserInfo's pair, the ID token naming no email": (
        {"email_verified": True},
        {"email": "b@example.com"},
        ("b@example.com", False),
    ),
    "UserInfo of another sub": (
        {},
        {"sub": "someone-else", "email": "b@example.com", "email_verified": True},
        (None, False),
    ),
}


@pytest.mark.parametrize(("id_token", "userinfo", "expected"), PAIRS.values(), ids=PAIRS.keys())
def test_identity_takes_the_email_pair_from_one_source(
    id_token: dict[str, Any],
    userinfo: dict[str, Any] | None,
    expected: tuple[str | None, bool],
) -> None:
    answered = None if userinfo is None else {"sub": "s", **userinfo}
    identity = identity_of({"sub": "s", **id_token}, answered)
    assert (identity.email, identity.email_verified) == expected


async def test_sign_in_creates_no_customer_where_sign_up_is_closed(
    http: httpx.AsyncClient, shop: Shop, database: Database
) -> None:
    async with database.sessions() as session:
        await session.execute(update(Store).values(allow_customer_signup=False))
        await session.commit()
    answer = await sign_in(http, shop)
    assert answer["error"] == "access_denied" and "code" not in answer
    assert answer["error_description"] == (
        "This shop opens no new accounts here: sign in with an existing account."
    )
    assert await counts(database) == (0, 0)
    await refused_as(database, "sign_up_closed")


async def test_a_code_of_a_provider_disabled_since_is_refused(
    http: httpx.AsyncClient,
    shop: Shop,
    shop_token: str,
    login_provider: LoginProvider,
    database: Database,
) -> None:
    code = (await sign_in(http, shop))["code"]
    async with database.sessions() as session:
        await disable_login_provider(session, provider_id=login_provider.id)
    answer = await exchange(http, shop_token, shop, code)
    assert answer.status_code == 400
    assert answer.json()["errors"][0]["detail"] == (
        "The login provider of this code has been disabled since; sign in another way."
    )


async def test_a_code_gives_no_token_once_the_credentials_changed(
    http: httpx.AsyncClient, shop: Shop, shop_token: str, backend: str
) -> None:
    """A backend sets a new password between the sign-in and the code's exchange: the code
    was for the credentials before the change."""
    first = await exchange(http, shop_token, shop, (await sign_in(http, shop))["code"])
    customer_id = first.json()["data"]["customer_id"]
    code = (await sign_in(http, shop))["code"]
    body = {"data": {"type": "customer", "password": "a brand new passphrase"}}
    changed = await http.put(f"/v2/customers/{customer_id}", json=body, headers=headers(backend))
    assert changed.status_code == 200, changed.text
    answer = await exchange(http, shop_token, shop, code)
    assert answer.status_code == 400
    assert answer.json()["errors"][0]["detail"] == (
        "The account's password, email or sign-ins changed since this sign-in; sign in again."
    )
