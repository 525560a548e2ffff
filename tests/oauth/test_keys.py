"""Signing keys: encrypted at rest, named by RFC 7638 thumbprints, published without secrets."""

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from fastapi import FastAPI
from joserfc.jwk import import_key
from pydantic import SecretStr
from sqlalchemy import select, update

from app.main import create_app
from app.oauth.keys import (
    KeyRing,
    SigningKey,
    create_signing_key,
    jwk_thumbprint,
    rotate_signing_key,
)
from app.runtime.db import Database
from app.runtime.server_secret import load_server_keys
from app.runtime.settings import Settings

from ..conftest import TEST_ISSUER, MakeClient, make_settings

# RFC 7638 §3.1: the example RSA key and its SHA-256 thumbprint.
RFC7638_JWK = {
    "kty": "RSA",
    "n": (
        "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_B"
        "JECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_F"
        "DW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4v"
        "MQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
    ),
    "e": "AQAB",
    "alg": "RS256",
    "kid": "2011-04-29",
}
RFC7638_THUMBPRINT = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}
ALGORITHMS = ["ES256", "RS256"]


def encryption_key(settings: Settings) -> bytes:
    return load_server_keys(settings).signing_key_encryption


async def new_key(
    database: Database, settings: Settings, algorithm: str, *, activate: bool = True
) -> SigningKey:
    async with database.sessions() as session:
        return await create_signing_key(
            session,
            algorithm=algorithm,
            encryption_key=encryption_key(settings),
            activate=activate,
        )


async def stored_blob(database: Database, kid: str) -> bytes:
    async with database.sessions() as session:
        query = select(SigningKey.private_key_encrypted).where(SigningKey.kid == kid)
        blob: bytes = (await session.scalars(query)).one()
        return blob


def private_encodings(private_key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> list[bytes]:
    """Every form the private half could leak in: DER, PEM, and the bare private number."""
    forms = [
        private_key.private_bytes(encoding, private_format, NoEncryption())
        for encoding in (Encoding.DER, Encoding.PEM)
        for private_format in (PrivateFormat.PKCS8, PrivateFormat.TraditionalOpenSSL)
    ]
    numbers = private_key.private_numbers()
    secret = (
        numbers.private_value if isinstance(numbers, ec.EllipticCurvePrivateNumbers) else numbers.d
    )
    forms.append(secret.to_bytes((secret.bit_length() + 7) // 8, "big"))
    return forms


def jwk_of(private_key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> dict[str, Any]:
    algorithm = jwt.get_algorithm_by_name(
        "ES256" if isinstance(private_key, ec.EllipticCurvePrivateKey) else "RS256"
    )
    jwk: dict[str, Any] = algorithm.to_jwk(private_key.public_key(), as_dict=True)
    return jwk


def test_kid_is_the_rfc7638_thumbprint_of_the_rfc_example() -> None:
    assert jwk_thumbprint(RFC7638_JWK) == RFC7638_THUMBPRINT


def test_thumbprint_ignores_optional_members() -> None:
    required_only = {name: RFC7638_JWK[name] for name in ("e", "kty", "n")}
    assert jwk_thumbprint(required_only) == RFC7638_THUMBPRINT
    assert jwk_thumbprint({**required_only, "use": "sig"}) == RFC7638_THUMBPRINT


@pytest.mark.parametrize("algorithm", ALGORITHMS)
async def test_new_key_kid_is_its_thumbprint(
    database: Database, settings: Settings, algorithm: str
) -> None:
    key = await new_key(database, settings, algorithm)
    assert key.kid == jwk_thumbprint(key.public_jwk)
    # An independent implementation (joserfc, Authlib's JOSE library) agrees.
    assert key.kid == import_key(key.public_jwk).thumbprint()
    assert key.public_jwk["kid"] == key.kid
    assert key.public_jwk["alg"] == key.algorithm == algorithm
    assert key.public_jwk["use"] == "sig"


@pytest.mark.parametrize("algorithm", ALGORITHMS)
async def test_private_half_is_stored_encrypted(
    database: Database, settings: Settings, algorithm: str
) -> None:
    key = await new_key(database, settings, algorithm)
    keyring = KeyRing(database, encryption_key=encryption_key(settings))
    private_key = (await keyring.active_key()).private_key
    assert jwk_thumbprint(jwk_of(private_key)) == key.kid  # it is the key we made
    blob = await stored_blob(database, key.kid)
    for encoding in private_encodings(private_key):
        assert encoding not in blob
    assert b"PRIVATE KEY" not in blob


async def test_wrong_server_secret_cannot_decrypt(
    database: Database, settings: Settings, tmp_path: Path
) -> None:
    await new_key(database, settings, "ES256")
    other = make_settings(
        settings.database_url, tmp_path, server_secret=SecretStr("another-server-secret-" * 2)
    )
    keyring = KeyRing(database, encryption_key=encryption_key(other))
    with pytest.raises(InvalidTag):
        await keyring.refresh()


async def test_ciphertext_is_bound_to_its_kid(database: Database, settings: Settings) -> None:
    """A blob moved onto another key's row does not decrypt: the kid is authenticated data."""
    first = await new_key(database, settings, "ES256")
    second = await new_key(database, settings, "ES256")
    async with database.sessions() as session:
        await session.execute(
            update(SigningKey)
            .where(SigningKey.kid.in_([first.kid, second.kid]))
            .values(private_key_encrypted=first.private_key_encrypted)
        )
        await session.commit()
    keyring = KeyRing(database, encryption_key=encryption_key(settings))
    with pytest.raises(InvalidTag):
        await keyring.refresh()  # whichever key is newest, one of them was moved


async def test_inactive_key_is_published_but_does_not_sign(
    database: Database, settings: Settings
) -> None:
    active = await new_key(database, settings, "ES256")
    upcoming = await new_key(database, settings, "ES256", activate=False)
    keyring = KeyRing(database, encryption_key=encryption_key(settings))
    assert (await keyring.active_key()).kid == active.kid
    kids = [jwk["kid"] for jwk in (await keyring.jwks())["keys"]]
    assert sorted(kids) == sorted([active.kid, upcoming.kid])


@pytest.fixture(params=ALGORITHMS)
def signing_algorithm(request: pytest.FixtureRequest) -> str:
    algorithm: str = request.param
    return algorithm


@pytest.fixture
async def keyed_http(
    signing_algorithm: str, database_url: str, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    """The app configured as by `KEYHOUSE_SIGNING_ALGORITHM`."""
    settings = make_settings(database_url, tmp_path, signing_algorithm=signing_algorithm)
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url=TEST_ISSUER) as client:
            yield client


async def test_jwks_lists_only_public_members(
    keyed_http: httpx.AsyncClient, signing_algorithm: str
) -> None:
    response = await keyed_http.get("/.well-known/jwks.json")
    assert response.status_code == 200
    keys = response.json()["keys"]
    assert len(keys) == 1
    (jwk,) = keys
    assert not PRIVATE_MEMBERS & set(jwk)
    public = {"EC": {"crv", "x", "y"}, "RSA": {"n", "e"}}[jwk["kty"]]
    # RFC 7517 §4.3: `use` and `key_ops` should not both appear.
    assert set(jwk) == public | {"kty", "kid", "use", "alg"}
    assert jwk["alg"] == signing_algorithm
    assert jwk["kid"] == jwk_thumbprint(jwk)


async def test_tokens_are_signed_with_the_configured_algorithm_and_verify_with_jwks(
    keyed_http: httpx.AsyncClient, signing_algorithm: str, make_client: MakeClient
) -> None:
    algorithm = signing_algorithm
    created = await make_client(name="backend")
    assert created.client_secret is not None
    response = await keyed_http.post(
        "/oauth/access_token",
        data={"grant_type": "client_credentials"},
        auth=(created.client.id, created.client_secret),
    )
    assert response.status_code == 200
    token = response.json()["access_token"]
    header = jwt.get_unverified_header(token)
    assert header["alg"] == algorithm

    jwks = jwt.PyJWKSet.from_dict((await keyed_http.get("/.well-known/jwks.json")).json())
    (signing_key,) = [key for key in jwks.keys if key.key_id == header["kid"]]
    claims = jwt.decode(
        token, signing_key.key, algorithms=[algorithm], audience=TEST_ISSUER, issuer=TEST_ISSUER
    )
    assert claims["client_id"] == created.client.id
    if algorithm == "RS256":
        assert signing_key.key.key_size >= 2048


@pytest.mark.timing
async def test_a_rotated_in_key_is_published_within_a_poll(
    app: FastAPI, http: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    """`keyhouse keys rotate` (any process) adds a key: every worker serves it in its JWKS
    within the revocation poll, not at its next 30 s refresh."""
    before = {jwk["kid"] for jwk in (await http.get("/.well-known/jwks.json")).json()["keys"]}
    async with database.sessions() as session:  # as the CLI would, outside the app
        rotated = await rotate_signing_key(
            session,
            algorithm="ES256",
            encryption_key=encryption_key(settings),
            max_token_lifetime=3600,
        )
    rotated_at = time.monotonic()
    while True:
        jwks = (await http.get("/.well-known/jwks.json")).json()
        if rotated.new_key.kid in {jwk["kid"] for jwk in jwks["keys"]}:
            break
        assert time.monotonic() - rotated_at < 1.0, "the new key is not published"
        await asyncio.sleep(0.02)
    assert before < {jwk["kid"] for jwk in jwks["keys"]}
    # Published, but not signing before its pre-publication period ends.
    assert (await app.state.keyring.active_key()).kid in before
