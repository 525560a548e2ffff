"""Fixtures for the commerce flow: tokens from the real endpoints, products, carts, shoppers."""

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from app.oauth.stores import Store
from app.runtime.db import Base, Database

from ..conftest import MakeClient
from ..customers.shoppers import Shopper, backend_token, headers, implicit_token, new_shopper

MakeProduct = Callable[..., Awaitable[dict[str, Any]]]
MakeShopper = Callable[[], Awaitable[Shopper]]
CountRows = Callable[[type[Base]], Awaitable[int]]

ADDRESS = {
    "first_name": "Ron",
    "last_name": "Swanson",
    "line_1": "1 Sun Street",
    "city": "London",
    "postcode": "E1 6AN",
    "country": "GB",
}


def product_body(**fields: Any) -> dict[str, Any]:
    """A valid live product; `fields` override or add to it."""
    sku = fields.pop("sku", "SKU-1")
    data = {
        "type": "product",
        "name": f"Product {sku}",
        "slug": sku.lower(),
        "sku": sku,
        "description": "A fine thing.",
        "manage_stock": False,
        "price": [{"amount": 1999, "currency": "USD", "includes_tax": True}],
        "status": "live",
        "commodity_type": "physical",
        **fields,
    }
    return {"data": data}


@pytest.fixture
async def backend(http: httpx.AsyncClient, make_client: MakeClient) -> str:
    """A client_credentials token (`read write`) of the default store."""
    return await backend_token(http, await make_client(name="backend"))


@pytest.fixture
async def storefront(http: httpx.AsyncClient, make_client: MakeClient) -> str:
    """An implicit token (`read`) of a public client of the default store."""
    return await implicit_token(http, await make_client(name="storefront", public=True))


@pytest.fixture
async def other_backend(
    http: httpx.AsyncClient,
    make_client: MakeClient,
    make_store: Callable[[str], Awaitable[Store]],
) -> str:
    """A backend token of a second store."""
    store = await make_store("Other store")
    return await backend_token(http, await make_client(name="other", store_id=store.id))


@pytest.fixture
def make_product(http: httpx.AsyncClient, backend: str) -> MakeProduct:
    """Creates a product through `POST /v2/products` and returns its `data`."""

    async def make(**fields: Any) -> dict[str, Any]:
        response = await http.post(
            "/v2/products", json=product_body(**fields), headers=headers(backend)
        )
        assert response.status_code == 201, response.text
        data: dict[str, Any] = response.json()["data"]
        return data

    return make


@pytest.fixture
def make_shopper(http: httpx.AsyncClient, backend: str) -> MakeShopper:
    """Signs a customer up with the backend token and logs them in: a customer token."""

    async def make() -> Shopper:
        return await new_shopper(http, backend)

    return make


@pytest.fixture
def count_rows(database: Database) -> CountRows:
    """How many rows a table holds, read straight from the database."""

    async def count(model: type[Base]) -> int:
        async with database.sessions() as session:
            return await session.scalar(select(func.count()).select_from(model)) or 0

    return count


async def add_to_cart(
    http: httpx.AsyncClient, token: str, ref: str, product_id: str, quantity: int = 1
) -> httpx.Response:
    body = {"data": {"type": "cart_item", "id": product_id, "quantity": quantity}}
    return await http.post(f"/v2/carts/{ref}/items", json=body, headers=headers(token))
