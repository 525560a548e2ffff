"""Standard OAuth 2 client libraries against Keyhouse: they work unmodified (§1, §2).

Authlib, requests-oauthlib, httpx-auth and PyJWT's `PyJWKClient` each do their own encoding
and validation; a test here passes only if a real library accepts what Keyhouse sends.
"""

import base64
import hashlib
import hmac
import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import jwt
import pytest
import requests
from authlib.integrations.requests_client import (  # type: ignore[import-untyped]
    OAuth2Session as AuthlibSession,
)
from authlib.integrations.requests_client import OAuthError
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata  # type: ignore[import-untyped]
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from fastapi import FastAPI
from httpx_auth import OAuth2ClientCredentials
from oauthlib.oauth2 import BackendApplicationClient  # type: ignore[import-untyped]
from requests_oauthlib import OAuth2Session  # type: ignore[import-untyped]

from app.oauth.clients import CreatedClient

from ..conftest import TEST_ISSUER, LiveServer

TOKEN_PATH = "/oauth/access_token"
JWKS_PATH = "/.well-known/jwks.json"
METADATA_PATH = "/.well-known/oauth-authorization-server"


@pytest.fixture
def jwks_client(live_server: LiveServer) -> Iterator[jwt.PyJWKClient]:
    yield jwt.PyJWKClient(live_server.url + JWKS_PATH, cache_keys=True)


def secret_of(client: CreatedClient) -> str:
    assert client.client_secret is not None
    return client.client_secret


def verify(token: str, jwks_client: jwt.PyJWKClient, issuer: str) -> dict[str, Any]:
    """Verifies like a resource server would: JWKS key by `kid`, ES256 only, `aud` and `iss`."""
    key = jwks_client.get_signing_key_from_jwt(token)
    claims: dict[str, Any] = jwt.decode(
        token, key=key, algorithms=["ES256"], audience=issuer, issuer=issuer
    )
    return claims


def fetch_token(server: LiveServer, **data: str) -> str:
    response = requests.post(server.url + TOKEN_PATH, data=data, timeout=10)
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def implicit_token(server: LiveServer, client: CreatedClient) -> str:
    return fetch_token(server, grant_type="implicit", client_id=client.client.id)


# --- Authlib --------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_authlib_requests_client_credentials(
    live_server: LiveServer,
    backend: CreatedClient,
    jwks_client: jwt.PyJWKClient,
    method: str,
) -> None:
    with AuthlibSession(
        backend.client.id, secret_of(backend), token_endpoint_auth_method=method
    ) as session:
        token = session.fetch_token(live_server.url + TOKEN_PATH, grant_type="client_credentials")
    assert token["token_type"] == "Bearer"
    assert token["identifier"] == "client_credentials"
    assert token["scope"] == "read write"
    # Authlib derives `expires_at` from `expires_in`; Keyhouse's `expires` must agree with it.
    assert abs(token["expires_at"] - token["expires"]) <= 1
    assert not token.is_expired()
    claims = verify(token["access_token"], jwks_client, live_server.settings.issuer)
    assert claims["client_id"] == backend.client.id
    assert claims["scope"] == "read write"


@pytest.mark.filterwarnings("ignore:The httpx module is deprecated")
@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
async def test_authlib_httpx_async_client_credentials(
    app: FastAPI, backend: CreatedClient, method: str
) -> None:
    # Authlib 1.9 warns, on import, that it would rather use httpx2; httpx is what we have.
    from authlib.integrations.httpx_client import AsyncOAuth2Client  # type: ignore[import-untyped]

    async with AsyncOAuth2Client(
        backend.client.id,
        secret_of(backend),
        token_endpoint_auth_method=method,
        scope="read",
        transport=httpx.ASGITransport(app=app),
        base_url=TEST_ISSUER,
    ) as session:
        token = await session.fetch_token(TEST_ISSUER + TOKEN_PATH, grant_type="client_credentials")
        jwks = (await session.get(JWKS_PATH)).json()
    assert token["identifier"] == "client_credentials"
    assert token["scope"] == "read"
    header = jwt.get_unverified_header(token["access_token"])
    key = jwt.PyJWKSet.from_dict(jwks)[header["kid"]]
    claims = jwt.decode(
        token["access_token"],
        key=key,
        algorithms=["ES256"],
        audience=TEST_ISSUER,
        issuer=TEST_ISSUER,
    )
    assert claims["scope"] == "read"


def test_authlib_reports_invalid_client_from_the_error_body(
    live_server: LiveServer, backend: CreatedClient
) -> None:
    with (
        AuthlibSession(backend.client.id, "not-the-secret") as session,
        pytest.raises(OAuthError) as raised,
    ):
        session.fetch_token(live_server.url + TOKEN_PATH, grant_type="client_credentials")
    assert raised.value.error == "invalid_client"


# --- requests-oauthlib ----------------------------------------------------------------------


@pytest.mark.parametrize("include_client_id", [False, True], ids=["basic", "post"])
def test_requests_oauthlib_backend_application(
    live_server: LiveServer,
    backend: CreatedClient,
    jwks_client: jwt.PyJWKClient,
    monkeypatch: pytest.MonkeyPatch,
    include_client_id: bool,
) -> None:
    # oauthlib refuses plain http unless told otherwise; the live server has no TLS.
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    # Closed here, not by the garbage collector: an open pooled socket found later warns in
    # whichever test is running then.
    with OAuth2Session(client=BackendApplicationClient(client_id=backend.client.id)) as session:
        token = session.fetch_token(
            live_server.url + TOKEN_PATH,
            client_id=backend.client.id,
            client_secret=secret_of(backend),
            include_client_id=include_client_id,
        )
    assert token["token_type"] == "Bearer"
    assert token["identifier"] == "client_credentials"
    assert token["scope"] == ["read", "write"]  # oauthlib splits the scope string
    assert abs(token["expires_at"] - token["expires"]) <= 1
    claims = verify(token["access_token"], jwks_client, live_server.settings.issuer)
    assert claims["sub"] == backend.client.id


# --- httpx-auth -----------------------------------------------------------------------------


def test_httpx_auth_client_credentials_attaches_a_keyhouse_token(
    live_server: LiveServer, backend: CreatedClient, jwks_client: jwt.PyJWKClient
) -> None:
    auth = OAuth2ClientCredentials(
        live_server.url + TOKEN_PATH, backend.client.id, secret_of(backend)
    )
    with httpx.Client(base_url=live_server.url, timeout=10) as client:
        first = client.get(JWKS_PATH, auth=auth)
        second = client.get(JWKS_PATH, auth=auth)
    assert first.status_code == second.status_code == 200
    scheme, _, token = first.request.headers["Authorization"].partition(" ")
    assert scheme == "Bearer"
    # httpx-auth caches the token until shortly before `expires_in`: one token for both calls.
    assert second.request.headers["Authorization"] == f"Bearer {token}"
    claims = verify(token, jwks_client, live_server.settings.issuer)
    assert claims["client_id"] == backend.client.id


# --- PyJWT's PyJWKClient --------------------------------------------------------------------


def test_pyjwkclient_verifies_an_implicit_token(
    live_server: LiveServer, storefront: CreatedClient, jwks_client: jwt.PyJWKClient
) -> None:
    token = implicit_token(live_server, storefront)
    header = jwt.get_unverified_header(token)
    assert header["typ"] == "at+jwt"
    assert header["alg"] == "ES256"
    published = requests.get(live_server.url + JWKS_PATH, timeout=10).json()
    assert header["kid"] in {key["kid"] for key in published["keys"]}
    claims = verify(token, jwks_client, live_server.settings.issuer)
    assert claims["iss"] == claims["aud"] == live_server.url
    assert claims["sub"] == claims["client_id"] == storefront.client.id
    assert claims["scope"] == "read"
    assert claims["exp"] > claims["iat"]
    assert claims["store_id"] == str(storefront.client.store_id)
    assert {"jti", "iat", "exp"} <= set(claims)


# --- RFC 8414 discovery ---------------------------------------------------------------------


def test_metadata_token_endpoint_works_for_authlib(
    live_server: LiveServer, backend: CreatedClient, jwks_client: jwt.PyJWKClient
) -> None:
    metadata = requests.get(live_server.url + METADATA_PATH, timeout=10).json()
    assert metadata["issuer"] == live_server.settings.issuer
    assert metadata["jwks_uri"] == live_server.url + JWKS_PATH
    # RFC 8414's "implicit" means the redirect flow, which Keyhouse does not have.
    assert metadata["grant_types_supported"] == ["client_credentials"]
    assert set(metadata["token_endpoint_auth_methods_supported"]) >= {
        "client_secret_basic",
        "client_secret_post",
    }
    assert set(metadata["scopes_supported"]) == {"read", "write"}
    with AuthlibSession(backend.client.id, secret_of(backend)) as session:
        token = session.fetch_token(metadata["token_endpoint"], grant_type="client_credentials")
    verify(token["access_token"], jwks_client, metadata["issuer"])


def test_metadata_passes_authlib_rfc8414_validation(live_server: LiveServer) -> None:
    metadata = requests.get(live_server.url + METADATA_PATH, timeout=10).json()
    AuthorizationServerMetadata(metadata).validate()


def test_metadata_names_revocation_and_introspection(live_server: LiveServer) -> None:
    metadata = requests.get(live_server.url + METADATA_PATH, timeout=10).json()
    assert metadata["revocation_endpoint"] == live_server.url + "/oauth/revoke"
    assert metadata["introspection_endpoint"] == live_server.url + "/oauth/introspect"


# --- Forged tokens --------------------------------------------------------------------------


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_json(value: dict[str, Any]) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


def parts(token: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    header = jwt.get_unverified_header(token)
    claims = jwt.decode(token, options={"verify_signature": False})
    return header, claims, token.rsplit(".", 1)[1]


def forge_unsigned(token: str, _key: jwt.PyJWK) -> str:
    header, claims, _ = parts(token)
    return f"{b64url_json({**header, 'alg': 'none'})}.{b64url_json(claims)}."


def forge_wider_scope(token: str, _key: jwt.PyJWK) -> str:
    header, claims, signature = parts(token)
    return f"{b64url_json(header)}.{b64url_json({**claims, 'scope': 'read write'})}.{signature}"


def hs256_with(secret: bytes, token: str) -> str:
    # PyJWT refuses to HMAC-sign with a public key, which is exactly what this attack does.
    header, claims, _ = parts(token)
    signing_input = f"{b64url_json({**header, 'alg': 'HS256'})}.{b64url_json(claims)}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(mac)}"


def forge_hs256_public_pem(token: str, key: jwt.PyJWK) -> str:
    public = key.key
    assert isinstance(public, ec.EllipticCurvePublicKey)
    return hs256_with(public.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo), token)


def forge_hs256_public_jwk(token: str, key: jwt.PyJWK) -> str:
    return hs256_with(json.dumps(key.Algorithm.to_jwk(key.key, as_dict=True)).encode(), token)


def forge_foreign_key(token: str, _key: jwt.PyJWK) -> str:
    header, claims, _ = parts(token)
    foreign = ec.generate_private_key(ec.SECP256R1())
    return jwt.encode(claims, foreign, algorithm="ES256", headers=header)  # same kid


@pytest.mark.parametrize(
    ("forge", "error"),
    [
        pytest.param(forge_unsigned, jwt.InvalidAlgorithmError, id="alg-none"),
        pytest.param(forge_wider_scope, jwt.InvalidSignatureError, id="tampered-scope"),
        pytest.param(forge_hs256_public_pem, jwt.InvalidAlgorithmError, id="hs256-pem"),
        pytest.param(forge_hs256_public_jwk, jwt.InvalidAlgorithmError, id="hs256-jwk"),
        pytest.param(forge_foreign_key, jwt.InvalidSignatureError, id="foreign-key-same-kid"),
    ],
)
def test_forged_token_fails_verification_with_the_published_key(
    live_server: LiveServer,
    storefront: CreatedClient,
    jwks_client: jwt.PyJWKClient,
    forge: Callable[[str, jwt.PyJWK], str],
    error: type[jwt.InvalidTokenError],
) -> None:
    token = implicit_token(live_server, storefront)
    issuer = live_server.settings.issuer
    key = jwks_client.get_signing_key_from_jwt(token)
    # The genuine token passes, so the failure below is the forgery's, not the setup's.
    jwt.decode(token, key=key, algorithms=["ES256"], audience=issuer, issuer=issuer)
    forged = forge(token, key)
    assert forged != token
    assert jwt.get_unverified_header(forged)["kid"] == key.key_id
    with pytest.raises(error):
        jwt.decode(forged, key=key, algorithms=["ES256"], audience=issuer, issuer=issuer)
