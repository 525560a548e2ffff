"""In production a login provider is reached over https only: http on localhost serves
development and these tests, and nowhere else. `login-providers create` and `serve` stop with
one line; a sign-in whose provider names an http address is refused."""

import subprocess
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from app.customers.oidc.discovery import ProviderResponseError
from app.customers.oidc.provider_client import ProviderClient
from app.customers.oidc.providers import create_login_provider
from app.customers.oidc.sign_in import ProviderSignIn
from app.oauth.stores import Store
from app.runtime.db import Database
from app.runtime.server_secret import load_server_keys
from app.runtime.settings import Settings

from ...cli.test_cli import Keyhouse, clean_environment
from ...cli.test_cli import restore_logging as restore_logging
from ...cli.test_cli_customers import assert_one_line_error, one_document
from ...cli.test_cli_customers import migrated as migrated
from ...cli.test_login_providers import create_args, run
from ...conftest import TEST_SERVER_SECRET, free_port
from ...serve import KEYHOUSE, serving
from .conftest import Shop, begin, query_of
from .fake_provider import CLIENT_ID, CLIENT_SECRET, FakeProvider

PRODUCTION = pytest.mark.settings(environment="production")
HTTPS_ISSUER = "https://id.example"


def production(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEYHOUSE_ENVIRONMENT", "production")
    monkeypatch.setenv("KEYHOUSE_ISSUER", "https://keyhouse.example")


@pytest.fixture
def keyhouse(migrated: Keyhouse, monkeypatch: pytest.MonkeyPatch) -> Keyhouse:
    """The CLI on a migrated database, with a server secret of the environment's from the
    start, as production requires."""
    monkeypatch.setenv("KEYHOUSE_SERVER_SECRET", TEST_SERVER_SECRET.get_secret_value())
    return migrated


def test_create_refuses_an_http_issuer_in_production(
    keyhouse: Keyhouse, fake_provider: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    production(monkeypatch)
    result = run(*create_args(fake_provider.issuer))
    assert_one_line_error(result)
    assert "production refuses http" in result.stderr
    assert fake_provider.authorization_requests == []


def test_serve_stops_on_an_enabled_http_provider_in_production(
    keyhouse: Keyhouse, fake_provider: FakeProvider, tmp_path: Path
) -> None:
    created = one_document(run(*create_args(fake_provider.issuer)))  # development, on localhost
    environment = {
        "KEYHOUSE_ENVIRONMENT": "production",
        "KEYHOUSE_DATA_DIR": str(keyhouse.data_dir),
        "KEYHOUSE_DATABASE_URL": keyhouse.database_url,
    }
    settings = {
        **clean_environment(),
        **environment,
        "KEYHOUSE_ISSUER": "https://keyhouse.example",
        "KEYHOUSE_SERVER_SECRET": TEST_SERVER_SECRET.get_secret_value(),
    }
    command = [str(KEYHOUSE), "serve", "--port", str(free_port())]
    stopped = subprocess.run(command, env=settings, capture_output=True, text=True, timeout=60)
    assert stopped.returncode == 1
    assert stopped.stderr.splitlines()[-1] == (
        f"error: login provider {created['id']} has an http issuer, which production refuses: "
        "disable it (keyhouse login-providers disable ID) or register it with https"
    )
    # Disabled, it no longer stands in the way.
    assert run("login-providers", "disable", created["id"]).exit_code == 0
    with serving(tmp_path, workers=1, environment=environment) as served:
        assert served.get("/healthz").status_code == 200


def discovery_with_http_endpoints() -> httpx.MockTransport:
    """A provider at an https issuer whose discovery document names http endpoints."""
    document = {
        "issuer": HTTPS_ISSUER,
        "authorization_endpoint": f"{HTTPS_ISSUER}/authorize",
        "token_endpoint": "http://127.0.0.1:9/token",
        "jwks_uri": f"{HTTPS_ISSUER}/jwks",
        "response_types_supported": ["code"],
    }
    return httpx.MockTransport(lambda request: httpx.Response(200, json=document))


async def test_discovery_naming_http_endpoints_is_refused_in_production() -> None:
    async with httpx.AsyncClient(transport=discovery_with_http_endpoints()) as http:
        with pytest.raises(ProviderResponseError) as refused:
            await ProviderClient(http, loopback_http=False).discover(HTTPS_ISSUER)
        assert refused.value.reason == "insecure_endpoint"
        metadata = await ProviderClient(http, loopback_http=True).discover(HTTPS_ISSUER)
        assert metadata.token_endpoint == "http://127.0.0.1:9/token"


@PRODUCTION
async def test_a_sign_in_refuses_a_provider_naming_an_http_endpoint(
    app: FastAPI,
    http: httpx.AsyncClient,
    shop: Shop,
    settings: Settings,
    database: Database,
    default_store: Store,
) -> None:
    """Registered before (in development, say), its discovery document now names an http
    token endpoint: the sign-in is refused before the browser is sent anywhere."""
    assert settings.environment == "production"
    async with httpx.AsyncClient(transport=discovery_with_http_endpoints()) as provider_http:
        async with database.sessions() as session:
            await create_login_provider(
                session,
                provider_client=ProviderClient(provider_http, loopback_http=True),
                encryption_key=load_server_keys(settings).login_provider_secret_encryption,
                store_id=default_store.id,
                name="example",
                issuer=HTTPS_ISSUER,
                client_id=CLIENT_ID,
                client_secret=CLIENT_SECRET,
            )
        sign_in: ProviderSignIn = app.state.provider_sign_in
        assert sign_in.provider_client.loopback_http is False
        sign_in.provider_client = ProviderClient(provider_http, loopback_http=False)
        answer = await begin(http, shop)
    assert answer.status_code == 302
    sent_back = query_of(answer.headers["location"])
    assert sent_back["error"] == "server_error"
    assert sent_back["error_description"] == (
        "The login provider's configuration names an http address, which this server refuses."
    )


@PRODUCTION
async def test_a_sign_in_refuses_a_provider_with_an_http_issuer(
    http: httpx.AsyncClient, shop: Shop, login_provider: object
) -> None:
    """The fake provider, registered on 127.0.0.1 as development allows."""
    answer = await begin(http, shop)
    sent_back = query_of(answer.headers["location"])
    assert sent_back["error"] == "server_error"
    assert "http address" in sent_back["error_description"]
