"""The official commerce JavaScript SDKs, unmodified, authenticate against Keyhouse (§1).

`tests/js/sdk_auth.mjs` drives `@moltin/sdk` or `@elasticpath/js-sdk` under Node against the
live server and reports what the SDK stored and sent. The SDKs decide when to re-authenticate
only from `expires`, so a wrong unit or an off-by-one shows up here as an extra or missing
token request. Each run waits out a token lifetime of `TTL` seconds.
"""

from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest

from app.oauth.clients import CreatedClient

from ..conftest import LiveServer, MakeClient
from ..node import SDKS, node_with_sdks, run_script

pytestmark = pytest.mark.node

TTL = 2


async def run_sdk(node: str, server: LiveServer, sdk: str, client: CreatedClient) -> Any:
    environment = {
        "KEYHOUSE_URL": server.url,
        "SDK": sdk,
        "CLIENT_ID": client.client.id,
        "CLIENT_SECRET": client.client_secret or "",
        "TTL_SECONDS": str(TTL),
    }
    return await run_script(node, "sdk_auth.mjs", environment)


async def verify_with_jwks(server: LiveServer, token: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=server.url) as client:
        jwks = (await client.get("/.well-known/jwks.json")).json()
    header = jwt.get_unverified_header(token)
    assert header["typ"] == "at+jwt"
    key = jwt.PyJWKSet.from_dict(jwks)[header["kid"]]
    issuer = server.settings.issuer
    # The SDK has waited the first token out by now: check everything but `exp` here, and
    # `exp` against the `expires` the SDK stored, in the test.
    claims: dict[str, Any] = jwt.decode(
        token,
        key=key,
        algorithms=["ES256"],
        audience=issuer,
        issuer=issuer,
        options={"verify_exp": False},
    )
    return claims


def header(headers: dict[str, str], name: str) -> str | None:
    return next((v for k, v in headers.items() if k.lower() == name.lower()), None)


def assert_token_request(report: dict[str, Any], client: CreatedClient, grant: str) -> None:
    """What the SDK sent: a form POST with its SDK headers, the grant and the client id."""
    assert report["request_method"] == "POST"
    assert urlsplit(report["request_url"]).path == "/oauth/access_token"
    headers = report["request_headers"]
    assert header(headers, "Content-Type") == "application/x-www-form-urlencoded"
    assert header(headers, "X-MOLTIN-SDK-LANGUAGE") == "JS"
    assert header(headers, "X-MOLTIN-SDK-VERSION")
    form = parse_qs(report["request_body"], strict_parsing=True)
    expected = {"grant_type": [grant], "client_id": [client.client.id]}
    if client.client_secret is not None:
        expected["client_secret"] = [client.client_secret]
    assert form == expected


def assert_token_lifecycle(report: dict[str, Any], grant: str, requested_at: float) -> None:
    """One token while it is valid, exactly one new one right after `expires`."""
    first = report["first"]
    assert first["identifier"] == grant
    assert report["first_types"]["expires"] == "number"
    assert isinstance(first["expires"], int)  # seconds, not milliseconds, not a string
    assert first["expires_in"] == TTL
    assert requested_at + TTL - 1 <= first["expires"] <= requested_at + TTL + 1
    assert report["token_requests_after_authenticate"] == 1
    assert report["token_requests_after_reuse"] == 1
    assert report["token_requests_before_expiry"] == 1
    assert report["token_requests_after_expiry"] == report["token_request_count"] == 2
    assert report["second"]["identifier"] == grant
    assert report["token_changed"] is True
    assert report["after_expiry_call_used_new_token"] is True
    reuse = [r for r in report["calls"][0]["requests"] if not r["is_token_request"]]
    assert reuse and reuse[0]["authorization"] == f"Bearer {first['access_token']}"


@pytest.mark.parametrize("sdk", SDKS)
@pytest.mark.parametrize(
    ("grant", "public", "scope"),
    [("implicit", True, "read"), ("client_credentials", False, "read write")],
    ids=["implicit", "client_credentials"],
)
async def test_sdk_authenticates_reuses_and_renews(
    live_server: LiveServer,
    make_client: MakeClient,
    sdk: str,
    grant: str,
    public: bool,
    scope: str,
) -> None:
    node = node_with_sdks()
    client = await make_client(name=f"{sdk} {grant}", public=public, token_ttl=TTL)
    report = await run_sdk(node, live_server, sdk, client)
    assert report["sdk"] == sdk and report["grant_type"] == grant
    assert report["authenticate_response"]["access_token"] == report["first"]["access_token"]
    assert report["authenticate_response"]["scope"] == scope
    assert_token_request(report, client, grant)
    assert_token_lifecycle(report, grant, report["requests"][0]["at_ms"] / 1000)
    for credentials in (report["first"], report["second"]):
        claims = await verify_with_jwks(live_server, credentials["access_token"])
        assert claims["client_id"] == client.client.id
        assert claims["scope"] == scope
        assert claims["exp"] == credentials["expires"]
