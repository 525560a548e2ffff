"""Fixtures for accounts: a backend (client_credentials) and a storefront (implicit) token, and
two members of two accounts."""

import httpx
import pytest

from ..conftest import MakeClient
from ..customers.shoppers import backend_token, headers, implicit_token
from ..customers.test_takeover_workers import two_workers  # noqa: F401 (a fixture, shared)
from ..store.conftest import product_body
from .realm import Setup, data_of, make_profile, member_of_account, realm_id


@pytest.fixture
async def backend(http: httpx.AsyncClient, make_client: MakeClient) -> str:
    """A client_credentials token (`read write`) of the default store."""
    return await backend_token(http, await make_client(name="backend"))


@pytest.fixture
async def storefront(http: httpx.AsyncClient, make_client: MakeClient) -> str:
    """An implicit token (`read`) of a public client of the default store."""
    return await implicit_token(http, await make_client(name="storefront", public=True))


@pytest.fixture
async def setup(http: httpx.AsyncClient, backend: str, storefront: str) -> Setup:
    realm = await realm_id(http, backend)
    profile = await make_profile(http, backend, realm)
    product = data_of(
        await http.post("/v2/products", json=product_body(), headers=headers(backend)), 201
    )
    a = await member_of_account(http, backend, storefront, realm, profile, "Acme")
    b = await member_of_account(http, backend, storefront, realm, profile, "Bolt")
    return Setup(backend, storefront, product["id"], realm, profile, a, b)
