"""Fixtures for accounts: a backend (client_credentials) and a storefront (implicit) token."""

import httpx
import pytest

from ..conftest import MakeClient
from ..customers.shoppers import backend_token, implicit_token


@pytest.fixture
async def backend(http: httpx.AsyncClient, make_client: MakeClient) -> str:
    """A client_credentials token (`read write`) of the default store."""
    return await backend_token(http, await make_client(name="backend"))


@pytest.fixture
async def storefront(http: httpx.AsyncClient, make_client: MakeClient) -> str:
    """An implicit token (`read`) of a public client of the default store."""
    return await implicit_token(http, await make_client(name="storefront", public=True))
