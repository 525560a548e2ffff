"""A provider that is down, answers garbage, refuses, or is not the one the sign-in went to:
the storefront gets a clear error, and nothing is created nor left reusable."""

import httpx
import pytest
from sqlalchemy import select, update

from app.customers.oidc.logins import ProviderLogin
from app.customers.oidc.providers import LoginProvider
from app.runtime.db import Database

from .conftest import (
    ProviderServer,
    Shop,
    back_at_shop,
    begin,
    counts,
    query_of,
    sign_in,
    to_callback,
)
from .fake_provider import FakeProvider
from .test_sign_in import events

pytestmark = pytest.mark.usefixtures("login_provider")


async def sign_ins(database: Database) -> list[ProviderLogin]:
    async with database.sessions() as session:
        return list(await session.scalars(select(ProviderLogin)))


async def test_a_provider_down_at_the_start_sends_the_shopper_back_with_an_error(
    http: httpx.AsyncClient, shop: Shop, provider_server: ProviderServer, database: Database
) -> None:
    provider_server.server.stop()
    started = await begin(http, shop)
    assert started.status_code == 302
    answer = query_of(started.headers["location"])
    assert answer["error"] == "temporarily_unavailable"
    assert answer["error_description"] == "The login provider cannot be reached; try again later."
    assert answer["state"] == "shop-state"
    assert await sign_ins(database) == []


async def test_a_provider_down_at_the_callback_creates_nothing_and_uses_the_sign_in_up(
    http: httpx.AsyncClient, shop: Shop, provider_server: ProviderServer, database: Database
) -> None:
    callback = await to_callback(http, shop)
    provider_server.server.stop()
    answer = await back_at_shop(http, callback)
    assert answer["error"] == "temporarily_unavailable"
    assert await counts(database) == (0, 0)
    (failed,) = await events(database, "customer.provider_login_failed")
    assert failed.details["reason"] == "provider_unavailable"
    # The sign-in is spent: its callback cannot be tried again.
    again = await back_at_shop(http, callback)
    assert "already been completed" in again["error_description"]


@pytest.mark.parametrize("status", [500, 503])
async def test_a_token_endpoint_failing_is_unavailable(
    http: httpx.AsyncClient,
    shop: Shop,
    fake_provider: FakeProvider,
    database: Database,
    status: int,
) -> None:
    fake_provider.token_status = status
    answer = await sign_in(http, shop)
    assert answer["error"] == "temporarily_unavailable"
    assert await counts(database) == (0, 0)


DISCOVERY_CHANGES = {
    "another issuer": {"issuer": "https://elsewhere.example"},
    "no S256": {"code_challenge_methods_supported": ["plain"]},
    "only HS256": {"id_token_signing_alg_values_supported": ["HS256"]},
    "token endpoint not https": {"token_endpoint": "http://provider.example/token"},
}


@pytest.mark.parametrize("changes", DISCOVERY_CHANGES.values(), ids=DISCOVERY_CHANGES.keys())
async def test_a_provider_whose_metadata_went_bad_is_a_server_error(
    http: httpx.AsyncClient,
    shop: Shop,
    fake_provider: FakeProvider,
    database: Database,
    changes: dict[str, object],
) -> None:
    fake_provider.discovery_changes = changes  # after registration, before this worker read it
    started = await begin(http, shop)
    answer = query_of(started.headers["location"])
    assert answer["error"] == "server_error"
    # A fixed sentence saying what is wrong, never what the provider sent.
    assert answer["error_description"].startswith("The ")
    assert "elsewhere" not in answer["error_description"]
    assert await sign_ins(database) == []


async def test_the_provider_refusing_the_shopper_is_access_denied(
    http: httpx.AsyncClient, shop: Shop, fake_provider: FakeProvider, database: Database
) -> None:
    started = await begin(http, shop)
    state = query_of(started.headers["location"])["state"]
    callback = f"/oauth/customers/login/callback?error=access_denied&state={state}"
    answer = await back_at_shop(http, f"{callback}&iss={fake_provider.issuer}")
    assert answer["error"] == "access_denied"
    assert answer["error_description"] == (
        "The sign-in was cancelled or refused at the login provider."
    )
    assert fake_provider.token_requests == []
    assert await counts(database) == (0, 0)


@pytest.mark.parametrize("issuer", ["https://elsewhere.example", None])
async def test_an_answer_from_another_issuer_is_refused(
    http: httpx.AsyncClient,
    shop: Shop,
    fake_provider: FakeProvider,
    database: Database,
    issuer: str | None,
) -> None:
    """RFC 9207: the provider names itself in its answers; an answer naming another issuer,
    or none, may come from another provider sharing the callback (a mix-up attack)."""
    callback = await to_callback(http, shop)
    query = {**query_of(callback), "iss": issuer}
    sent = "&".join(f"{name}={value}" for name, value in query.items() if value is not None)
    answer = await back_at_shop(http, f"/oauth/customers/login/callback?{sent}")
    assert answer["error"] == "access_denied"
    assert fake_provider.token_requests == []
    assert await counts(database) == (0, 0)


async def test_a_provider_disabled_during_a_sign_in_stops_it(
    http: httpx.AsyncClient, shop: Shop, login_provider: LoginProvider, database: Database
) -> None:
    callback = await to_callback(http, shop)
    async with database.sessions() as session:
        await session.execute(update(LoginProvider).values(enabled=False))
        await session.commit()
    answer = await back_at_shop(http, callback)
    assert answer["error"] == "access_denied"
    assert answer["error_description"] == "This login provider is disabled."
    assert await counts(database) == (0, 0)


async def test_a_client_secret_that_does_not_decrypt_is_a_server_error(
    http: httpx.AsyncClient, shop: Shop, fake_provider: FakeProvider, database: Database
) -> None:
    """Encrypted under another server secret (or damaged): the operator's problem, told as
    such, and the provider is never sent a wrong secret."""
    callback = await to_callback(http, shop)
    async with database.sessions() as session:
        await session.execute(update(LoginProvider).values(client_secret_encrypted=b"x" * 40))
        await session.commit()
    answer = await back_at_shop(http, callback)
    assert answer["error"] == "server_error"
    assert fake_provider.token_requests == []
    (failed,) = await events(database, "customer.provider_login_failed")
    assert failed.details["reason"] == "secret_unreadable"
