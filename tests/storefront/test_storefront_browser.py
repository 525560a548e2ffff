"""The storefront page, in a real headless Chromium, on another origin than Keyhouse.

`storefront/` is served by a plain static file server on a second port; Keyhouse runs on its
own. The page gets an implicit token with the public client id alone, lists products, signs a
shopper up and logs them in, fills a cart, adds an address, checks out and lists the order.
Every call crosses origins, so the story only works if Keyhouse's CORS answers are right; the
second test shows the same page failing for an origin the client did not register.

Chromium is Debian's (`apt-get install chromium`), driven by Playwright without a browser
download. Without it the tests skip, except under CI (which installs it), where they fail.
A screenshot of the finished story is kept at `test-artifacts/storefront.png`.
"""

import asyncio
import functools
import os
import shutil
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from app.oauth.clients import CreatedClient
from app.oauth.stores import Store
from app.runtime.db import Database
from keyhouse_client import KeyhouseAuth, raise_for_error

from ..conftest import LiveServer, MakeClient, free_port, make_settings
from ..smtp import MailServer, link_in, with_mail
from ..store.conftest import ADDRESS, product_body

ROOT = Path(__file__).resolve().parents[2]
STOREFRONT = ROOT / "storefront"
SCREENSHOT = ROOT / "test-artifacts" / "storefront.png"
STEP_TIMEOUT_MS = 15_000
PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "a brand new passphrase"


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):  # CI installs Chromium and Playwright: their absence is a failure
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


def chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    _unavailable("Chromium is not installed: apt-get update && apt-get install -y chromium")
    raise AssertionError("unreachable")


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def storefront_origin() -> Iterator[str]:
    """`storefront/` on a static file server of its own: another origin than Keyhouse."""
    handler = functools.partial(_QuietHandler, directory=str(STOREFRONT))
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    executable = chromium()
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        _unavailable("Playwright is not installed: pip install -e '.[test]'")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=executable, timeout=30_000)
        try:
            yield launched
        finally:
            await launched.close()


async def create_products(server: LiveServer, backend: CreatedClient) -> None:
    """A backend stocks the store, through the Python client."""
    assert backend.client_secret is not None
    auth = KeyhouseAuth.client_credentials(
        server.url, client_id=backend.client.id, client_secret=backend.client_secret
    )
    async with httpx.AsyncClient(base_url=server.url, auth=auth) as http:
        tee = product_body(sku="TEE", name="Keyhouse tee", description="Soft, and signed ES256.")
        mug = product_body(
            sku="MUG", name="Keyhouse mug", price=[{"amount": 500, "currency": "USD"}]
        )
        for body in (tee, mug):
            raise_for_error(await http.post("/v2/products", json=body))


@dataclass
class Seen:
    """What the page received from Keyhouse, and what it logged as errors."""

    responses: list[Any] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)


async def open_page(
    browser: Any, origin: str, server: LiveServer, client_id: str
) -> tuple[Any, Seen]:
    page = await browser.new_page(viewport={"width": 1200, "height": 900})
    page.set_default_timeout(STEP_TIMEOUT_MS)
    seen = Seen()

    def on_response(response: Any) -> None:
        if response.url.startswith(server.url):
            seen.responses.append(response)

    def on_console(message: Any) -> None:
        if message.type == "error":
            seen.console_errors.append(message.text)

    page.on("response", on_response)
    page.on("console", on_console)
    await page.goto(f"{origin}/index.html?keyhouse={server.url}&client_id={client_id}")
    await page.wait_for_selector("body[data-ready=true]", state="attached")
    return page, seen


async def fill(page: Any, form: str, values: dict[str, str]) -> None:
    for name, value in values.items():
        await page.fill(f"{form} [name={name}]", value)
    await page.click(f"{form} button[type=submit]")


async def wait_for_text(page: Any, selector: str, text: str) -> None:
    await page.wait_for_function(
        "([selector, text]) => document.querySelector(selector)?.textContent.includes(text)",
        arg=[selector, text],
    )


async def shop(page: Any) -> str:
    """The shopper's whole story, in the page; returns the order id the page shows."""
    products = page.locator("#products li[data-sku]")
    assert await products.count() == 2
    assert set(await page.locator("#products h3").all_text_contents()) == {
        "Keyhouse tee",
        "Keyhouse mug",
    }
    await fill(
        page, "#signup-form", {"name": "Ron", "email": "ron@example.com", "password": PASSWORD}
    )
    await wait_for_text(page, "#status", "Account created for ron@example.com")
    await fill(page, "#login-form", {"password": PASSWORD})  # the email is filled in for us
    await page.wait_for_selector("#logged-in", state="visible")
    await wait_for_text(page, "#orders", "No orders yet.")
    for sku in ("TEE", "MUG"):
        await add_to_cart(page, sku)
    assert await page.text_content("#cart-total") == "24.99 USD"
    await add_address(page)
    order_id = await check_out(page)
    assert "24.99 USD" in (await page.text_content(f"#orders li[data-id='{order_id}']") or "")
    return order_id


async def add_to_cart(page: Any, sku: str) -> None:
    await page.click(f"#products li[data-sku={sku}] button")
    await page.wait_for_selector(f"#cart li[data-sku={sku}]")


async def add_address(page: Any) -> None:
    await fill(page, "#address-form", {**ADDRESS, "country": "gb"})  # the page writes it GB
    await page.wait_for_selector("#addresses li[data-id]")


async def order_ids(page: Any) -> set[str]:
    """The ids of the orders the page lists."""
    items = page.locator("#orders li[data-id]")
    return set(await items.evaluate_all("items => items.map((item) => item.dataset.id)"))


async def check_out(page: Any) -> str:
    """Checks the cart out in the page; returns the id of the order it then lists."""
    before = await order_ids(page)
    await page.click("#checkout:enabled")
    await wait_for_text(page, "#status", "placed")
    await wait_for_text(page, "#cart", "Your cart is empty.")
    (placed,) = await order_ids(page) - before
    return placed


async def test_a_shopper_buys_from_the_storefront_page(
    live_server: LiveServer,
    make_client: MakeClient,
    browser: Any,
    storefront_origin: str,
) -> None:
    backend = await make_client(name="shop backend")
    front = await make_client(name="shop front", public=True, origins=[storefront_origin])
    await create_products(live_server, backend)
    page, seen = await open_page(browser, storefront_origin, live_server, front.client.id)
    try:
        await wait_for_text(page, "#status", "Connected")
        assert await page.is_hidden("#member-forms")  # the store has no password profile
        order_id = await shop(page)
    finally:
        SCREENSHOT.parent.mkdir(exist_ok=True)
        await page.screenshot(path=str(SCREENSHOT), full_page=True)
        print(f"storefront screenshot: {SCREENSHOT}")
    assert await page.is_hidden("#error"), await page.text_content("#error")
    assert seen.console_errors == []
    # Every answer the page read was granted to its origin by CORS, and one token served all.
    granted = {r.headers.get("access-control-allow-origin") for r in seen.responses}
    assert granted == {storefront_origin}
    token_requests = [r for r in seen.responses if r.url.endswith("/oauth/access_token")]
    assert len(token_requests) == 1
    # The order is the shopper's, as the store's backend sees it.
    await check_order(live_server, backend, order_id)
    # Logging out revokes the customer token, a cross-origin request too.
    await page.click("#logout")
    await page.wait_for_selector("#logged-out", state="visible")
    await wait_for_text(page, "#status", "Logged out.")
    assert await page.is_hidden("#error"), await page.text_content("#error")


async def check_order(server: LiveServer, backend: CreatedClient, order_id: str) -> None:
    assert backend.client_secret is not None
    auth = KeyhouseAuth.client_credentials(
        server.url, client_id=backend.client.id, client_secret=backend.client_secret
    )
    async with httpx.AsyncClient(base_url=server.url, auth=auth) as http:
        order = raise_for_error(await http.get(f"/v2/orders/{order_id}")).json()["data"]
    assert order["customer"] == {"name": "Ron", "email": "ron@example.com"}
    assert order["shipping_address"]["country"] == "GB"


async def test_an_unregistered_origin_gets_nothing(
    live_server: LiveServer,
    make_client: MakeClient,
    browser: Any,
    storefront_origin: str,
) -> None:
    """The same page, for a client that registered another origin: the browser withholds
    Keyhouse's answers from it, so the page gets no token at all."""
    front = await make_client(name="elsewhere", public=True, origins=["https://shop.example"])
    page, _ = await open_page(browser, storefront_origin, live_server, front.client.id)
    await page.wait_for_selector("#error:not([hidden])")
    assert await page.locator("#products li").count() == 0
    assert "Connected" not in (await page.text_content("#status") or "")


async def test_a_shopper_resets_a_forgotten_password_from_the_page(
    database_url: str,
    tmp_path: Path,
    make_client: MakeClient,
    browser: Any,
    storefront_origin: str,
    mail_server: MailServer,
) -> None:
    """Forgot password: the page asks for a link, the mail reaches a real SMTP server, the link
    opens the page's "set a new password" form, and the new password logs in."""
    front = await make_client(name="shop front", public=True, origins=[storefront_origin])
    port = free_port()
    page_url = f"{storefront_origin}/index.html?keyhouse=http://127.0.0.1:{port}"
    page_url += f"&client_id={front.client.id}"
    base = make_settings(database_url, tmp_path, issuer=f"http://127.0.0.1:{port}")
    settings = with_mail(base, mail_server, password_reset_url=page_url + "#reset_token={token}")
    server = LiveServer(settings, port)
    server.start()
    try:
        page, seen = await open_page(browser, storefront_origin, server, front.client.id)
        await fill(
            page, "#signup-form", {"name": "Ron", "email": "ron@example.com", "password": PASSWORD}
        )
        await wait_for_text(page, "#status", "Account created for ron@example.com")
        assert await page.is_hidden("#reset-form")
        await fill(page, "#forgot-form", {"email": "ron@example.com"})
        await wait_for_text(page, "#status", "a link to set a new password is on its way")

        (mail,) = await asyncio.to_thread(mail_server.handler.wait_for, 1)
        assert mail["To"] == "ron@example.com"
        page = await browser.new_page()  # as a mail client opens a link: in a new tab
        page.set_default_timeout(STEP_TIMEOUT_MS)
        await page.goto(link_in(mail))
        await page.wait_for_selector("body[data-ready=true]", state="attached")
        await page.wait_for_selector("#reset-form", state="visible")
        assert "reset_token" not in page.url  # out of the address bar (and the history)
        await fill(page, "#reset-form", {"password": NEW_PASSWORD})
        await wait_for_text(page, "#status", "Your new password is set")
        await page.wait_for_selector("#reset-form", state="hidden")
        await fill(page, "#login-form", {"password": NEW_PASSWORD})  # the email is filled in
        await page.wait_for_selector("#logged-in", state="visible")
        await wait_for_text(page, "#orders", "No orders yet.")
        assert await page.is_hidden("#error"), await page.text_content("#error")
        assert seen.console_errors == []
    finally:
        server.stop()


async def test_a_shopper_confirms_their_email_from_the_page(
    database_url: str,
    tmp_path: Path,
    make_client: MakeClient,
    browser: Any,
    storefront_origin: str,
    mail_server: MailServer,
    database: Database,
) -> None:
    """A store that wants confirmed emails: the sign-up says to check the inbox, a login before
    that is refused with the reason, the mail's link opens the page's confirmation form, and the
    account's password confirms the address; then the login works."""
    async with database.sessions() as session:
        await session.execute(update(Store).values(require_email_verification=True))
        await session.commit()
    front = await make_client(name="shop front", public=True, origins=[storefront_origin])
    port = free_port()
    page_url = f"{storefront_origin}/index.html?keyhouse=http://127.0.0.1:{port}"
    page_url += f"&client_id={front.client.id}"
    base = make_settings(database_url, tmp_path, issuer=f"http://127.0.0.1:{port}")
    settings = with_mail(
        base,
        mail_server,
        password_reset_url=page_url + "#reset_token={token}",
        email_verification_url=page_url + "#verify_token={token}",
    )
    server = LiveServer(settings, port)
    server.start()
    try:
        page, seen = await open_page(browser, storefront_origin, server, front.client.id)
        assert await page.is_hidden("#verify-form")
        await fill(
            page, "#signup-form", {"name": "Ron", "email": "ron@example.com", "password": PASSWORD}
        )
        await wait_for_text(page, "#status", "Check your inbox")
        await fill(page, "#login-form", {"password": PASSWORD})
        await wait_for_text(page, "#error", "not verified yet")

        (mail,) = await asyncio.to_thread(mail_server.handler.wait_for, 1)
        assert mail["To"] == "ron@example.com"
        page = await browser.new_page()  # as a mail client opens a link: in a new tab
        page.set_default_timeout(STEP_TIMEOUT_MS)
        await page.goto(link_in(mail))
        await page.wait_for_selector("body[data-ready=true]", state="attached")
        await page.wait_for_selector("#verify-form", state="visible")
        assert "verify_token" not in page.url
        await fill(page, "#verify-form", {"password": PASSWORD})
        await wait_for_text(page, "#status", "is confirmed")
        await fill(page, "#login-form", {"password": PASSWORD})  # the email is filled in
        await page.wait_for_selector("#logged-in", state="visible")
        assert await page.is_hidden("#error"), await page.text_content("#error")
    finally:
        server.stop()
    # The refused login is the one error the first page logged.
    assert all("403" in error for error in seen.console_errors)
