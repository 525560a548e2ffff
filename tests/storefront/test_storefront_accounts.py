"""Account members on the storefront page (contract §8), in headless Chromium.

A backend sets the store up through the API, as an operator would: products, the account
realm's password profile, members with a username and password, and their accounts. The page
does the rest with its public client id alone, on another origin: it finds the realm and the
profile, logs a member in, fills the account's cart and checks it out with the account's token,
switches between a member's accounts, signs new members up where the realm lets them, and logs
out, revoking the member's tokens.
"""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from app.oauth.clients import CreatedClient

from ..accounts.realm import (
    SETTINGS_URL,
    add_member,
    data_of,
    make_account,
    make_member,
    make_profile,
    realm_id,
)
from ..accounts.test_store_access import HEADER as ACCOUNT_HEADER
from ..accounts.test_tokens import TOKENS_URL
from ..conftest import LiveServer, MakeClient
from ..customers.shoppers import backend_token, headers, implicit_token
from .test_storefront_browser import (
    PASSWORD,
    ROOT,
    Seen,
    add_address,
    add_to_cart,
    check_out,
    create_products,
    fill,
    open_page,
    order_ids,
    wait_for_text,
)
from .test_storefront_browser import browser as browser
from .test_storefront_browser import storefront_origin as storefront_origin

SCREENSHOT = ROOT / "test-artifacts" / "storefront-accounts.png"


@dataclass(frozen=True)
class Realm:
    """A stocked store, its storefront's client id, and its realm's one password profile."""

    http: httpx.AsyncClient  # to the live server
    backend: str  # a client_credentials token
    front: CreatedClient  # the storefront's public client
    id: str  # the realm's
    profile: str

    @property
    def front_id(self) -> str:
        return self.front.client.id

    async def member_of(self, *account_names: str) -> tuple[str, list[str]]:
        """A new member with a password in the profile, in a new account of each name:
        their username and the accounts' ids."""
        member, username = await make_member(self.http, self.backend, self.id, self.profile)
        accounts = [await make_account(self.http, self.backend, name) for name in account_names]
        for account in accounts:
            await add_member(self.http, self.backend, account, member)
        return username, accounts

    async def allow_self_signup(self) -> None:
        body = {
            "data": {
                "type": "account_authentication_settings",
                "enable_self_signup": True,
                "auto_create_account_for_account_members": True,
            }
        }
        data_of(await self.http.put(SETTINGS_URL, json=body, headers=headers(self.backend)), 200)

    async def account_token_works(self, token: str, account: str) -> bool:
        storefront = await implicit_token(self.http, self.front)
        sent = {**headers(storefront), ACCOUNT_HEADER: token}
        response = await self.http.get(f"/v2/accounts/{account}", headers=sent)
        assert response.status_code in (200, 401), response.text
        return response.status_code == 200

    async def account_of_order(self, order_id: str) -> str:
        response = await self.http.get(f"/v2/orders/{order_id}", headers=headers(self.backend))
        account: str = data_of(response, 200)["relationships"]["account"]["data"]["id"]
        return account


@pytest.fixture
async def realm(
    live_server: LiveServer, make_client: MakeClient, storefront_origin: str
) -> AsyncIterator[Realm]:
    backend = await make_client(name="shop backend")
    front = await make_client(name="shop front", public=True, origins=[storefront_origin])
    await create_products(live_server, backend)
    async with httpx.AsyncClient(base_url=live_server.url) as http:
        token = await backend_token(http, backend)
        realm = await realm_id(http, token)
        profile = await make_profile(http, token, realm, username_format="email")
        yield Realm(http, token, front, realm, profile)


async def log_in_member(page: Any, username: str, password: str = PASSWORD) -> None:
    await fill(page, "#member-login-form", {"username": username, "password": password})


async def switch_to(page: Any, account_name: str) -> None:
    await page.select_option("#account-select", label=account_name)
    await wait_for_text(page, "#status", f"Now buying for {account_name}.")


async def cart_skus(page: Any) -> set[str]:
    items = page.locator("#cart li[data-sku]")
    return set(await items.evaluate_all("items => items.map((item) => item.dataset.sku)"))


async def test_a_member_logs_in_and_buys_for_their_account(
    live_server: LiveServer, browser: Any, storefront_origin: str, realm: Realm
) -> None:
    username, (acme,) = await realm.member_of("Acme")
    page, seen = await open_page(browser, storefront_origin, live_server, realm.front_id)
    await page.wait_for_selector("#member-forms", state="visible")
    assert await page.is_hidden("#profile-choice")  # one profile: nothing to choose
    await log_in_member(page, username)
    await page.wait_for_selector("#logged-in", state="visible")
    await wait_for_text(page, "#status", f"Logged in as {username}, buying for Acme.")
    assert await page.text_content("#account-name") == "Acme"
    assert await page.is_hidden("#account-switcher")  # one account: nothing to switch to
    await wait_for_text(page, "#orders", "No orders yet.")
    await add_to_cart(page, "TEE")

    await log_out(page)
    await wait_for_text(page, "#cart", "Your cart is empty.")  # the tab's cart, not Acme's
    first_token = await issued_token(seen)
    assert await realm.account_token_works(first_token, acme) is False  # revoked
    await log_in_member(page, username)
    await wait_for_text(page, "#status", "buying for Acme.")
    assert await cart_skus(page) == {"TEE"}  # Acme's cart, found again
    await add_address(page)
    order_id = await check_out(page)
    assert await realm.account_of_order(order_id) == acme
    (checkout,) = [r for r in seen.responses if r.url.endswith("/checkout")]
    sent = await checkout.request.all_headers()
    assert sent[ACCOUNT_HEADER.lower()] == await issued_token(seen)
    await log_out(page)
    assert await page.is_hidden("#error"), await page.text_content("#error")
    assert seen.console_errors == []


async def log_out(page: Any) -> None:
    await page.click("#logout")
    await page.wait_for_selector("#logged-out", state="visible")
    await wait_for_text(page, "#status", "Logged out.")


async def issued_token(seen: Seen) -> str:
    """The account token of the page's latest member login (of a member of one account)."""
    login = [r for r in seen.responses if r.url.endswith(TOKENS_URL)][-1]
    (issued,) = (await login.json())["data"]
    token: str = issued["token"]
    return token


async def test_a_member_of_two_accounts_switches_between_their_carts_and_orders(
    live_server: LiveServer, browser: Any, storefront_origin: str, realm: Realm
) -> None:
    username, (acme, bolt) = await realm.member_of("Acme", "Bolt")
    page, seen = await open_page(browser, storefront_origin, live_server, realm.front_id)
    try:
        acme_order, bolt_order = await shop_for_two_accounts(page, username)
    finally:
        SCREENSHOT.parent.mkdir(exist_ok=True)
        await page.screenshot(path=str(SCREENSHOT), full_page=True)
    assert await realm.account_of_order(acme_order) == acme
    assert await realm.account_of_order(bolt_order) == bolt
    assert await page.is_hidden("#error"), await page.text_content("#error")
    assert seen.console_errors == []


async def shop_for_two_accounts(page: Any, username: str) -> tuple[str, str]:
    """A cart and an order for each of the member's accounts, Acme and Bolt, each seen only
    under its own account; returns the two orders' ids."""
    await log_in_member(page, username)
    await wait_for_text(page, "#status", "buying for Acme.")
    await page.wait_for_selector("#account-switcher", state="visible")
    options = await page.locator("#account-select option").all_text_contents()
    assert options == ["Acme", "Bolt"]

    await add_to_cart(page, "TEE")
    await switch_to(page, "Bolt")
    await wait_for_text(page, "#cart", "Your cart is empty.")  # Bolt's cart, not Acme's
    await add_to_cart(page, "MUG")
    await switch_to(page, "Acme")
    assert await cart_skus(page) == {"TEE"}
    await add_address(page)  # kept by the page for the visit, whichever the account
    acme_order = await check_out(page)

    await switch_to(page, "Bolt")
    await wait_for_text(page, "#orders", "No orders yet.")  # Acme's order is not Bolt's
    assert await cart_skus(page) == {"MUG"}
    bolt_order = await check_out(page)
    assert await order_ids(page) == {bolt_order}
    await switch_to(page, "Acme")
    assert await order_ids(page) == {acme_order}
    await wait_for_text(page, "#cart", "Your cart is empty.")
    return acme_order, bolt_order


async def test_a_shopper_signs_up_as_a_member_where_the_realm_allows_it(
    live_server: LiveServer, browser: Any, storefront_origin: str, realm: Realm
) -> None:
    await realm.allow_self_signup()
    page, seen = await open_page(browser, storefront_origin, live_server, realm.front_id)
    signup = {
        "name": "Leslie Knope",
        "email": "leslie@example.com",
        "username": "leslie@example.com",
        "password": PASSWORD,
    }
    await fill(page, "#member-signup-form", signup)
    # The realm made her an account of her own, named after her.
    await wait_for_text(page, "#status", "Logged in as leslie@example.com, buying for Leslie")
    assert await page.text_content("#account-name") == "Leslie Knope"
    await wait_for_text(page, "#orders", "No orders yet.")
    await log_out(page)

    await fill(page, "#member-signup-form", signup)  # the same username again
    await wait_for_text(page, "#error", "This username is taken: choose another, or log in")
    assert await page.is_visible("#logged-out")
    await log_in_member(page, "leslie@example.com")
    await wait_for_text(page, "#status", "buying for Leslie Knope.")
    assert all("409" in error for error in seen.console_errors)


async def test_a_wrong_password_is_refused_and_no_sign_up_where_the_realm_allows_none(
    live_server: LiveServer, browser: Any, storefront_origin: str, realm: Realm
) -> None:
    username, _ = await realm.member_of("Acme")
    await make_profile(realm.http, realm.backend, realm.id)  # a second profile to choose from
    page, seen = await open_page(browser, storefront_origin, live_server, realm.front_id)
    await page.wait_for_selector("#member-login-form", state="visible")
    assert await page.is_hidden("#member-signup-form")
    assert await page.locator("#password-profile option").count() == 2
    assert await page.is_visible("#profile-choice")  # the first, the member's, is chosen
    await log_in_member(page, username, "not the password")
    await wait_for_text(page, "#error", "The username or password is incorrect.")
    assert await page.is_visible("#logged-out")
    await log_in_member(page, username)
    await wait_for_text(page, "#status", "buying for Acme.")
    assert await page.is_hidden("#error")
    assert all("401" in error for error in seen.console_errors)
