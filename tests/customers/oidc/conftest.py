"""A fake provider on a real socket, a store's login provider for it, and a storefront client,
with the steps of a sign-in as the browser takes them: Keyhouse in-process, the provider over
HTTP."""

import secrets
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import func, select, update

from app.customers.customers import Customer
from app.customers.oidc.identities import CustomerIdentity
from app.customers.oidc.provider_client import ProviderClient
from app.customers.oidc.providers import LoginProvider, create_login_provider
from app.customers.oidc.sign_in import CALLBACK_PATH
from app.oauth.clients import CreatedClient
from app.oauth.stores import Store
from app.runtime.db import Database
from app.runtime.server_secret import load_server_keys
from app.runtime.settings import Settings

from ...conftest import TEST_ISSUER, MakeClient, free_port
from ..shoppers import LOGIN_URL, Shopper, headers, new_shopper
from .fake_provider import CLIENT_ID, CLIENT_SECRET, FakeProvider, ThreadServer, provider_app, s256

CALLBACK_URL = TEST_ISSUER + CALLBACK_PATH
# With a query of its own, which the answers must keep.
REDIRECT_URI = "https://shop.example/signed-in?from=keyhouse"


@dataclass
class ProviderServer:
    provider: FakeProvider
    server: ThreadServer


@contextmanager
def running_provider() -> Iterator[ProviderServer]:
    port = free_port()
    provider = FakeProvider(issuer=f"http://127.0.0.1:{port}", redirect_uri=CALLBACK_URL)
    server = ThreadServer(provider_app(provider), port)
    server.start()
    try:
        yield ProviderServer(provider, server)
    finally:
        server.stop()


@pytest.fixture
def provider_server() -> Iterator[ProviderServer]:
    with running_provider() as running:
        yield running


@pytest.fixture
def fake_provider(provider_server: ProviderServer) -> FakeProvider:
    return provider_server.provider


async def register_provider(
    settings: Settings,
    database: Database,
    *,
    store_id: Any,
    issuer: str,
    name: str = "example",
    **linking: Any,
) -> LoginProvider:
    """Registers a login provider as `keyhouse login-providers create` does; `linking`:
    `link_by_email`, `email_domains`."""
    key = load_server_keys(settings).login_provider_secret_encryption
    provider_client = ProviderClient(loopback_http=True)  # the fake provider is on 127.0.0.1
    try:
        async with database.sessions() as session:
            return await create_login_provider(
                session,
                provider_client=provider_client,
                encryption_key=key,
                store_id=store_id,
                name=name,
                issuer=issuer,
                client_id=CLIENT_ID,
                client_secret=CLIENT_SECRET,
                display_name="Example ID",
                **linking,
            )
    finally:
        await provider_client.close()


@pytest.fixture
async def login_provider(
    settings: Settings, database: Database, default_store: Store, fake_provider: FakeProvider
) -> LoginProvider:
    return await register_provider(
        settings, database, store_id=default_store.id, issuer=fake_provider.issuer
    )


@pytest.fixture
async def second_provider(
    settings: Settings, database: Database, default_store: Store
) -> AsyncIterator[FakeProvider]:
    """Another provider of the store, `second`, which may link by email in every domain."""
    with running_provider() as running:
        await register_provider(
            settings,
            database,
            store_id=default_store.id,
            issuer=running.provider.issuer,
            name="second",
            link_by_email=True,
        )
        yield running.provider


async def allow_linking(
    database: Database, *, link_by_email: bool = False, email_domains: str | None = None
) -> None:
    """Changes how the `example` provider links by email, as its operator could have set it."""
    async with database.sessions() as session:
        await session.execute(
            update(LoginProvider)
            .where(LoginProvider.name == "example")
            .values(link_by_email=link_by_email, email_domains=email_domains)
        )
        await session.commit()


async def verified_shopper(
    http: httpx.AsyncClient, bearer: str, backend: str, *, email: str
) -> Shopper:
    """A shopper signed up through the storefront, whose email the store then verified."""
    shopper = await new_shopper(http, bearer, email=email)
    body = {"data": {"type": "customer", "email_verified": True}}
    verified = await http.put(f"/v2/customers/{shopper.id}", json=body, headers=headers(backend))
    assert verified.status_code == 200 and verified.json()["data"]["email_verified"] is True
    return shopper


@dataclass
class Shop:
    """A storefront: its public client, its redirect URI and its PKCE verifier."""

    client: CreatedClient
    redirect_uri: str
    verifier: str

    @property
    def challenge(self) -> str:
        return s256(self.verifier)


@pytest.fixture
async def shop(make_client: MakeClient) -> Shop:
    client = await make_client(name="storefront", public=True, redirect_uris=[REDIRECT_URI])
    return Shop(client, REDIRECT_URI, secrets.token_urlsafe(32))


def query_of(url: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}


async def begin(
    http: httpx.AsyncClient, shop: Shop, *, provider: str = "example", **changes: str | None
) -> httpx.Response:
    """The storefront sends the browser to Keyhouse to sign in with `provider`."""
    parameters = {
        "client_id": shop.client.client.id,
        "redirect_uri": shop.redirect_uri,
        "state": "shop-state",
        "code_challenge": shop.challenge,
        "code_challenge_method": "S256",
        **changes,
    }
    sent = {name: value for name, value in parameters.items() if value is not None}
    return await http.get(f"/oauth/customers/login/{provider}", params=sent)


async def at_provider(url: str) -> httpx.Response:
    """The browser at the provider, which signs its user in at once."""
    async with httpx.AsyncClient(timeout=5) as browser:
        return await browser.get(url)


async def to_callback(http: httpx.AsyncClient, shop: Shop, **changes: str | None) -> str:
    """As far as the provider's redirect back to Keyhouse: its URL."""
    started = await begin(http, shop, **changes)
    assert started.status_code == 302, started.text
    authorized = await at_provider(started.headers["location"])
    assert authorized.status_code == 302, authorized.text
    callback = authorized.headers["location"]
    assert callback.startswith(CALLBACK_URL + "?")
    return str(callback)


async def back_at_shop(http: httpx.AsyncClient, callback: str) -> dict[str, str]:
    """Keyhouse's answer to the provider's redirect: the query it sends the storefront."""
    answer = await http.get(callback)
    assert answer.status_code == 302, answer.text
    location = answer.headers["location"]
    assert location.startswith(REDIRECT_URI + "&"), location
    assert answer.headers["cache-control"] == "no-store"
    assert answer.headers["referrer-policy"] == "no-referrer"
    return query_of(location)


async def sign_in(http: httpx.AsyncClient, shop: Shop, **changes: str | None) -> dict[str, str]:
    """A whole sign-in: the query the storefront is sent back with (a code, or an error)."""
    return await back_at_shop(http, await to_callback(http, shop, **changes))


async def exchange(
    http: httpx.AsyncClient, bearer: str, shop: Shop, code: str, **changes: Any
) -> httpx.Response:
    """The storefront trades the code for a customer token."""
    data = {
        "type": "token",
        "authentication_mechanism": "oidc",
        "oauth_authorization_code": code,
        "oauth_redirect_uri": shop.redirect_uri,
        "oauth_code_verifier": shop.verifier,
        **changes,
    }
    return await http.post(LOGIN_URL, json={"data": data}, headers=headers(bearer))


@pytest.fixture
async def shop_token(http: httpx.AsyncClient, shop: Shop) -> str:
    """The storefront's implicit token."""
    form = {"grant_type": "implicit", "client_id": shop.client.client.id}
    response = await http.post("/oauth/access_token", data=form)
    token: str = response.json()["access_token"]
    return token


async def counts(database: Database) -> tuple[int, int]:
    """How many customers and provider identities the database holds."""
    async with database.sessions() as session:
        customers = await session.scalar(select(func.count()).select_from(Customer))
        identities = await session.scalar(select(func.count()).select_from(CustomerIdentity))
    return customers or 0, identities or 0
