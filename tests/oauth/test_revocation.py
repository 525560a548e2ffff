"""Revocation (RFC 7009) and introspection (RFC 7662), and tokens that stop working because
their client was disabled or their customer deleted (contract §5).

Authlib's async client revokes and introspects, as a backend would; the protected routes are
asked afterwards whether they still accept the token.
"""

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from app.oauth.clients import CreatedClient, disable_client
from app.oauth.revocation import Revocation, RevocationList, revoke_token
from app.observability.audit import AuditEvent
from app.runtime.db import Database

from ..conftest import TEST_ISSUER, MakeClient, free_port
from ..customers.shoppers import (
    backend_token,
    headers,
    implicit_token,
    log_in,
    new_email,
    sign_up,
)

pytestmark = pytest.mark.filterwarnings("ignore:The httpx module is deprecated")

REVOKE_URL = TEST_ISSUER + "/oauth/revoke"
INTROSPECT_URL = TEST_ISSUER + "/oauth/introspect"
PRODUCTS = "/v2/products"


@pytest.fixture
async def authlib(app: FastAPI, backend: CreatedClient) -> AsyncIterator[Any]:
    """The backend's Authlib session: client_secret_basic, like most backends."""
    from authlib.integrations.httpx_client import AsyncOAuth2Client  # type: ignore[import-untyped]

    assert backend.client_secret is not None
    async with AsyncOAuth2Client(
        backend.client.id,
        backend.client_secret,
        transport=httpx.ASGITransport(app=app),
        base_url=TEST_ISSUER,
    ) as session:
        yield session


async def accepted(http: httpx.AsyncClient, token: str, customer_token: str | None = None) -> int:
    response = await http.get(PRODUCTS, headers=headers(token, customer_token))
    return response.status_code


async def shopper_token(http: httpx.AsyncClient, storefront: CreatedClient) -> tuple[str, str]:
    """A storefront token and a logged-in shopper's customer token beside it."""
    bearer = await implicit_token(http, storefront)
    email = new_email()
    assert (await sign_up(http, bearer, email=email)).status_code == 201
    login = await log_in(http, bearer, email=email)
    assert login.status_code == 200, login.text
    return bearer, login.json()["data"]["token"]


async def test_a_revoked_access_token_is_refused_at_once(
    http: httpx.AsyncClient, authlib: Any, backend: CreatedClient
) -> None:
    token = await backend_token(http, backend)
    assert await accepted(http, token) == 200
    response = await authlib.revoke_token(REVOKE_URL, token=token)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    refused = await http.get(PRODUCTS, headers=headers(token))
    assert refused.status_code == 401
    assert 'error="invalid_token"' in refused.headers["www-authenticate"]
    # A fresh token still works: only the one token was revoked.
    assert await accepted(http, await backend_token(http, backend)) == 200


async def test_a_revocation_while_the_database_is_away_is_a_503_in_the_oauth_body(
    app: FastAPI, http: httpx.AsyncClient, authlib: Any, backend: CreatedClient
) -> None:
    token = await backend_token(http, backend)
    served = app.state.database  # swapped for one that nothing listens for
    app.state.database = Database(f"postgresql+asyncpg://root@127.0.0.1:{free_port()}/keyhouse")
    try:
        response = await authlib.revoke_token(REVOKE_URL, token=token)
    finally:
        await app.state.database.dispose()
        app.state.database = served

    assert response.status_code == 503, response.text
    assert int(response.headers["retry-after"]) >= 1
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["error"] == "temporarily_unavailable"
    assert body["errors"][0]["status"] == 503
    assert await accepted(http, token) == 200  # not revoked, and not acknowledged as revoked


async def test_revocation_is_recorded_in_the_audit_trail(
    http: httpx.AsyncClient, authlib: Any, backend: CreatedClient, database: Database
) -> None:
    token = await backend_token(http, backend)
    await authlib.revoke_token(REVOKE_URL, token=token, token_type_hint="access_token")
    async with database.sessions() as session:
        event = (
            await session.scalars(select(AuditEvent).where(AuditEvent.event == "token.revoked"))
        ).one()
    assert event.actor == backend.client.id
    assert event.store_id == backend.client.store_id
    assert token not in str(event.log_fields())


@pytest.mark.parametrize("token", ["not-a-token", "a.b.c", "x" * 2000])
async def test_revoking_an_unknown_token_is_200_and_changes_nothing(
    authlib: Any, database: Database, token: str
) -> None:
    response = await authlib.revoke_token(REVOKE_URL, token=token)
    assert response.status_code == 200
    async with database.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Revocation)) == 0


async def test_a_client_cannot_revoke_another_clients_token(
    http: httpx.AsyncClient, authlib: Any, make_client: MakeClient
) -> None:
    other = await make_client(name="other backend")
    token = await backend_token(http, other)
    assert (await authlib.revoke_token(REVOKE_URL, token=token)).status_code == 200
    assert await accepted(http, token) == 200


async def test_revocation_needs_client_authentication(
    http: httpx.AsyncClient, backend: CreatedClient
) -> None:
    token = await backend_token(http, backend)
    for auth in [None, (backend.client.id, "wrong secret")]:
        response = await http.post(REVOKE_URL, data={"token": token}, auth=auth)
        assert response.status_code == 401
        assert response.json()["error"] == "invalid_client"
        assert "www-authenticate" in response.headers
    # A confidential client's id alone does not do either.
    response = await http.post(REVOKE_URL, data={"token": token, "client_id": backend.client.id})
    assert response.status_code == 401
    assert await accepted(http, token) == 200


async def test_revocation_without_a_token_parameter_is_invalid_request(
    http: httpx.AsyncClient, backend: CreatedClient
) -> None:
    assert backend.client_secret is not None
    response = await http.post(REVOKE_URL, data={}, auth=(backend.client.id, backend.client_secret))
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


async def test_a_storefront_logs_its_shopper_out_with_its_id_alone(
    http: httpx.AsyncClient, storefront: CreatedClient
) -> None:
    bearer, customer_token = await shopper_token(http, storefront)
    assert await accepted(http, bearer, customer_token) == 200
    form = {"token": customer_token, "client_id": storefront.client.id}
    assert (await http.post(REVOKE_URL, data=form)).status_code == 200
    assert await accepted(http, bearer, customer_token) == 401
    assert await accepted(http, bearer) == 200  # the storefront's own token is untouched


async def test_introspection_describes_an_active_access_token(
    http: httpx.AsyncClient, authlib: Any, backend: CreatedClient
) -> None:
    token = await backend_token(http, backend)
    response = await authlib.introspect_token(INTROSPECT_URL, token=token)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["active"] is True
    assert body["client_id"] == backend.client.id
    assert body["scope"] == "read write"
    assert body["token_type"] == "Bearer"
    assert body["iss"] == TEST_ISSUER
    assert body["store_id"] == str(backend.client.store_id)
    assert body["exp"] > time.time()


async def test_introspection_describes_a_customer_token(
    http: httpx.AsyncClient, authlib: Any, storefront: CreatedClient
) -> None:
    _, customer_token = await shopper_token(http, storefront)
    body = (await authlib.introspect_token(INTROSPECT_URL, token=customer_token)).json()
    assert body["active"] is True
    assert body["token_type"] == "customer"
    assert body["customer_id"] == body["sub"]


async def test_introspection_of_revoked_foreign_or_bad_tokens_is_inactive(
    http: httpx.AsyncClient,
    authlib: Any,
    backend: CreatedClient,
    make_client: MakeClient,
    make_store: Any,
) -> None:
    revoked = await backend_token(http, backend)
    await authlib.revoke_token(REVOKE_URL, token=revoked)
    elsewhere = await make_client(name="other shop", store_id=(await make_store("other")).id)
    foreign = await backend_token(http, elsewhere)
    for token in [revoked, foreign, "garbage", revoked[:-4] + "AAAA"]:
        response = await authlib.introspect_token(INTROSPECT_URL, token=token)
        assert response.status_code == 200
        assert response.json() == {"active": False}


async def test_introspection_is_for_confidential_clients_only(
    http: httpx.AsyncClient, backend: CreatedClient, storefront: CreatedClient
) -> None:
    token = await backend_token(http, backend)
    form = {"token": token, "client_id": storefront.client.id}
    response = await http.post(INTROSPECT_URL, data=form)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


async def test_disabling_a_client_revokes_its_tokens(
    http: httpx.AsyncClient, backend: CreatedClient, database: Database
) -> None:
    token = await backend_token(http, backend)
    assert await accepted(http, token) == 200
    async with database.sessions() as session:
        await disable_client(session, client_id=backend.client.id, issuing_lag_seconds=1)
    # Written by "another process" (this test): the app's worker learns of it by polling.
    await wait_until_refused(http, token)


async def test_deleting_a_customer_revokes_their_customer_tokens(
    http: httpx.AsyncClient, backend: CreatedClient, storefront: CreatedClient
) -> None:
    bearer, customer_token = await shopper_token(http, storefront)
    introspected = await http.post(
        INTROSPECT_URL,
        data={"token": customer_token},
        auth=(backend.client.id, backend.client_secret or ""),
    )
    customer_id = introspected.json()["customer_id"]
    admin = await backend_token(http, backend)
    deleted = await http.delete(f"/v2/customers/{customer_id}", headers=headers(admin))
    assert deleted.status_code == 204
    assert await accepted(http, bearer, customer_token) == 401
    assert (
        await http.get(f"/v2/customers/{customer_id}", headers=headers(admin))
    ).status_code == 404


async def wait_until_refused(http: httpx.AsyncClient, token: str) -> float:
    """Seconds until the token is refused; fails after two seconds (the bound is one)."""
    started = time.monotonic()
    while time.monotonic() - started < 2.0:
        if await accepted(http, token) == 401:
            return time.monotonic() - started
        await asyncio.sleep(0.02)
    pytest.fail("the token was still accepted two seconds later")


@pytest.mark.timing
async def test_a_revocation_written_elsewhere_is_seen_within_a_second(
    http: httpx.AsyncClient, backend: CreatedClient, database: Database, app: FastAPI
) -> None:
    token = await backend_token(http, backend)
    assert await accepted(http, token) == 200  # remembered as valid by this worker
    introspected = await http.post(
        INTROSPECT_URL, data={"token": token}, auth=(backend.client.id, backend.client_secret or "")
    )
    claims = introspected.json()
    async with database.sessions() as session:
        revoke_token(session, token_id=claims["jti"], expires_at=claims["exp"])
        await session.commit()
    assert await wait_until_refused(http, token) < 1.0


async def test_expired_revocations_are_purged(database: Database) -> None:
    revocations = RevocationList(database, poll_seconds=0.25)
    async with database.sessions() as session:
        revoke_token(session, token_id="gone", expires_at=int(time.time()) - 3600)
        revoke_token(session, token_id="live", expires_at=int(time.time()) + 3600)
        await session.commit()
    await revocations.load()
    assert revocations.is_revoked("live", "client", "c", 0)
    assert not revocations.is_revoked("gone", "client", "c", 0)
    await revocations.purge()
    async with database.sessions() as session:
        left = list(await session.scalars(select(Revocation.value)))
    assert left == ["live"]


async def test_a_nudge_as_the_worker_stops_does_not_keep_its_poll_alive(database: Database) -> None:
    """A push heard the moment the worker shuts down: with `asyncio.wait_for` (Python 3.11) the
    poll's wait ended by the nudge swallowed the cancellation, and the shutdown waited for ever."""
    revocations = RevocationList(database, poll_seconds=0.25)
    await revocations.start()
    await asyncio.sleep(0.05)  # waiting for the next poll
    revocations.nudge()
    stopping = asyncio.create_task(revocations.stop())
    done, _ = await asyncio.wait({stopping}, timeout=5)
    stopping.cancel()  # if it is still waiting: let the test end
    assert stopping in done


def _subject_revocation(cutoff: int, spared: str | None) -> Revocation:
    return Revocation(
        kind="customer",
        value="shopper",
        issued_before=cutoff,
        spared_token_id=spared,
        expires_at=datetime.now(UTC) + timedelta(hours=1),
    )


@pytest.mark.parametrize("order", ["in order", "reversed"])
async def test_a_subject_revocation_may_spare_one_token(database: Database, order: str) -> None:
    """A password change revokes every token of the shopper but the one that made it; a later
    revocation (a reset, the same second or after) spares nothing, in whatever order the
    worker reads the rows."""
    now = int(time.time())
    rows = [_subject_revocation(now, "kept"), _subject_revocation(now, None)]
    alone = RevocationList(database, poll_seconds=0.25)
    alone.apply(rows[0])
    assert not alone.is_revoked("kept", "customer", "shopper", now)
    assert alone.is_revoked("other", "customer", "shopper", now)
    assert not alone.is_revoked("newer", "customer", "shopper", now + 1)
    for later in (_subject_revocation(now, None), _subject_revocation(now + 1, None)):
        revocations = RevocationList(database, poll_seconds=0.25)
        for row in [rows[0], later] if order == "in order" else [later, rows[0]]:
            revocations.apply(row)
        assert revocations.is_revoked("kept", "customer", "shopper", now)
