"""The token endpoint on the wire: success bodies, headers and the whole error table (§1)."""

import base64
import time
from typing import Any

import httpx
import jwt
import pytest

from app.oauth.clients import CreatedClient

from ..conftest import TEST_ISSUER, MakeClient

TOKEN_URL = "/oauth/access_token"


def basic(client_id: str, secret: str) -> dict[str, str]:
    encoded = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {encoded}"}


def claims_of(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


@pytest.fixture
async def storefront(make_client: MakeClient) -> CreatedClient:
    return await make_client(name="storefront", public=True, origins=["https://shop.example"])


@pytest.mark.parametrize("path", [TOKEN_URL, "/oauth/token"])
async def test_client_credentials_by_post_gives_read_write(
    http: httpx.AsyncClient, backend: CreatedClient, path: str
) -> None:
    before = int(time.time())
    response = await http.post(
        path,
        data={
            "grant_type": "client_credentials",
            "client_id": backend.client.id,
            "client_secret": backend.client_secret,
        },
    )
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"
    body = response.json()
    assert set(body) == {
        "access_token",
        "token_type",
        "expires_in",
        "expires",
        "identifier",
        "scope",
    }
    assert body["token_type"] == "Bearer"
    assert body["identifier"] == "client_credentials"
    assert body["scope"] == "read write"
    assert body["expires_in"] == 3600
    assert isinstance(body["expires"], int)
    claims = claims_of(body["access_token"])
    assert body["expires"] == claims["iat"] + 3600 == claims["exp"]
    assert before <= claims["iat"] <= int(time.time())
    assert claims["sub"] == claims["client_id"] == backend.client.id
    assert claims["iss"] == TEST_ISSUER and claims["aud"] == TEST_ISSUER
    assert claims["store_id"] == str(backend.client.store_id)
    assert claims["scope"] == "read write"
    assert len(claims["jti"]) >= 32


async def test_client_credentials_by_basic(http: httpx.AsyncClient, backend: CreatedClient) -> None:
    assert backend.client_secret is not None
    response = await http.post(
        TOKEN_URL,
        data={"grant_type": "client_credentials"},
        headers=basic(backend.client.id, backend.client_secret),
    )
    assert response.status_code == 200
    assert response.json()["identifier"] == "client_credentials"


async def test_basic_with_equal_body_client_id_is_fine(
    http: httpx.AsyncClient, backend: CreatedClient
) -> None:
    assert backend.client_secret is not None
    response = await http.post(
        TOKEN_URL,
        data={"grant_type": "client_credentials", "client_id": backend.client.id},
        headers=basic(backend.client.id, backend.client_secret),
    )
    assert response.status_code == 200


async def test_json_body_is_accepted(http: httpx.AsyncClient, backend: CreatedClient) -> None:
    response = await http.post(
        TOKEN_URL,
        json={
            "grant_type": "client_credentials",
            "client_id": backend.client.id,
            "client_secret": backend.client_secret,
        },
    )
    assert response.status_code == 200


async def test_implicit_with_public_client_gives_read(
    http: httpx.AsyncClient, storefront: CreatedClient
) -> None:
    response = await http.post(
        TOKEN_URL, data={"grant_type": "implicit", "client_id": storefront.client.id}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["identifier"] == "implicit"
    assert body["scope"] == "read"
    assert claims_of(body["access_token"])["scope"] == "read"


async def test_implicit_with_confidential_client_id_alone(
    http: httpx.AsyncClient, backend: CreatedClient
) -> None:
    response = await http.post(
        TOKEN_URL, data={"grant_type": "implicit", "client_id": backend.client.id}
    )
    assert response.status_code == 200
    assert response.json()["scope"] == "read"


async def test_scope_narrows(http: httpx.AsyncClient, backend: CreatedClient) -> None:
    response = await http.post(
        TOKEN_URL,
        data={
            "grant_type": "client_credentials",
            "client_id": backend.client.id,
            "client_secret": backend.client_secret,
            "scope": "read",
        },
    )
    assert response.status_code == 200
    assert response.json()["scope"] == "read"


async def test_client_ttl_sets_expiry(http: httpx.AsyncClient, make_client: MakeClient) -> None:
    short = await make_client(token_ttl=5)
    response = await http.post(
        TOKEN_URL,
        data={
            "grant_type": "client_credentials",
            "client_id": short.client.id,
            "client_secret": short.client_secret,
        },
    )
    body = response.json()
    assert body["expires_in"] == 5
    assert body["expires"] == claims_of(body["access_token"])["iat"] + 5


async def test_each_token_has_its_own_id(
    http: httpx.AsyncClient, storefront: CreatedClient
) -> None:
    form = {"grant_type": "implicit", "client_id": storefront.client.id}
    first = (await http.post(TOKEN_URL, data=form)).json()["access_token"]
    second = (await http.post(TOKEN_URL, data=form)).json()["access_token"]
    assert claims_of(first)["jti"] != claims_of(second)["jti"]


FORM_BODIES = [
    "",
    "grant_type=client_credentials",
    "a=1&b=&c=x+y&d=%20%2B%26%3D",
    "name=%E2%9C%93&%C3%A9=%ZZ&x=%",
    "a=1&&b=2",
    "novalue",
    "=",
    "a==b&b=c=d",
    "&",
    "a=%ff%fe",
]


@pytest.mark.parametrize("body", FORM_BODIES)
def test_the_form_parser_reads_exactly_what_parse_qsl_reads(body: str) -> None:
    from urllib.parse import parse_qsl

    from app.oauth.requests import form_pairs

    try:
        expected: list[tuple[str, str]] | type[ValueError] = parse_qsl(
            body, keep_blank_values=True, strict_parsing=True
        )
    except ValueError:
        expected = ValueError
    if expected is ValueError:
        with pytest.raises(ValueError):
            form_pairs(body)
    else:
        assert form_pairs(body) == expected
