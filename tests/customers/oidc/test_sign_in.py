"""A shopper signs in with a login provider: found, linked or created, and handed a customer
token through a single-use code; and every way that can go wrong, with nothing half-made."""

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from app.customers.customers import Customer
from app.observability.audit import AuditEvent
from app.runtime.db import Database

from ..shoppers import headers, log_in, sign_up
from .conftest import (
    CALLBACK_URL,
    Shop,
    allow_linking,
    back_at_shop,
    counts,
    exchange,
    sign_in,
    to_callback,
)
from .fake_provider import CLIENT_ID, FakeProvider, User, signing_key

pytestmark = pytest.mark.usefixtures("login_provider")


async def events(database: Database, *names: str) -> list[AuditEvent]:
    async with database.sessions() as session:
        query = select(AuditEvent).where(AuditEvent.event.in_(names)).order_by(AuditEvent.id)
        return list(await session.scalars(query))


async def customer_of(database: Database, email: str) -> Customer | None:
    async with database.sessions() as session:
        query = select(Customer).where(Customer.email_key == email.lower())
        return (await session.scalars(query)).first()


async def test_a_new_shopper_signs_in_and_shops_with_the_customer_token(
    http: httpx.AsyncClient,
    shop: Shop,
    shop_token: str,
    fake_provider: FakeProvider,
    database: Database,
) -> None:
    answer = await sign_in(http, shop)
    assert set(answer) == {"from", "code", "state"}
    assert answer["state"] == "shop-state" and answer["from"] == "keyhouse"
    # The provider was asked for the code flow with PKCE (S256), a nonce and our callback.
    (asked,) = fake_provider.authorization_requests
    assert asked["response_type"] == "code" and asked["client_id"] == CLIENT_ID
    assert asked["redirect_uri"] == CALLBACK_URL
    assert asked["code_challenge_method"] == "S256" and len(asked["code_challenge"]) == 43
    assert asked["scope"] == "openid email profile"
    assert len(asked["state"]) >= 43 and len(asked["nonce"]) >= 43
    assert asked["code_challenge"] != shop.challenge  # Keyhouse's own PKCE pair, not the shop's

    token = await exchange(http, shop_token, shop, answer["code"])
    assert token.status_code == 200, token.text
    data = token.json()["data"]
    assert set(data) == {"type", "id", "customer_id", "token", "expires", "expires_in"}
    assert data["expires_in"] == 86_400
    sent = headers(shop_token, data["token"])
    orders = await http.get("/v2/orders", headers=sent)
    assert orders.status_code == 200 and orders.json()["data"] == []
    me = await http.get(f"/v2/customers/{data['customer_id']}", headers=sent)
    assert me.json()["data"]["email"] == "ron@example.com"
    assert me.json()["data"]["email_verified"] is True  # the provider verified it
    assert me.json()["data"]["name"] == "Ron Swanson"
    created, logged_in = await events(
        database, "customer.provider_created", "customer.provider_login"
    )
    assert (created.event, logged_in.event) == (
        "customer.provider_created",
        "customer.provider_login",
    )
    assert created.subject == data["customer_id"] and created.actor == shop.client.client.id
    assert created.details == {"provider": "example"}


async def test_the_same_shopper_is_found_again_by_the_provider_subject(
    http: httpx.AsyncClient,
    shop: Shop,
    shop_token: str,
    fake_provider: FakeProvider,
    database: Database,
) -> None:
    first = await exchange(http, shop_token, shop, (await sign_in(http, shop))["code"])
    # The provider's email may change; `sub` is what names the shopper there.
    fake_provider.user = User("fake-sub-1", "ron.new@example.com", name="Ron")
    second = await exchange(http, shop_token, shop, (await sign_in(http, shop))["code"])
    assert first.json()["data"]["customer_id"] == second.json()["data"]["customer_id"]
    assert await counts(database) == (1, 1)
    assert len(await events(database, "customer.provider_login")) == 2
    assert len(await events(database, "customer.provider_created")) == 1


async def test_an_existing_customer_is_linked_by_a_verified_email(
    http: httpx.AsyncClient, shop: Shop, shop_token: str, backend: str, database: Database
) -> None:
    """Where the operator trusts the provider with every domain (`--link-by-email`), and the
    customer verified the email (test_linking.py: every other case refuses)."""
    await allow_linking(database, link_by_email=True)
    signed_up = await sign_up(http, shop_token, email="RON@example.com", name="Ron S")
    customer_id = signed_up.json()["data"]["id"]
    body = {"data": {"type": "customer", "email_verified": True}}
    verified = await http.put(f"/v2/customers/{customer_id}", json=body, headers=headers(backend))
    assert verified.status_code == 200
    token = await exchange(http, shop_token, shop, (await sign_in(http, shop))["code"])
    assert token.json()["data"]["customer_id"] == customer_id
    assert await counts(database) == (1, 1)
    (linked,) = await events(database, "customer.provider_linked")
    assert linked.subject == signed_up.json()["data"]["id"]
    # The password still works, and the profile is the customer's own.
    assert (await log_in(http, shop_token, email="ron@example.com")).status_code == 200
    customer = await customer_of(database, "ron@example.com")
    assert customer is not None and customer.name == "Ron S"


async def test_a_created_customer_cannot_log_in_with_any_password(
    http: httpx.AsyncClient, shop: Shop, shop_token: str
) -> None:
    await exchange(http, shop_token, shop, (await sign_in(http, shop))["code"])
    for password in ("", "correct horse battery staple"):
        answer = await log_in(http, shop_token, email="ron@example.com", password=password)
        assert answer.status_code in (400, 401)


@pytest.mark.parametrize("existing", [False, True], ids=["new email", "existing customer"])
@pytest.mark.parametrize("verified", [False, "true", None], ids=["false", "text", "absent"])
async def test_an_unverified_email_neither_links_nor_creates(
    http: httpx.AsyncClient,
    shop: Shop,
    shop_token: str,
    fake_provider: FakeProvider,
    database: Database,
    existing: bool,
    verified: Any,
) -> None:
    if existing:
        await sign_up(http, shop_token, email="ron@example.com")
    before = await counts(database)
    fake_provider.user = User("fake-sub-2", "ron@example.com", email_verified=verified)
    answer = await sign_in(http, shop)
    assert answer["error"] == "access_denied" and "code" not in answer
    assert "not verified your email" in answer["error_description"]
    assert answer["state"] == "shop-state"
    assert await counts(database) == before
    (failed,) = await events(database, "customer.provider_login_failed")
    assert failed.details["reason"] == "email_not_verified"


async def test_no_email_from_the_provider_creates_nothing(
    http: httpx.AsyncClient, shop: Shop, fake_provider: FakeProvider, database: Database
) -> None:
    fake_provider.user = User("fake-sub-3", None)
    answer = await sign_in(http, shop)
    assert answer["error"] == "access_denied"
    assert "did not share an email" in answer["error_description"]
    assert await counts(database) == (0, 0)


async def test_profile_claims_may_come_from_userinfo(
    http: httpx.AsyncClient, shop: Shop, shop_token: str, fake_provider: FakeProvider
) -> None:
    fake_provider.claims_in_id_token = False
    token = await exchange(http, shop_token, shop, (await sign_in(http, shop))["code"])
    assert token.status_code == 200, token.text


ID_TOKEN_FORGERIES: dict[str, tuple[dict[str, Any], str]] = {
    "another audience": ({"aud": "someone-else"}, "id_token_aud"),
    "ours among others, no azp": ({"aud": [CLIENT_ID, "someone-else"]}, "id_token_azp"),
    "another azp": ({"azp": "someone-else"}, "id_token_azp"),
    "another nonce": ({"nonce": "not-the-one-we-sent"}, "id_token_nonce"),
    "no nonce": ({"nonce": None}, "id_token_nonce"),
    "another issuer": ({"iss": "https://elsewhere.example"}, "id_token_iss"),
    "expired": ({"exp": 1_000_000_000}, "id_token_exp"),
    "no iat": ({"iat": None}, "id_token_iat"),
}


@pytest.mark.parametrize(
    ("changes", "reason"), ID_TOKEN_FORGERIES.values(), ids=ID_TOKEN_FORGERIES.keys()
)
async def test_an_id_token_failing_a_check_is_refused(
    http: httpx.AsyncClient,
    shop: Shop,
    fake_provider: FakeProvider,
    database: Database,
    changes: dict[str, Any],
    reason: str,
) -> None:
    fake_provider.id_token_changes = changes
    answer = await sign_in(http, shop)
    assert answer["error"] == "access_denied"
    assert answer["error_description"] == "The login provider's answer could not be verified."
    assert await counts(database) == (0, 0)
    (failed,) = await events(database, "customer.provider_login_failed")
    assert failed.details["reason"] == reason


@pytest.mark.parametrize("kid", ["fake-key-1", "never-published"])
async def test_an_id_token_signed_with_another_key_is_refused(
    http: httpx.AsyncClient, shop: Shop, fake_provider: FakeProvider, database: Database, kid: str
) -> None:
    # A key of the forger's own under the provider's key id, or under an id the provider
    # never published (Keyhouse then reads the provider's keys again, and still lacks it).
    fake_provider.signing_kid = kid
    fake_provider.forge_with = signing_key("forger")
    answer = await sign_in(http, shop)
    assert answer["error"] == "access_denied"
    assert await counts(database) == (0, 0)
    (failed,) = await events(database, "customer.provider_login_failed")
    assert failed.details["reason"] == "id_token_signature"


async def test_two_first_sign_ins_at_once_make_one_customer(
    http: httpx.AsyncClient, shop: Shop, shop_token: str, database: Database
) -> None:
    """Two tabs finishing the shopper's first sign-in together: whichever loses the race to
    create the customer finds it on its second try."""
    callbacks = [await to_callback(http, shop), await to_callback(http, shop)]
    answers = await asyncio.gather(*(back_at_shop(http, callback) for callback in callbacks))
    assert all("code" in answer for answer in answers), answers
    tokens = [await exchange(http, shop_token, shop, answer["code"]) for answer in answers]
    assert len({token.json()["data"]["customer_id"] for token in tokens}) == 1
    assert await counts(database) == (1, 1)
