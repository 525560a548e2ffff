"""Each step of a sign-in happens once: the callback's state, the provider's code, and the
Keyhouse code; and the Keyhouse code only for the client, redirect URI and PKCE verifier it
was issued to."""

import asyncio
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from app.customers.oidc.logins import ProviderLogin
from app.runtime.db import Database, utcnow

from ...conftest import MakeClient
from ..shoppers import headers, implicit_token
from .conftest import (
    REDIRECT_URI,
    Shop,
    back_at_shop,
    begin,
    counts,
    exchange,
    query_of,
    sign_in,
    to_callback,
)
from .fake_provider import FakeProvider
from .test_sign_in import events

pytestmark = pytest.mark.usefixtures("login_provider")


@pytest.mark.parametrize(
    ("query", "status"),
    [("", 400), ("?code=abc", 400), ("?state=made-up&code=abc", 404), ("?state=a&state=b", 400)],
)
async def test_a_callback_without_a_known_state_is_a_page_and_goes_nowhere(
    http: httpx.AsyncClient, database: Database, query: str, status: int
) -> None:
    answer = await http.get(f"/oauth/customers/login/callback{query}")
    assert answer.status_code == status
    assert answer.headers["content-type"].startswith("text/html")
    assert "location" not in answer.headers
    assert "start again from the shop" in answer.text
    assert answer.headers["cache-control"] == "no-store"
    assert "default-src 'none'" in answer.headers["content-security-policy"]
    assert await counts(database) == (0, 0)


async def test_a_replayed_callback_is_refused(
    http: httpx.AsyncClient, shop: Shop, fake_provider: FakeProvider, database: Database
) -> None:
    callback = await to_callback(http, shop)
    assert "code" in await back_at_shop(http, callback)
    again = await back_at_shop(http, callback)
    assert again["error"] == "invalid_request"
    assert again["error_description"] == (
        "This sign-in has already been completed: start again from the shop."
    )
    assert len(fake_provider.token_requests) == 1  # the replay never reached the provider
    assert await counts(database) == (1, 1)


async def test_a_replayed_provider_code_is_refused_by_the_provider(
    http: httpx.AsyncClient, shop: Shop, fake_provider: FakeProvider, database: Database
) -> None:
    first = await to_callback(http, shop)
    await back_at_shop(http, first)
    # A fresh sign-in's state with the first one's code: Keyhouse asks the provider, which
    # refuses a code it already redeemed (and whose PKCE verifier is not this sign-in's).
    started = await begin(http, shop)
    state = query_of(started.headers["location"])["state"]
    replayed = first.replace(query_of(first)["state"], state)
    answer = await back_at_shop(http, replayed)
    assert answer["error"] == "access_denied"
    assert (
        answer["error_description"] == "The login provider refused the sign-in; please start again."
    )
    assert await counts(database) == (1, 1)
    (failed,) = await events(database, "customer.provider_login_failed")
    assert failed.details["reason"] == "code_refused"


async def test_a_sign_in_left_too_long_is_refused(
    http: httpx.AsyncClient, shop: Shop, database: Database
) -> None:
    callback = await to_callback(http, shop)
    async with database.sessions() as session:
        past = utcnow() - timedelta(seconds=1)
        await session.execute(update(ProviderLogin).values(expires_at=past))
        await session.commit()
    answer = await back_at_shop(http, callback)
    assert answer["error"] == "invalid_request"
    assert "took too long" in answer["error_description"]
    assert await counts(database) == (0, 0)


async def test_a_replayed_keyhouse_code_is_refused_and_revokes_the_first_token(
    http: httpx.AsyncClient, shop: Shop, shop_token: str, database: Database
) -> None:
    code = (await sign_in(http, shop))["code"]
    first = await exchange(http, shop_token, shop, code)
    customer_token = first.json()["data"]["token"]
    sent = headers(shop_token, customer_token)
    assert (await http.get("/v2/orders", headers=sent)).status_code == 200
    again = await exchange(http, shop_token, shop, code)
    assert again.status_code == 400
    assert again.json()["errors"][0]["detail"] == (
        "The login code has already been used; sign in again."
    )
    assert (await http.get("/v2/orders", headers=sent)).status_code == 401
    (replayed,) = await events(database, "customer.provider_code_replayed")
    assert replayed.details == {"revoked_token": first.json()["data"]["id"]}


async def test_a_code_is_bound_to_its_client_redirect_uri_and_verifier(
    http: httpx.AsyncClient,
    shop: Shop,
    shop_token: str,
    make_client: MakeClient,
) -> None:
    code = (await sign_in(http, shop))["code"]
    other_client = await make_client(name="other storefront", public=True)
    other_token = await implicit_token(http, other_client)
    refusals = [
        (await exchange(http, other_token, shop, code), "issued to another client"),
        (
            await exchange(http, shop_token, shop, code, oauth_redirect_uri=REDIRECT_URI + "x"),
            "issued to another client or for another redirect URI",
        ),
        (
            await exchange(http, shop_token, shop, code, oauth_code_verifier="v" * 43),
            "does not match the code challenge",
        ),
    ]
    for answer, detail in refusals:
        assert answer.status_code == 400, answer.text
        assert detail in answer.json()["errors"][0]["detail"]
    made_up = await exchange(http, shop_token, shop, "made-up-code")  # no such login: 404
    assert made_up.status_code == 404, made_up.text
    assert "not valid" in made_up.json()["errors"][0]["detail"]
    # None of these used the code up.
    assert (await exchange(http, shop_token, shop, code)).status_code == 200


async def test_an_expired_code_is_refused(
    http: httpx.AsyncClient, shop: Shop, shop_token: str, database: Database
) -> None:
    code = (await sign_in(http, shop))["code"]
    async with database.sessions() as session:
        past = utcnow() - timedelta(seconds=1)
        await session.execute(update(ProviderLogin).values(code_expires_at=past))
        await session.commit()
    answer = await exchange(http, shop_token, shop, code)
    assert answer.status_code == 400
    assert answer.json()["errors"][0]["detail"] == "The login code has expired; sign in again."


async def test_a_code_of_a_deleted_customer_is_refused(
    http: httpx.AsyncClient, shop: Shop, shop_token: str, backend: str
) -> None:
    first = await exchange(http, shop_token, shop, (await sign_in(http, shop))["code"])
    customer_id = first.json()["data"]["customer_id"]
    code = (await sign_in(http, shop))["code"]
    deleted = await http.delete(f"/v2/customers/{customer_id}", headers=headers(backend))
    assert deleted.status_code == 204
    assert (await exchange(http, shop_token, shop, code)).status_code == 404  # no such login now


BAD_EXCHANGES = {
    "no code": {"oauth_authorization_code": None},
    "no verifier": {"oauth_code_verifier": None},
    "short verifier": {"oauth_code_verifier": "v" * 42},
    "no redirect uri": {"oauth_redirect_uri": None},
    "empty redirect uri": {"oauth_redirect_uri": ""},  # once a 500 (an assertion failed)
    "code with spaces": {"oauth_authorization_code": "a b"},
}


@pytest.mark.parametrize("changes", BAD_EXCHANGES.values(), ids=BAD_EXCHANGES.keys())
async def test_a_malformed_exchange_is_400(
    http: httpx.AsyncClient, shop: Shop, shop_token: str, changes: dict[str, Any]
) -> None:
    answer = await exchange(http, shop_token, shop, "some-code", **changes)
    assert answer.status_code == 400
    assert answer.json()["errors"][0]["detail"].startswith("Invalid body.data")


async def test_of_two_exchanges_at_once_one_wins_and_its_token_is_revoked(
    http: httpx.AsyncClient, shop: Shop, shop_token: str, database: Database
) -> None:
    """The same code sent twice at once (a storefront's double submit, or a thief racing
    it): one exchange succeeds, the other is a replay, which revokes what the first got."""
    code = (await sign_in(http, shop))["code"]
    answers = await asyncio.gather(
        exchange(http, shop_token, shop, code), exchange(http, shop_token, shop, code)
    )
    assert sorted(answer.status_code for answer in answers) == [200, 400]
    (won,) = [answer for answer in answers if answer.status_code == 200]
    sent = headers(shop_token, won.json()["data"]["token"])
    assert (await http.get("/v2/orders", headers=sent)).status_code == 401
    assert len(await events(database, "customer.provider_code_replayed")) == 1
