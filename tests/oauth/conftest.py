"""The clients most oauth tests need; a module that needs a storefront with origins overrides
`storefront` with its own."""

import pytest

from app.oauth.clients import CreatedClient

from ..conftest import MakeClient


@pytest.fixture
async def backend(make_client: MakeClient) -> CreatedClient:
    return await make_client(name="backend")


@pytest.fixture
async def storefront(make_client: MakeClient) -> CreatedClient:
    return await make_client(name="storefront", public=True)
