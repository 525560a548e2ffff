"""Signing in with a real OpenID provider, from the storefront page, in headless Chromium.

The provider is node-oidc-provider (`tests/js/oidc_provider.mjs`) on a port of its own, with
one test user and Keyhouse as its client. The shopper clicks "Sign in with …" on the
storefront, signs in and consents on the provider's pages, and lands back on the storefront
logged in, with their orders read through the customer token. Then the same provider refuses
what an attacker would try: the callback replayed, and the provider's code replayed into a
fresh sign-in. A provider that is down gets the shopper a clear error on the storefront.
"""

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import select

from app.customers.customers import Customer
from app.customers.oidc.identities import CustomerIdentity
from app.customers.oidc.provider_client import ProviderClient
from app.customers.oidc.providers import create_login_provider
from app.customers.oidc.sign_in import CALLBACK_PATH
from app.oauth.stores import Store
from app.runtime.db import Database
from app.runtime.server_secret import load_server_keys

from ..conftest import LiveServer, MakeClient, free_port
from ..node import JS_DIR
from .test_storefront_browser import browser as browser
from .test_storefront_browser import open_page, wait_for_text
from .test_storefront_browser import storefront_origin as storefront_origin

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = ROOT / "test-artifacts" / "storefront-oidc.png"
PROVIDER_CLIENT_ID = "keyhouse"
PROVIDER_SECRET = "a secret the provider gave Keyhouse"
ACCOUNTS = {"ron": {"email": "ron@example.com", "email_verified": True, "name": "Ron Swanson"}}
START_SECONDS = 20.0


class NodeProvider:
    """node-oidc-provider in a child process."""

    def __init__(self, redirect_uri: str, log: Path) -> None:
        port = free_port()
        self.issuer = f"http://127.0.0.1:{port}"
        environment = {
            **os.environ,
            "PORT": str(port),
            "CLIENT_ID": PROVIDER_CLIENT_ID,
            "CLIENT_SECRET": PROVIDER_SECRET,
            "REDIRECT_URI": redirect_uri,
            "ACCOUNTS": json.dumps(ACCOUNTS),
        }
        self.log = log
        with log.open("wb") as stderr:
            self._process = subprocess.Popen(
                ["node", str(JS_DIR / "oidc_provider.mjs")],
                env=environment,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )

    def wait_until_up(self) -> None:
        discovery = self.issuer + "/.well-known/openid-configuration"
        with httpx.Client(timeout=2) as client:
            for _ in range(int(START_SECONDS / 0.1)):
                assert self._process.poll() is None, self.log.read_text()
                try:
                    client.get(discovery).raise_for_status()
                    return
                except httpx.TransportError:
                    time.sleep(0.1)
        raise AssertionError(f"the OpenID provider did not start:\n{self.log.read_text()}")

    def stop(self) -> None:
        if self._process.poll() is None:
            self._process.terminate()
            self._process.wait(timeout=10)


@pytest.fixture
def node_provider(live_server: LiveServer, tmp_path: Path) -> Iterator[NodeProvider]:
    if not (JS_DIR / "node_modules" / "oidc-provider").is_dir():
        pytest.fail("oidc-provider is not installed: run `npm ci --prefix tests/js`", pytrace=False)
    provider = NodeProvider(live_server.url + CALLBACK_PATH, tmp_path / "provider.log")
    try:
        provider.wait_until_up()
        yield provider
    finally:
        provider.stop()


@pytest.fixture
async def front(
    live_server: LiveServer,
    node_provider: NodeProvider,
    make_client: MakeClient,
    database: Database,
    default_store: Store,
    storefront_origin: str,
) -> str:
    """A storefront client whose store signs shoppers in with the provider; its client id."""
    key = load_server_keys(live_server.settings).login_provider_secret_encryption
    provider_client = ProviderClient(loopback_http=True)  # the provider runs on 127.0.0.1
    try:
        async with database.sessions() as session:
            await create_login_provider(
                session,
                provider_client=provider_client,
                encryption_key=key,
                store_id=default_store.id,
                name="example",
                display_name="Example ID",
                issuer=node_provider.issuer,
                client_id=PROVIDER_CLIENT_ID,
                client_secret=PROVIDER_SECRET,
            )
    finally:
        await provider_client.close()
    client = await make_client(
        name="shop front",
        public=True,
        origins=[storefront_origin],
        redirect_uris=[f"{storefront_origin}/index.html"],
    )
    return client.client.id


async def sign_in_at_the_provider(page: Any) -> None:
    """The shopper on the provider's own pages: sign in as `ron`, then consent."""
    await page.click("#login-providers button[data-provider=example]")
    await page.wait_for_selector("input[name=login]")
    await page.fill("input[name=login]", "ron")
    await page.fill("input[name=password]", "whatever the provider asks")
    await page.click("button[type=submit]")
    await page.wait_for_selector("button:has-text('Continue')")
    await page.click("button:has-text('Continue')")


def query_of(url: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}


async def test_a_shopper_signs_in_with_the_provider_from_the_storefront(
    live_server: LiveServer,
    node_provider: NodeProvider,
    front: str,
    browser: Any,
    storefront_origin: str,
    database: Database,
) -> None:
    page, seen = await open_page(browser, storefront_origin, live_server, front)
    callbacks: list[str] = []
    page.on(
        "request",
        lambda request: (
            callbacks.append(request.url)
            if request.url.startswith(live_server.url + CALLBACK_PATH)
            else None
        ),
    )
    try:
        button = page.locator("#login-providers button[data-provider=example]")
        assert await button.text_content() == "Sign in with Example ID"
        await sign_in_at_the_provider(page)
        await page.wait_for_selector("#logged-in", state="visible")
        await wait_for_text(page, "#status", "Signed in with Example ID as ron@example.com")
        await wait_for_text(page, "#orders", "No orders yet.")
    finally:
        SCREENSHOT.parent.mkdir(exist_ok=True)
        await page.screenshot(path=str(SCREENSHOT), full_page=True)
        print(f"storefront screenshot: {SCREENSHOT}")
    assert await page.is_hidden("#error"), await page.text_content("#error")
    assert await page.text_content("#shopper-email") == "ron@example.com"
    assert page.url == f"{storefront_origin}/index.html"  # the code left the address bar
    # The page read the shopper's orders with the customer token, granted to its origin.
    orders = [r for r in seen.responses if urlsplit(r.url).path == "/v2/orders"]
    assert [r.status for r in orders] == [200]
    assert orders[0].request.headers.get("x-moltin-customer-token")
    async with database.sessions() as session:
        customer = (await session.scalars(select(Customer))).one()
        identity = (await session.scalars(select(CustomerIdentity))).one()
    assert (customer.email, customer.name) == ("ron@example.com", "Ron Swanson")
    assert (identity.customer_id, identity.subject) == (customer.id, "ron")
    (callback,) = callbacks
    await replays_are_refused(live_server, node_provider, storefront_origin, front, callback)


async def replays_are_refused(
    server: LiveServer, provider: NodeProvider, origin: str, client_id: str, callback: str
) -> None:
    """The provider's redirect replayed, and its code replayed into a fresh sign-in."""
    async with httpx.AsyncClient(timeout=10) as attacker:
        replayed = await attacker.get(callback)
        assert replayed.status_code == 302
        back = query_of(replayed.headers["location"])
        assert back["error"] == "invalid_request"
        assert "already been completed" in back["error_description"]
        started = await attacker.get(
            f"{server.url}/oauth/customers/login/example",
            params={
                "client_id": client_id,
                "redirect_uri": f"{origin}/index.html",
                "code_challenge": "A" * 43,
                "code_challenge_method": "S256",
            },
        )
        assert started.status_code == 302
        fresh_state = query_of(started.headers["location"])["state"]
        stolen = {**query_of(callback), "state": fresh_state}
        answer = await attacker.get(server.url + CALLBACK_PATH, params=stolen)
        back = query_of(answer.headers["location"])
        assert back["error"] == "access_denied"  # the provider refused its code a second time


async def test_a_provider_that_is_down_gets_the_shopper_a_clear_error(
    live_server: LiveServer,
    node_provider: NodeProvider,
    front: str,
    browser: Any,
    storefront_origin: str,
    database: Database,
) -> None:
    page, _ = await open_page(browser, storefront_origin, live_server, front)
    node_provider.stop()
    await page.click("#login-providers button[data-provider=example]")
    await page.wait_for_selector("#error:not([hidden])")
    assert await page.text_content("#error") == (
        "The login provider cannot be reached; try again later."
    )
    assert await page.is_visible("#logged-out")
    assert page.url == f"{storefront_origin}/index.html"
    async with database.sessions() as session:
        assert list(await session.scalars(select(Customer))) == []
