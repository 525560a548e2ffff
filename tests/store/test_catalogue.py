"""The catalogue each worker keeps: its own writes seen at once, another worker's at once when
the change is pushed and otherwise within `catalogue_cache_seconds`, and never a draft for a
storefront or a product of another store."""

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.runtime.settings import Settings

from ..conftest import http_client, make_settings, serving
from ..customers.shoppers import headers
from .conftest import MakeProduct, product_body

URL = "/v2/products"
SecondWorker = Callable[[float], Any]


@pytest.fixture
def second_worker(settings: Settings, tmp_path: Path) -> SecondWorker:
    """Another app on the same database, as a second worker is, with its own catalogue."""

    @asynccontextmanager
    async def start(
        cache_seconds: float, change_push: str = "off"
    ) -> AsyncIterator[httpx.AsyncClient]:
        other = make_settings(
            settings.database_url,
            tmp_path / "second-worker",
            catalogue_cache_seconds=cache_seconds,
            change_push=change_push,
        )
        async with serving(other) as app, http_client(app) as client:
            feed = app.state.change_feed
            if change_push != "off" and feed is None:
                pytest.skip("no push on SQLite")
            if feed is not None:  # it forgets every copy as it connects
                await asyncio.wait_for(feed.caught_up(), 10)
            yield client

    return start


async def _rename(http: httpx.AsyncClient, backend: str, product_id: str, name: str) -> None:
    body = {"data": {"type": "product", "name": name}}
    response = await http.put(f"{URL}/{product_id}", json=body, headers=headers(backend))
    assert response.status_code == 200, response.text


async def _names(http: httpx.AsyncClient, token: str) -> list[str]:
    response = await http.get(URL, headers=headers(token))
    assert response.status_code == 200, response.text
    return [product["name"] for product in response.json()["data"]]


async def test_a_worker_reads_its_own_writes_at_once(
    http: httpx.AsyncClient, backend: str, storefront: str, make_product: MakeProduct
) -> None:
    product = await make_product(sku="KETTLE", name="Kettle")
    one = f"{URL}/{product['id']}"
    assert (await http.get(one, headers=headers(storefront))).json()["data"]["name"] == "Kettle"
    assert await _names(http, storefront) == ["Kettle"]  # both now in this worker's catalogue
    await _rename(http, backend, product["id"], "Teapot")
    assert (await http.get(one, headers=headers(storefront))).json()["data"]["name"] == "Teapot"
    assert await _names(http, storefront) == ["Teapot"]
    created = await http.post(URL, json=product_body(sku="MUG"), headers=headers(backend))
    assert created.status_code == 201
    assert await _names(http, storefront) == ["Teapot", "Product MUG"]
    assert (await http.delete(one, headers=headers(backend))).status_code == 204
    assert (await http.get(one, headers=headers(storefront))).status_code == 404
    assert await _names(http, storefront) == ["Product MUG"]


async def test_another_worker_sees_a_change_once_its_copy_expires(
    http: httpx.AsyncClient,
    backend: str,
    storefront: str,
    make_product: MakeProduct,
    second_worker: SecondWorker,
) -> None:
    product = await make_product(sku="KETTLE", name="Kettle")
    one = f"{URL}/{product['id']}"
    async with second_worker(0.5) as other:
        assert (await other.get(one, headers=headers(storefront))).json()["data"]["name"] == (
            "Kettle"
        )
        assert await _names(other, storefront) == ["Kettle"]
        await _rename(http, backend, product["id"], "Teapot")  # through the first worker
        assert (await other.get(one, headers=headers(storefront))).json()["data"]["name"] == (
            "Kettle"
        )
        assert await _names(other, storefront) == ["Kettle"]
        await asyncio.sleep(0.6)
        assert (await other.get(one, headers=headers(storefront))).json()["data"]["name"] == (
            "Teapot"
        )
        assert await _names(other, storefront) == ["Teapot"]


async def test_another_worker_forgets_its_copy_when_the_change_is_pushed(
    http: httpx.AsyncClient,
    backend: str,
    storefront: str,
    make_product: MakeProduct,
    second_worker: SecondWorker,
) -> None:
    product = await make_product(sku="KETTLE", name="Kettle")
    one = f"{URL}/{product['id']}"
    async with second_worker(60, "auto") as other:
        assert await _names(other, storefront) == ["Kettle"]  # kept for a minute
        await _rename(http, backend, product["id"], "Teapot")  # through the first worker
        for _ in range(100):
            if await _names(other, storefront) == ["Teapot"]:
                break
            await asyncio.sleep(0.01)
        assert await _names(other, storefront) == ["Teapot"]
        assert (await other.get(one, headers=headers(storefront))).json()["data"]["name"] == (
            "Teapot"
        )


async def test_with_no_cache_every_read_goes_to_the_database(
    http: httpx.AsyncClient,
    backend: str,
    storefront: str,
    make_product: MakeProduct,
    second_worker: SecondWorker,
) -> None:
    product = await make_product(sku="KETTLE", name="Kettle")
    async with second_worker(0) as other:
        assert await _names(other, storefront) == ["Kettle"]
        await _rename(http, backend, product["id"], "Teapot")
        assert await _names(other, storefront) == ["Teapot"]
        assert (await other.get(f"{URL}/{product['id']}", headers=headers(storefront))).json()[
            "data"
        ]["name"] == "Teapot"


async def test_a_draft_the_backend_read_stays_hidden_from_storefronts(
    http: httpx.AsyncClient, backend: str, storefront: str, make_product: MakeProduct
) -> None:
    draft = await make_product(sku="DRAFT", status="draft")
    one = f"{URL}/{draft['id']}"
    assert (await http.get(one, headers=headers(backend))).status_code == 200  # now cached
    assert (await http.get(one, headers=headers(storefront))).status_code == 404
    assert await _names(http, backend) == ["Product DRAFT"]
    assert await _names(http, storefront) == []


async def test_a_cached_product_is_not_another_stores(
    http: httpx.AsyncClient, storefront: str, other_backend: str, make_product: MakeProduct
) -> None:
    product = await make_product(sku="KETTLE")
    one = f"{URL}/{product['id']}"
    assert (await http.get(one, headers=headers(storefront))).status_code == 200  # now cached
    assert (await http.get(one, headers=headers(other_backend))).status_code == 404
    assert await _names(http, other_backend) == []
