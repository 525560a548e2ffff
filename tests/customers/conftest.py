"""Fixtures for customer-owned routes: a backend, a storefront, and shoppers who log in."""

from collections.abc import Awaitable, Callable

import httpx
import pytest

from app.oauth.stores import Store

from ..conftest import MakeClient
from .shoppers import Shopper, backend_token, implicit_token, new_shopper

MakeShopper = Callable[..., Awaitable[Shopper]]
MakeStore = Callable[[str], Awaitable[Store]]


@pytest.fixture
async def backend(http: httpx.AsyncClient, make_client: MakeClient) -> str:
    """A client_credentials token (`read write`) of the default store."""
    return await backend_token(http, await make_client(name="backend"))


@pytest.fixture
async def storefront(http: httpx.AsyncClient, make_client: MakeClient) -> str:
    """An implicit token (`read`) of a public client of the default store."""
    return await implicit_token(http, await make_client(name="storefront", public=True))


@pytest.fixture
def make_shopper(http: httpx.AsyncClient, storefront: str) -> MakeShopper:
    """Signs a shopper up and logs them in through the storefront."""

    async def make(**options: str) -> Shopper:
        return await new_shopper(http, storefront, **options)

    return make
