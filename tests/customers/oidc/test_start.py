"""The start of a sign-in: only to a redirect URI registered for the client, with PKCE, to a
provider of the client's store; and the list a storefront draws its buttons from."""

import httpx
import pytest
from sqlalchemy import func, select, update

from app.customers.oidc.logins import ProviderLogin
from app.customers.oidc.providers import LoginProvider
from app.oauth.clients import OAuthClient
from app.runtime.db import Database
from app.runtime.settings import Settings

from ...conftest import TEST_ISSUER, MakeClient
from ..conftest import MakeStore
from ..shoppers import headers, implicit_token
from .conftest import REDIRECT_URI, Shop, begin, query_of, register_provider
from .fake_provider import FakeProvider

pytestmark = pytest.mark.usefixtures("login_provider")


async def started(database: Database) -> int:
    async with database.sessions() as session:
        return await session.scalar(select(func.count()).select_from(ProviderLogin)) or 0


# What is refused, and with which page: no such destination (404), or an incomplete link (400).
NOT_SENT_BACK = {
    "unregistered redirect URI": ({"redirect_uri": "https://evil.example/steal"}, 404),
    "registered URI with more": ({"redirect_uri": REDIRECT_URI + "&more=1"}, 404),
    "unknown client": ({"client_id": "nobody"}, 404),
    "no client": ({"client_id": None}, 400),
    "no redirect URI": ({"redirect_uri": None}, 400),
}


@pytest.mark.parametrize(("changes", "status"), NOT_SENT_BACK.values(), ids=NOT_SENT_BACK.keys())
async def test_an_unregistered_destination_gets_a_page_not_a_redirect(
    http: httpx.AsyncClient,
    shop: Shop,
    database: Database,
    changes: dict[str, str | None],
    status: int,
) -> None:
    answer = await begin(http, shop, **changes)
    assert answer.status_code == status
    assert "location" not in answer.headers
    assert answer.headers["content-type"].startswith("text/html")
    assert "<script" not in answer.text and "evil.example" not in answer.text
    assert await started(database) == 0


@pytest.mark.settings(client_cache_seconds=0)
async def test_a_disabled_client_gets_a_page(
    http: httpx.AsyncClient, shop: Shop, database: Database
) -> None:
    async with database.sessions() as session:
        await session.execute(update(OAuthClient).values(enabled=False))
        await session.commit()
    assert (await begin(http, shop)).status_code == 404


SENT_BACK_WITH_AN_ERROR = {
    "no PKCE": ({"code_challenge": None}, "code_challenge"),
    "plain PKCE": ({"code_challenge_method": "plain"}, "code_challenge"),
    "short challenge": ({"code_challenge": "abc"}, "code_challenge"),
    "unknown provider": ({"provider": "nobody"}, "no login provider of that name"),
    "a name no provider may have": ({"provider": "Nobody"}, "no login provider of that name"),
    "long state": ({"state": "s" * 501}, "at most 500 printable characters"),
    "NUL in the state": ({"state": "a\x00b"}, "at most 500 printable characters"),
}


@pytest.mark.parametrize(
    ("changes", "said"), SENT_BACK_WITH_AN_ERROR.values(), ids=SENT_BACK_WITH_AN_ERROR.keys()
)
async def test_a_bad_request_from_a_registered_storefront_goes_back_with_an_error(
    http: httpx.AsyncClient, shop: Shop, database: Database, changes: dict[str, str], said: str
) -> None:
    answer = await begin(http, shop, **changes)
    assert answer.status_code == 302
    assert answer.headers["location"].startswith(REDIRECT_URI + "&")
    back = query_of(answer.headers["location"])
    assert back["error"] == "invalid_request"
    assert said in back["error_description"]
    assert await started(database) == 0


async def test_a_provider_of_another_store_is_unknown_here(
    http: httpx.AsyncClient,
    shop: Shop,
    settings: Settings,
    database: Database,
    fake_provider: FakeProvider,
    make_store: MakeStore,
) -> None:
    other = await make_store("Other")
    await register_provider(
        settings, database, store_id=other.id, issuer=fake_provider.issuer, name="elsewhere"
    )
    back = query_of((await begin(http, shop, provider="elsewhere")).headers["location"])
    assert back["error"] == "invalid_request"


async def test_a_disabled_provider_is_unknown(
    http: httpx.AsyncClient, shop: Shop, database: Database
) -> None:
    async with database.sessions() as session:
        await session.execute(update(LoginProvider).values(enabled=False))
        await session.commit()
    back = query_of((await begin(http, shop)).headers["location"])
    assert back["error"] == "invalid_request"


@pytest.mark.settings(login_rate_limit_per_address="2/minute")
async def test_sign_ins_are_rate_limited_per_address(http: httpx.AsyncClient, shop: Shop) -> None:
    for _ in range(2):
        assert (await begin(http, shop)).status_code == 302
    refused = await begin(http, shop)
    assert refused.status_code == 429
    assert refused.headers["content-type"].startswith("text/html")
    assert int(refused.headers["retry-after"]) >= 1
    callback = await http.get("/oauth/customers/login/callback?state=x")
    assert callback.status_code == 429


async def test_the_storefront_lists_its_store_enabled_providers(
    http: httpx.AsyncClient,
    shop: Shop,
    settings: Settings,
    database: Database,
    fake_provider: FakeProvider,
    make_client: MakeClient,
    make_store: MakeStore,
) -> None:
    other = await make_store("Other")
    await register_provider(
        settings, database, store_id=other.id, issuer=fake_provider.issuer, name="elsewhere"
    )
    token = await implicit_token(http, shop.client)
    listed = await http.get("/v2/login-providers", headers=headers(token))
    assert listed.status_code == 200
    (provider,) = listed.json()["data"]
    assert provider["name"] == "example" and provider["display_name"] == "Example ID"
    assert provider["links"] == {
        "authorization_endpoint": f"{TEST_ISSUER}/oauth/customers/login/example"
    }
    assert listed.json()["meta"]["results"]["total"] == 1
    async with database.sessions() as session:
        await session.execute(update(LoginProvider).values(enabled=False))
        await session.commit()
    listed = await http.get("/v2/login-providers", headers=headers(token))
    assert listed.json()["data"] == []
    assert (await http.get("/v2/login-providers")).status_code == 401
