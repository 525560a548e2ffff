"""CORS at the token endpoint, the way a browser storefront running the SDK meets it (§1).

A preflight carries no client id, so it is answered for any origin some client registered;
the real request is held to its own client's origins. The registry caches the set of
registered origins for a few seconds, so every test creates its clients before its first
request.
"""

import httpx
import pytest

from app.oauth.clients import CreatedClient, disable_client
from app.runtime.db import Database

from ..conftest import MakeClient

TOKEN_URL = "/oauth/access_token"
SHOP = "https://shop.example"
OTHER_SHOP = "https://other-shop.example"
STRANGER = "https://stranger.example"
SDK_HEADERS = "content-type,x-moltin-sdk-language,x-moltin-sdk-version"


@pytest.fixture
async def storefront(make_client: MakeClient) -> CreatedClient:
    return await make_client(name="storefront", public=True, origins=[SHOP])


@pytest.fixture
async def other_storefront(make_client: MakeClient) -> CreatedClient:
    return await make_client(name="other storefront", public=True, origins=[OTHER_SHOP])


async def preflight(http: httpx.AsyncClient, origin: str) -> httpx.Response:
    return await http.options(
        TOKEN_URL,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": SDK_HEADERS,
        },
    )


async def implicit(http: httpx.AsyncClient, client_id: str, origin: str) -> httpx.Response:
    return await http.post(
        TOKEN_URL,
        data={"grant_type": "implicit", "client_id": client_id},
        headers={"Origin": origin, "X-MOLTIN-SDK-LANGUAGE": "JS", "X-MOLTIN-SDK-VERSION": "36.0.0"},
    )


def varies_on_origin(response: httpx.Response) -> bool:
    vary = response.headers.get_list("vary", split_commas=True)
    return "origin" in {value.strip().lower() for value in vary}


async def test_preflight_from_a_registered_origin_allows_the_sdk_headers(
    http: httpx.AsyncClient, storefront: CreatedClient
) -> None:
    response = await preflight(http, SHOP)
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == SHOP
    methods = {m.strip() for m in response.headers["access-control-allow-methods"].split(",")}
    assert "POST" in methods
    allowed = {
        h.strip().lower() for h in response.headers["access-control-allow-headers"].split(",")
    }
    assert allowed >= set(SDK_HEADERS.split(","))
    assert int(response.headers["access-control-max-age"]) > 0
    assert "access-control-allow-credentials" not in response.headers
    assert varies_on_origin(response)


async def test_preflight_from_an_unregistered_origin_is_not_allowed(
    http: httpx.AsyncClient, storefront: CreatedClient
) -> None:
    response = await preflight(http, STRANGER)
    assert "access-control-allow-origin" not in response.headers
    assert "access-control-allow-headers" not in response.headers
    assert varies_on_origin(response)


async def test_preflight_from_a_disabled_clients_origin_is_not_allowed(
    http: httpx.AsyncClient, storefront: CreatedClient, database: Database
) -> None:
    async with database.sessions() as session:
        await disable_client(session, client_id=storefront.client.id, issuing_lag_seconds=1)
    response = await preflight(http, SHOP)
    assert "access-control-allow-origin" not in response.headers


async def test_token_request_from_the_clients_own_origin_is_readable(
    http: httpx.AsyncClient, storefront: CreatedClient
) -> None:
    response = await implicit(http, storefront.client.id, SHOP)
    assert response.status_code == 200
    assert response.json()["identifier"] == "implicit"
    assert response.json()["access_token"]
    assert response.headers["access-control-allow-origin"] == SHOP
    assert varies_on_origin(response)


async def test_token_request_from_another_clients_origin_gets_no_token(
    http: httpx.AsyncClient, storefront: CreatedClient, other_storefront: CreatedClient
) -> None:
    # The preflight passes (some client registered OTHER_SHOP); the real request must not.
    assert (await preflight(http, OTHER_SHOP)).status_code == 204
    response = await implicit(http, storefront.client.id, OTHER_SHOP)
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "unauthorized_client"
    assert body["errors"][0]["status"] == 400
    assert "access_token" not in body
    assert response.headers["cache-control"] == "no-store"
    assert varies_on_origin(response)


async def test_token_request_from_an_unregistered_origin_gets_no_token(
    http: httpx.AsyncClient, storefront: CreatedClient
) -> None:
    response = await implicit(http, storefront.client.id, STRANGER)
    assert response.status_code == 400
    assert response.json()["error"] == "unauthorized_client"
    assert "access-control-allow-origin" not in response.headers
    assert varies_on_origin(response)


async def test_client_credentials_from_a_browser_origin_is_held_to_its_origins(
    http: httpx.AsyncClient, make_client: MakeClient, storefront: CreatedClient
) -> None:
    backend = await make_client(name="backend")  # no origins: never from a browser
    response = await http.post(
        TOKEN_URL,
        data={
            "grant_type": "client_credentials",
            "client_id": backend.client.id,
            "client_secret": backend.client_secret,
        },
        headers={"Origin": SHOP},
    )
    assert response.status_code == 400
    assert response.json()["error"] == "unauthorized_client"
    assert "access_token" not in response.json()


async def test_error_for_a_registered_origin_is_readable_by_the_sdk(
    http: httpx.AsyncClient, storefront: CreatedClient
) -> None:
    response = await implicit(http, "no-such-client", SHOP)
    assert response.status_code == 401
    assert response.headers["access-control-allow-origin"] == SHOP
    assert response.headers["www-authenticate"]
    body = response.json()
    assert body["error"] == "invalid_client"
    assert body["errors"][0]["title"] == "invalid_client"
    assert varies_on_origin(response)


async def test_request_without_origin_gets_no_cors_headers(
    http: httpx.AsyncClient, storefront: CreatedClient
) -> None:
    response = await http.post(
        TOKEN_URL, data={"grant_type": "implicit", "client_id": storefront.client.id}
    )
    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers


async def test_cacheable_document_varies_on_origin_even_without_one(
    http: httpx.AsyncClient, storefront: CreatedClient
) -> None:
    # The JWKS is publicly cacheable; a shared cache that stored the no-Origin answer (no ACAO)
    # would serve it to the storefront's page too, unless the response says it varies.
    plain = await http.get("/.well-known/jwks.json")
    assert "public" in plain.headers["cache-control"]
    from_shop = await http.get("/.well-known/jwks.json", headers={"Origin": SHOP})
    assert from_shop.headers["access-control-allow-origin"] == SHOP
    assert varies_on_origin(plain)
