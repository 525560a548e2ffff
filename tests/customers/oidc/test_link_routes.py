"""`/v2/customers/{id}/provider-links`: a logged-in shopper links a provider with their password,
lists their links and unlinks one; and a stolen customer token alone can link nothing."""

from typing import Any

import httpx
import pytest

from app.runtime.db import Database

from ..shoppers import PASSWORD, Shopper, headers, log_in, new_shopper
from .conftest import REDIRECT_URI, Shop, at_provider, back_at_shop, counts, exchange, sign_in
from .fake_provider import FakeProvider, User
from .test_sign_in import events

pytestmark = pytest.mark.usefixtures("login_provider")


def links_url(customer_id: str, provider: str | None = None) -> str:
    url = f"/v2/customers/{customer_id}/provider-links"
    return url if provider is None else f"{url}/{provider}"


async def start_link(
    http: httpx.AsyncClient, shop: Shop, bearer: str, shopper: Shopper, **changes: Any
) -> httpx.Response:
    data = {
        "type": "provider_link",
        "provider": "example",
        "current_password": shopper.password,
        "redirect_uri": shop.redirect_uri,
        "code_challenge": shop.challenge,
        "code_challenge_method": "S256",
        "state": "link-state",
        **changes,
    }
    sent = headers(bearer, shopper.token)
    return await http.post(links_url(shopper.id), json={"data": data}, headers=sent)


async def link(
    http: httpx.AsyncClient, shop: Shop, bearer: str, shopper: Shopper
) -> dict[str, str]:
    """A whole link, from the shopper's request to the query the storefront is sent back with."""
    started = await start_link(http, shop, bearer, shopper)
    assert started.status_code == 201, started.text
    authorized = await at_provider(started.json()["data"]["authorization_url"])
    assert authorized.status_code == 302, authorized.text
    return await back_at_shop(http, authorized.headers["location"])


async def status_of(http: httpx.AsyncClient, bearer: str, customer_token: str) -> int:
    return (await http.get("/v2/orders", headers=headers(bearer, customer_token))).status_code


async def test_a_shopper_links_a_provider_to_their_account(
    http: httpx.AsyncClient,
    shop: Shop,
    shop_token: str,
    fake_provider: FakeProvider,
    database: Database,
) -> None:
    # Unverified, and the provider's email is another: a link needs neither.
    shopper = await new_shopper(http, shop_token, email="ron@example.com")
    elsewhere = (await log_in(http, shop_token, email=shopper.email)).json()["data"]["token"]
    fake_provider.user = User("ron-at-example", "ron.swanson@example.org")
    started = await start_link(http, shop, shop_token, shopper)
    assert started.status_code == 201, started.text
    assert started.headers["cache-control"] == "no-store"
    data = started.json()["data"]
    assert set(data) == {"type", "provider", "authorization_url", "expires_in"}
    assert (data["type"], data["provider"], data["expires_in"]) == (
        "provider_link_request",
        "example",
        600,
    )
    assert data["authorization_url"].startswith(fake_provider.issuer + "/authorize?")
    authorized = await at_provider(data["authorization_url"])
    answer = await back_at_shop(http, authorized.headers["location"])
    assert set(answer) == {"from", "code", "state"} and answer["state"] == "link-state"

    token = await exchange(http, shop_token, shop, answer["code"])
    assert token.status_code == 200, token.text
    assert token.json()["data"]["customer_id"] == shopper.id
    # The link moved the credential epoch: every earlier session ended, the asking one too.
    assert await status_of(http, shop_token, shopper.token) == 401
    assert await status_of(http, shop_token, elsewhere) == 401
    fresh = token.json()["data"]["token"]
    assert await status_of(http, shop_token, fresh) == 200
    listed = await http.get(links_url(shopper.id), headers=headers(shop_token, fresh))
    (linked,) = listed.json()["data"]
    assert set(linked) == {"type", "provider", "display_name", "linked_at"}
    assert (linked["type"], linked["provider"], linked["display_name"]) == (
        "provider_link",
        "example",
        "Example ID",
    )
    (event,) = await events(database, "customer.provider_linked")
    assert event.subject == shopper.id
    # From now on the provider signs the shopper in; the password still works too.
    again = await exchange(http, shop_token, shop, (await sign_in(http, shop))["code"])
    assert again.json()["data"]["customer_id"] == shopper.id
    assert (await log_in(http, shop_token, email=shopper.email)).status_code == 200
    assert await counts(database) == (1, 1)


async def test_a_wrong_password_is_a_failed_login_and_locks_out(
    http: httpx.AsyncClient,
    shop: Shop,
    shop_token: str,
    fake_provider: FakeProvider,
    database: Database,
) -> None:
    """A stolen customer token without the password links nothing, and each guess counts."""
    shopper = await new_shopper(http, shop_token)
    wrong = await start_link(http, shop, shop_token, shopper, current_password="not it")
    failed_login = await log_in(http, shop_token, email=shopper.email, password="not it either")
    assert wrong.status_code == failed_login.status_code == 401
    assert wrong.json() == failed_login.json()
    assert wrong.headers["www-authenticate"] == failed_login.headers["www-authenticate"]
    assert len(await events(database, "customer.login_failed")) == 2
    for guess in range(3):
        guessed = await start_link(http, shop, shop_token, shopper, current_password=f"g{guess}")
        assert guessed.status_code == 401
    locked = await start_link(http, shop, shop_token, shopper)  # even the right one, now
    assert locked.status_code == 429 and int(locked.headers["retry-after"]) >= 1
    assert fake_provider.authorization_requests == []


async def test_another_customers_provider_account_is_not_linked(
    http: httpx.AsyncClient,
    shop: Shop,
    shop_token: str,
    fake_provider: FakeProvider,
    database: Database,
) -> None:
    """The provider's account already signs another customer in: a link does not move it."""
    owner = await exchange(http, shop_token, shop, (await sign_in(http, shop))["code"])
    shopper = await new_shopper(http, shop_token, email="ann@example.com")
    answer = await link(http, shop, shop_token, shopper)
    assert answer["error"] == "access_denied" and "code" not in answer
    assert answer["error_description"] == (
        "This account at the login provider is linked to another customer of this shop."
    )
    (failed,) = await events(database, "customer.provider_login_failed")
    assert failed.details["reason"] == "linked_to_another"
    assert await counts(database) == (2, 1)
    assert await status_of(http, shop_token, shopper.token) == 200  # no epoch moved
    assert await status_of(http, shop_token, owner.json()["data"]["token"]) == 200


async def test_a_link_ends_if_the_credentials_change_before_it_does(
    http: httpx.AsyncClient, shop: Shop, shop_token: str, database: Database
) -> None:
    """The shopper (or someone holding their token and password) starts a link; the password
    changes before the provider sends the browser back: the link is refused."""
    shopper = await new_shopper(http, shop_token)
    started = await start_link(http, shop, shop_token, shopper)
    change = {"type": "password_change", "current_password": PASSWORD, "password": "n" * 12}
    changed = await http.put(
        f"/v2/customers/{shopper.id}/password",
        json={"data": change},
        headers=headers(shop_token, shopper.token),
    )
    assert changed.status_code == 204
    authorized = await at_provider(started.json()["data"]["authorization_url"])
    answer = await back_at_shop(http, authorized.headers["location"])
    assert answer["error"] == "access_denied"
    assert "changed since this link began" in answer["error_description"]
    assert await counts(database) == (1, 0)


async def test_refusals_before_the_provider(
    http: httpx.AsyncClient,
    shop: Shop,
    shop_token: str,
    backend: str,
    fake_provider: FakeProvider,
) -> None:
    shopper, other = await new_shopper(http, shop_token), await new_shopper(http, shop_token)
    body = {"data": {"type": "provider_link"}}
    cases = [
        (await http.post(links_url(shopper.id), json=body, headers=headers(backend)), 400),
        (await start_link(http, shop, shop_token, other, provider="nope"), 400),
        (await start_link(http, shop, shop_token, other, redirect_uri=REDIRECT_URI + "x"), 400),
        (await start_link(http, shop, shop_token, other, code_challenge_method="plain"), 400),
    ]
    ann_as_ron = Shopper(shopper.id, other.email, other.password, other.token)
    cases.append((await start_link(http, shop, shop_token, ann_as_ron), 404))
    for answer, status in cases:
        assert answer.status_code == status, answer.text
    assert "no login provider of that name" in cases[1][0].text
    assert "not registered for this client" in cases[2][0].text
    assert await link(http, shop, shop_token, shopper)  # linked, and then
    fresh = (await log_in(http, shop_token, email=shopper.email)).json()["data"]["token"]
    relogged = Shopper(shopper.id, shopper.email, shopper.password, fresh)
    already = await start_link(http, shop, shop_token, relogged)
    assert already.status_code == 409
    assert len(fake_provider.authorization_requests) == 1


async def test_a_shopper_unlinks_a_provider(
    http: httpx.AsyncClient, shop: Shop, shop_token: str, backend: str, database: Database
) -> None:
    first = await exchange(http, shop_token, shop, (await sign_in(http, shop))["code"])
    customer_id, token = first.json()["data"]["customer_id"], first.json()["data"]["token"]
    second = await exchange(http, shop_token, shop, (await sign_in(http, shop))["code"])
    other_session = second.json()["data"]["token"]
    stranger = await new_shopper(http, shop_token)
    url = links_url(customer_id, "example")
    assert (await http.delete(url, headers=headers(shop_token, stranger.token))).status_code == 404
    not_linked = links_url(customer_id, "second")
    assert (await http.delete(not_linked, headers=headers(shop_token, token))).status_code == 404

    unlinked = await http.delete(url, headers=headers(shop_token, token))
    assert unlinked.status_code == 204, unlinked.text
    # The asking session stays; the shopper's others end (the unlink moved the epoch).
    assert await status_of(http, shop_token, token) == 200
    assert await status_of(http, shop_token, other_session) == 401
    listed = await http.get(links_url(customer_id), headers=headers(shop_token, token))
    assert listed.status_code == 200 and listed.json()["data"] == []
    (event,) = await events(database, "customer.provider_unlinked")
    assert event.subject == customer_id and event.details == {"provider": "example"}
    assert (await http.delete(url, headers=headers(backend))).status_code == 404
    # The provider's account no longer signs in to that customer, nor makes a second one.
    refused = await sign_in(http, shop)
    assert refused["error"] == "access_denied"
    assert await counts(database) == (2, 0)


async def test_a_backend_lists_and_unlinks_a_customers_providers(
    http: httpx.AsyncClient, shop: Shop, shop_token: str, backend: str
) -> None:
    first = await exchange(http, shop_token, shop, (await sign_in(http, shop))["code"])
    customer_id, token = first.json()["data"]["customer_id"], first.json()["data"]["token"]
    listed = await http.get(links_url(customer_id), headers=headers(backend))
    assert [row["provider"] for row in listed.json()["data"]] == ["example"]
    assert (await http.get(links_url(customer_id), headers=headers(shop_token))).status_code == 403
    unlinked = await http.delete(links_url(customer_id, "example"), headers=headers(backend))
    assert unlinked.status_code == 204
    assert await status_of(http, shop_token, token) == 401  # a backend spares no session
