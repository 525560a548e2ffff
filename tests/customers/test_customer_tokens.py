"""`POST /v2/customers/tokens` (CONTRACT §3), and how customer and bearer tokens are refused
on the routes that read them (CONTRACT §4, RFC 6750 §3)."""

import asyncio
import statistics
import time
import uuid
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import FastAPI
from passlib.context import CryptContext  # type: ignore[import-untyped]
from sqlalchemy import select, update

from app.customers.customers import Customer
from app.runtime.db import Database
from app.runtime.passwords import ARGON2_MEMORY_KIB, ARGON2_TIME_COST, password_context

from ..conftest import TEST_ISSUER, MakeClient
from .conftest import MakeShopper, MakeStore
from .shoppers import CUSTOMERS_URL, LOGIN_URL, PASSWORD, headers, implicit_token, log_in

CUSTOMER_TOKEN_TTL = 86_400


async def verified_claims(http: httpx.AsyncClient, token: str) -> dict[str, Any]:
    jwks = (await http.get("/.well-known/jwks.json")).json()
    kid = jwt.get_unverified_header(token)["kid"]
    (key,) = [key for key in jwt.PyJWKSet.from_dict(jwks).keys if key.key_id == kid]
    claims: dict[str, Any] = jwt.decode(
        token, key.key, algorithms=["ES256"], audience=TEST_ISSUER, issuer=TEST_ISSUER
    )
    return claims


def assert_invalid_token(response: httpx.Response, case: str = "") -> None:
    assert response.status_code == 401, (case, response.text)
    assert response.json()["errors"][0]["status"] == 401
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer ") and 'error="invalid_token"' in challenge, case


async def stored_hash(database: Database, customer_id: str) -> str:
    async with database.sessions() as session:
        query = select(Customer.password_hash).where(Customer.id == uuid.UUID(customer_id))
        hashed: str = (await session.scalars(query)).one()
        return hashed


# logging in


async def test_login_answers_a_customer_token(
    http: httpx.AsyncClient, storefront: str, make_shopper: MakeShopper
) -> None:
    shopper = await make_shopper(email="Ron@Example.com")
    before = int(time.time())
    response = await log_in(
        http, storefront, email="  ron@EXAMPLE.com", authentication_mechanism="password"
    )
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert set(data) == {"type", "id", "customer_id", "token", "expires", "expires_in"}
    assert data["type"] == "token"
    assert data["customer_id"] == shopper.id
    assert data["expires_in"] == CUSTOMER_TOKEN_TTL
    assert isinstance(data["expires"], int)
    assert before + CUSTOMER_TOKEN_TTL <= data["expires"] <= int(time.time()) + CUSTOMER_TOKEN_TTL
    assert PASSWORD not in response.text

    assert jwt.get_unverified_header(data["token"])["typ"] == "customer+jwt"
    claims = await verified_claims(http, data["token"])
    assert claims["sub"] == shopper.id
    assert claims["jti"] == data["id"]
    assert claims["exp"] == data["expires"]


async def test_customer_token_header_name_is_case_insensitive(
    http: httpx.AsyncClient, storefront: str, make_shopper: MakeShopper
) -> None:
    shopper = await make_shopper()
    sent = {"authorization": f"bearer {storefront}", "x-moltin-customer-token": shopper.token}
    response = await http.get(f"{CUSTOMERS_URL}/{shopper.id}", headers=sent)
    assert response.status_code == 200, response.text


async def test_unknown_email_and_wrong_password_get_the_same_401(
    http: httpx.AsyncClient, storefront: str, make_shopper: MakeShopper
) -> None:
    shopper = await make_shopper()
    wrong = await log_in(http, storefront, email=shopper.email, password="not the password")
    unknown = await log_in(http, storefront, email="nobody@example.com", password=PASSWORD)
    for response in (wrong, unknown):
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer realm=")
    assert wrong.content == unknown.content
    assert wrong.headers["www-authenticate"] == unknown.headers["www-authenticate"]
    assert shopper.email not in wrong.text


LOGIN = {"type": "token", "email": "r@e.com", "password": PASSWORD}
BAD_LOGINS: dict[str, dict[str, Any]] = {
    "unknown mechanism": {**LOGIN, "authentication_mechanism": "saml"},
    "oidc without its code": {**LOGIN, "authentication_mechanism": "oidc"},
    "empty mechanism": {**LOGIN, "authentication_mechanism": ""},
    "wrong type": {**LOGIN, "type": "customer"},
    "no type": {"email": "r@e.com", "password": PASSWORD},
    "no email": {"type": "token", "password": PASSWORD},
    "no password": {"type": "token", "email": "r@e.com"},
    "password not a string": {**LOGIN, "password": ["a"]},
    # PostgreSQL refuses NUL in text: the email is looked up, so it must not get that far.
    "NUL in the email": {**LOGIN, "email": "r\x00@e.com"},
}


@pytest.mark.parametrize("data", BAD_LOGINS.values(), ids=BAD_LOGINS.keys())
async def test_bad_login_body_is_400(
    http: httpx.AsyncClient, storefront: str, data: dict[str, Any]
) -> None:
    response = await http.post(LOGIN_URL, json={"data": data}, headers=headers(storefront))
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["status"] == 400
    assert PASSWORD not in response.text


async def test_a_shopper_of_another_store_cannot_log_in_here(
    http: httpx.AsyncClient,
    storefront: str,
    make_client: MakeClient,
    make_store: MakeStore,
    make_shopper: MakeShopper,
) -> None:
    shopper = await make_shopper()
    other_store = await make_store("Other")
    other = await implicit_token(
        http, await make_client(name="other", public=True, store_id=other_store.id)
    )
    assert (await log_in(http, other, email=shopper.email)).status_code == 401


# refused tokens


def forged_customer_token(shopper_token: str) -> str:
    """The shopper's claims signed by a key of our own, under the server's key id."""
    claims = jwt.decode(shopper_token, options={"verify_signature": False})
    kid = jwt.get_unverified_header(shopper_token)["kid"]
    return jwt.encode(
        claims,
        ec.generate_private_key(ec.SECP256R1()),
        algorithm="ES256",
        headers={"kid": kid, "typ": "customer+jwt"},
    )


async def signed(app: FastAPI, claims: dict[str, Any], typ: str) -> str:
    """A token signed with the server's own active key."""
    key = await app.state.keyring.active_key()
    token: str = key.signer.sign(claims, typ=typ)
    return token


async def test_customer_token_of_another_store_is_401(
    http: httpx.AsyncClient,
    storefront: str,
    make_client: MakeClient,
    make_store: MakeStore,
    make_shopper: MakeShopper,
) -> None:
    shopper = await make_shopper()
    other_store = await make_store("Other")
    other = await implicit_token(
        http, await make_client(name="other", public=True, store_id=other_store.id)
    )
    response = await http.get(
        f"{CUSTOMERS_URL}/{shopper.id}", headers=headers(other, shopper.token)
    )
    assert_invalid_token(response)


async def test_unusable_customer_tokens_are_401(
    http: httpx.AsyncClient, app: FastAPI, storefront: str, make_shopper: MakeShopper
) -> None:
    shopper = await make_shopper()
    claims = jwt.decode(shopper.token, options={"verify_signature": False})
    expired = {**claims, "iat": claims["iat"] - 2 * 86_400, "exp": claims["iat"] - 86_400}
    unusable = {
        "forged": forged_customer_token(shopper.token),
        "expired": await signed(app, expired, "customer+jwt"),
        "access token": storefront,
        "not a JWT": "not-a-token",
        "tampered": shopper.token[:-4] + ("AAAA" if shopper.token[-4:] != "AAAA" else "BBBB"),
    }
    for name, token in unusable.items():
        response = await http.get(
            f"{CUSTOMERS_URL}/{shopper.id}", headers=headers(storefront, token)
        )
        assert_invalid_token(response, name)


async def test_expired_bearer_is_401_invalid_token(
    http: httpx.AsyncClient, app: FastAPI, backend: str
) -> None:
    claims = jwt.decode(backend, options={"verify_signature": False})
    now = int(time.time())
    expired = await signed(app, {**claims, "iat": now - 7200, "exp": now - 3600}, "at+jwt")
    fresh = await signed(app, {**claims, "iat": now, "exp": now + 3600}, "at+jwt")
    assert (await http.get(CUSTOMERS_URL, headers=headers(fresh))).status_code == 200
    response = await http.get(CUSTOMERS_URL, headers=headers(expired))
    assert_invalid_token(response)
    assert response.headers["www-authenticate"].startswith('Bearer realm="keyhouse"')


@pytest.mark.parametrize(
    "authorization", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer not-a-token", "token"]
)
async def test_malformed_authorization_is_401_invalid_token(
    http: httpx.AsyncClient, authorization: str
) -> None:
    response = await http.get(CUSTOMERS_URL, headers={"Authorization": authorization})
    assert_invalid_token(response)


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_missing_bearer_is_401_with_a_bare_challenge(
    http: httpx.AsyncClient, method: str
) -> None:
    url = CUSTOMERS_URL if method == "GET" else LOGIN_URL
    response = await http.request(method, url, json={"data": {}})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="keyhouse"'
    assert response.json()["errors"][0]["status"] == 401


# password hashes


OLD_HASHES = {
    "argon2 with less memory": CryptContext(
        schemes=["argon2"], argon2__type="ID", argon2__memory_cost=8192, argon2__time_cost=1
    ),
    "pbkdf2_sha256": CryptContext(schemes=["pbkdf2_sha256"], pbkdf2_sha256__rounds=1000),
}


@pytest.mark.parametrize("context", OLD_HASHES.values(), ids=OLD_HASHES.keys())
async def test_old_hash_is_upgraded_on_the_next_login(
    http: httpx.AsyncClient,
    database: Database,
    storefront: str,
    make_shopper: MakeShopper,
    context: CryptContext,
) -> None:
    shopper = await make_shopper()
    old_hash = context.hash(shopper.password)
    async with database.sessions() as session:
        change = update(Customer).where(Customer.id == uuid.UUID(shopper.id))
        await session.execute(change.values(password_hash=old_hash))
        await session.commit()

    wrong = await log_in(http, storefront, email=shopper.email, password="not the password")
    assert wrong.status_code == 401
    assert await stored_hash(database, shopper.id) == old_hash  # no upgrade without the password

    assert (await log_in(http, storefront, email=shopper.email)).status_code == 200
    new_hash = await stored_hash(database, shopper.id)
    assert new_hash != old_hash
    assert new_hash.startswith(f"$argon2id$v=19$m={ARGON2_MEMORY_KIB},t={ARGON2_TIME_COST},")
    assert password_context.verify(shopper.password, new_hash)
    assert not password_context.needs_update(new_hash)
    assert (await log_in(http, storefront, email=shopper.email)).status_code == 200
    assert await stored_hash(database, shopper.id) == new_hash  # current hashes stay


async def test_unknown_email_costs_what_a_wrong_password_costs(
    http: httpx.AsyncClient, storefront: str, make_shopper: MakeShopper
) -> None:
    shopper = await make_shopper()

    async def duration(email: str) -> float:
        started = time.perf_counter()
        response = await log_in(http, storefront, email=email, password="not the password")
        elapsed = time.perf_counter() - started
        assert response.status_code == 401
        return elapsed

    for email in (shopper.email, "nobody@example.com"):  # warm up
        await duration(email)
    known: list[float] = []
    unknown: list[float] = []
    for attempt in range(11):
        emails = [(known, shopper.email), (unknown, f"nobody{attempt}@example.com")]
        for times, email in emails if attempt % 2 else reversed(emails):
            times.append(await duration(email))
    ratio = statistics.median(unknown) / statistics.median(known)
    assert 0.5 < ratio < 2.0, (known, unknown)
    # The decoy verification really runs: an unknown email is not answered at once.
    assert statistics.median(unknown) > 0.005


# 40 parallel logins of one shopper from one address: more than the lockout lets through at once.
@pytest.mark.settings(lockout_pair_failures=50)
async def test_a_login_flood_leaves_database_connections_for_other_requests(
    http: httpx.AsyncClient, backend: str, make_shopper: MakeShopper
) -> None:
    # Logins queue for a few hashing threads; while they wait they must not hold one of the
    # pool's connections, or a request that needs no hash waits behind the whole flood.
    shopper = await make_shopper()
    finished: list[str] = []

    async def login() -> None:
        assert (await log_in(http, backend, email=shopper.email)).status_code == 200
        finished.append("login")

    async def read_customer() -> None:
        await asyncio.sleep(0.05)  # the flood is queued by now
        response = await http.get(f"{CUSTOMERS_URL}/{shopper.id}", headers=headers(backend))
        assert response.status_code == 200
        finished.append("read")

    await asyncio.gather(*(login() for _ in range(40)), read_customer())
    # Holding connections while hashing, it came after 20 or more logins; now it comes first.
    assert finished.index("read") < 10, finished.index("read")
