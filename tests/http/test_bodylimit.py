"""The request body limit (`KEYHOUSE_MAX_REQUEST_BYTES`): 413 for declared and chunked bodies."""

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from app.runtime.db import Database
from app.runtime.settings import Settings
from app.store.products import Product

from ..conftest import MakeClient, make_settings
from ..customers.shoppers import TOKEN_URL, backend_token, headers
from ..store.conftest import product_body
from ..world import assert_errors

LIMIT = 2048
URL = "/v2/products"


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return make_settings(database_url, tmp_path, max_request_bytes=LIMIT)


@pytest.fixture
async def backend(http: httpx.AsyncClient, make_client: MakeClient) -> str:
    return await backend_token(http, await make_client(name="backend"))


async def products(database: Database) -> int:
    async with database.sessions() as session:
        return await session.scalar(select(func.count()).select_from(Product)) or 0


def padded_product(size: int) -> bytes:
    """A valid product body of exactly `size` bytes (JSON allows trailing whitespace)."""
    body = json.dumps(product_body()).encode()
    assert len(body) <= size
    return body + b" " * (size - len(body))


def sent_as_json(token: str) -> dict[str, str]:
    return {**headers(token), "Content-Type": "application/json"}


async def chunks(body: bytes, size: int = 500) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


async def test_a_body_at_the_limit_is_accepted(http: httpx.AsyncClient, backend: str) -> None:
    response = await http.post(URL, content=padded_product(LIMIT), headers=sent_as_json(backend))
    assert response.status_code == 201, response.text


async def test_a_declared_length_over_the_limit_is_413(
    http: httpx.AsyncClient, backend: str, database: Database
) -> None:
    body = padded_product(LIMIT + 1)
    response = await http.post(URL, content=body, headers=sent_as_json(backend))
    assert_errors(response, 413)
    assert response.json()["errors"][0]["title"] == "Content Too Large"
    assert await products(database) == 0


async def test_a_chunked_body_over_the_limit_is_413(
    http: httpx.AsyncClient, backend: str, database: Database
) -> None:
    request = http.build_request(
        "POST", URL, content=chunks(padded_product(LIMIT + 1)), headers=sent_as_json(backend)
    )
    assert "content-length" not in request.headers
    assert request.headers["transfer-encoding"] == "chunked"
    response = await http.send(request)
    assert_errors(response, 413)
    assert await products(database) == 0


async def test_a_chunked_body_at_the_limit_is_accepted(
    http: httpx.AsyncClient, backend: str
) -> None:
    content = chunks(padded_product(LIMIT))
    response = await http.post(URL, content=content, headers=sent_as_json(backend))
    assert response.status_code == 201, response.text


async def test_a_huge_declared_length_is_413(http: httpx.AsyncClient, backend: str) -> None:
    # More digits than Python converts to an int by default.
    sent = {**sent_as_json(backend), "Content-Length": "9" * 5000}
    request = http.build_request("POST", URL, content=b"{}", headers=sent)
    response = await http.send(request)
    assert_errors(response, 413)


async def test_the_token_endpoint_keeps_its_own_limit(
    http: httpx.AsyncClient, make_client: MakeClient
) -> None:
    client = await make_client(name="backend")
    assert client.client_secret is not None
    # Over the general limit, within the token endpoint's own (`MAX_TOKEN_REQUEST_BYTES`).
    form = {"grant_type": "client_credentials", "padding": "x" * LIMIT}
    response = await http.post(TOKEN_URL, data=form, auth=(client.client.id, client.client_secret))
    assert response.status_code == 200, response.text


async def test_the_limit_is_413_for_customers_too(http: httpx.AsyncClient, backend: str) -> None:
    body = {"data": {"type": "customer", "name": "R" * LIMIT, "email": "r@example.com"}}
    response = await http.post("/v2/customers", json=body, headers=headers(backend))
    assert_errors(response, 413)
