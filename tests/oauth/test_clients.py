"""Client registration rules: defaults, origins, grants and lifetimes."""

import pytest

from app.oauth.clients import normalize_origin
from app.oauth.errors import InvalidClientMetadataError

from ..conftest import MakeClient


async def test_defaults_for_public_and_confidential_clients(make_client: MakeClient) -> None:
    public = await make_client(public=True)
    assert public.client_secret is None
    assert public.client.grant_types == ["implicit"]
    assert public.client.scopes == ["read"]
    confidential = await make_client()
    assert confidential.client_secret is not None
    assert confidential.client.grant_types == ["client_credentials", "implicit"]
    assert confidential.client.scopes == ["read", "write"]


@pytest.mark.parametrize(
    ("given", "normalized"),
    [
        ("https://Shop.Example", "https://shop.example"),
        ("https://shop.example/", "https://shop.example"),
        ("https://shop.example:443", "https://shop.example"),
        ("http://localhost:3000", "http://localhost:3000"),
        ("http://127.0.0.1:80", "http://127.0.0.1"),
    ],
)
def test_origins_are_stored_as_browsers_send_them(given: str, normalized: str) -> None:
    assert normalize_origin(given) == normalized


@pytest.mark.parametrize(
    "origin",
    [
        "shop.example",
        "ftp://shop.example",
        "https://shop.example/path",
        "https://user:pw@shop.example",
        "https://shop.example?x=1",
        "https://",
    ],
)
def test_malformed_origins_are_refused(origin: str) -> None:
    with pytest.raises(InvalidClientMetadataError):
        normalize_origin(origin)


@pytest.mark.parametrize(
    "options",
    [
        {"public": True, "grant_types": ["client_credentials"]},
        {"grant_types": ["password"]},
        {"scope": "admin"},
        {"token_ttl": 0},
        {"token_ttl": 86_401},
        {"name": " "},
    ],
    ids=[
        "public with secret grant",
        "unknown grant",
        "unknown scope",
        "ttl 0",
        "ttl > 1 day",
        "no name",
    ],
)
async def test_impossible_clients_are_refused(
    make_client: MakeClient, options: dict[str, object]
) -> None:
    with pytest.raises(InvalidClientMetadataError):
        await make_client(**options)


def test_client_ids_are_letters_and_digits_so_the_cli_never_reads_one_as_an_option() -> None:
    from app.oauth.clients import new_client_id

    ids = {new_client_id() for _ in range(2000)}
    assert len(ids) == 2000
    assert all(len(client_id) == 32 and client_id.isalnum() for client_id in ids)
