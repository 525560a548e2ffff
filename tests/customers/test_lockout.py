"""The login lockout (app/customers/lockout.py) and the login rate limits, with counters in
memory and in Redis: a password guesser is slowed, then stopped, and the shopper still logs in
from elsewhere."""

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from app.customers.lockout import FailedLogin, LoginAttempt, record_failed_login
from app.oauth.stores import Store
from app.observability.audit import AuditEvent
from app.runtime.db import Database
from app.runtime.settings import Settings

from ..conftest import LiveServer, MakeClient, http_client, make_settings, serving
from ..node import SDKS, node_with_sdks, run_script
from .conftest import MakeShopper
from .shoppers import PASSWORD, implicit_token, log_in, new_email, sign_up

counted = pytest.mark.usefixtures("counter_storage")  # in memory, then in Redis

ELSEWHERE = "198.51.100.20"  # the shopper's own address, which never failed
WINDOW = 900


def assert_locked(response: httpx.Response, window: int = WINDOW) -> None:
    """429 with `Retry-After` within the window, in the JSON:API errors body."""
    assert response.status_code == 429, response.text
    assert 1 <= int(response.headers["retry-after"]) <= window
    (error,) = response.json()["errors"]
    assert error["status"] == 429
    assert error["title"] == "Too Many Requests"
    assert PASSWORD not in response.text


async def fail_logins(
    http: httpx.AsyncClient, bearer: str, email: str, count: int, *, tag: str = "wrong"
) -> None:
    """`count` logins with distinct wrong passwords, each refused with a 401."""
    for number in range(count):
        response = await log_in(http, bearer, email=email, password=f"{tag} password {number}")
        assert response.status_code == 401, response.text


async def audit_events(database: Database, name: str) -> list[AuditEvent]:
    async with database.sessions() as session:
        query = select(AuditEvent).where(AuditEvent.event == name).order_by(AuditEvent.id)
        return list(await session.scalars(query))


def count_hashes(app: FastAPI) -> list[str]:
    """Records every password check the app makes from now on."""
    checks: list[str] = []
    hasher = app.state.password_hasher
    check = hasher.check

    async def counting_check(password: str, stored_hash: str | None) -> Any:
        checks.append(password)
        return await check(password, stored_hash)

    hasher.check = counting_check
    return checks


@counted
async def test_failures_lock_the_pair_before_any_hashing(
    app: FastAPI, http: httpx.AsyncClient, storefront: str, make_shopper: MakeShopper
) -> None:
    shopper = await make_shopper()
    await fail_logins(http, storefront, shopper.email, 5)
    hashes = count_hashes(app)
    # Locked for the right password too (that is what a lockout is), and it cost no hash.
    assert_locked(await log_in(http, storefront, email=shopper.email))
    assert_locked(await log_in(http, storefront, email=shopper.email, password="sixth guess"))
    assert hashes == []
    async with http_client(app, ELSEWHERE) as elsewhere:
        assert (await log_in(elsewhere, storefront, email=shopper.email)).status_code == 200


@counted
async def test_a_repeated_wrong_password_counts_once(
    database: Database, http: httpx.AsyncClient, storefront: str, make_shopper: MakeShopper
) -> None:
    # The JavaScript SDKs resend a refused login several times; one typo is one failure.
    shopper = await make_shopper()
    for _ in range(8):
        response = await log_in(http, storefront, email=shopper.email, password="typo")
        assert response.status_code == 401
    assert (await log_in(http, storefront, email=shopper.email)).status_code == 200
    failed = await audit_events(database, "customer.login_failed")
    assert [event.details["repeated"] for event in failed] == [False] + [True] * 7
    assert {event.details["failures"] for event in failed} == {1}


@counted
@pytest.mark.settings(lockout_account_failures=4)
async def test_an_account_under_attack_admits_only_addresses_without_failures(
    app: FastAPI,
    database: Database,
    http: httpx.AsyncClient,
    storefront: str,
    make_shopper: MakeShopper,
) -> None:
    shopper = await make_shopper()
    attackers = [f"203.0.113.{number}" for number in range(1, 5)]
    for number, address in enumerate(attackers):
        async with http_client(app, address) as attacker:
            await fail_logins(attacker, storefront, shopper.email, 1, tag=f"guess {number}")
    # Under attack: an address that failed is refused, even with the right password ...
    async with http_client(app, attackers[0]) as attacker:
        assert_locked(await log_in(attacker, storefront, email=shopper.email))
    # ... while the shopper, from an address that never failed, logs in.
    async with http_client(app, ELSEWHERE) as shopper_at_home:
        assert (await log_in(shopper_at_home, storefront, email=shopper.email)).status_code == 200
    # A new attacker address gets one guess per window.
    async with http_client(app, "203.0.113.99") as attacker:
        await fail_logins(attacker, storefront, shopper.email, 1, tag="fresh")
        response = await log_in(attacker, storefront, email=shopper.email, password="another")
        assert_locked(response)
    (started,) = await audit_events(database, "customer.lockout_started")
    assert started.details == {"scope": "account", "failures": 4, "window_seconds": WINDOW}
    assert started.subject == shopper.email


@counted
@pytest.mark.settings(lockout_address_failures=3)
async def test_an_address_is_locked_across_accounts(
    app: FastAPI,
    database: Database,
    http: httpx.AsyncClient,
    storefront: str,
    make_shopper: MakeShopper,
) -> None:
    shopper = await make_shopper()
    async with http_client(app, "203.0.113.50") as attacker:
        for _ in range(3):  # unknown emails count like known ones: nothing tells them apart
            await fail_logins(attacker, storefront, new_email(), 1)
        assert_locked(await log_in(attacker, storefront, email=shopper.email))
    assert (await log_in(http, storefront, email=shopper.email)).status_code == 200
    (started,) = await audit_events(database, "customer.lockout_started")
    assert started.details["scope"] == "address"
    assert (started.subject, started.address) == (None, "203.0.113.50")


@counted
@pytest.mark.settings(lockout_pair_failures=2, lockout_window_seconds=2)
async def test_a_lock_ends_when_the_window_passes(
    http: httpx.AsyncClient, storefront: str, make_shopper: MakeShopper
) -> None:
    shopper = await make_shopper()
    await fail_logins(http, storefront, shopper.email, 2)
    refused = await log_in(http, storefront, email=shopper.email)
    assert_locked(refused, window=2)
    await asyncio.sleep(int(refused.headers["retry-after"]) + 0.2)
    assert (await log_in(http, storefront, email=shopper.email)).status_code == 200


@counted
@pytest.mark.settings(lockout_pair_failures=3)
async def test_a_success_clears_the_pairs_failures(
    http: httpx.AsyncClient, storefront: str, make_shopper: MakeShopper
) -> None:
    shopper = await make_shopper()
    for round_ in range(2):
        await fail_logins(http, storefront, shopper.email, 2, tag=f"round {round_}")
        assert (await log_in(http, storefront, email=shopper.email)).status_code == 200


@counted
@pytest.mark.settings(lockout_pair_failures=2)
async def test_failed_logins_and_lockouts_are_audited_without_the_password(
    database: Database, http: httpx.AsyncClient, storefront: str, make_shopper: MakeShopper
) -> None:
    shopper = await make_shopper()
    await fail_logins(http, storefront, shopper.email.upper(), 2, tag="hunter2")
    failed = await audit_events(database, "customer.login_failed")
    assert [event.details["failures"] for event in failed] == [1, 2]
    assert [event.details["account_failures"] for event in failed] == [1, 2]
    for event in failed:
        assert (event.subject, event.address) == (shopper.email, "127.0.0.1")
        assert event.details["repeated"] is False
    (started,) = await audit_events(database, "customer.lockout_started")
    assert started.details == {"scope": "pair", "failures": 2, "window_seconds": WINDOW}
    assert (started.subject, started.address) == (shopper.email, "127.0.0.1")
    written = json.dumps([event.log_fields() for event in [*failed, started]])
    assert "hunter2" not in written


async def test_audited_emails_and_addresses_carry_no_control_characters(
    database: Database, default_store: Store
) -> None:
    # The email of a failed login is as sent; PostgreSQL would refuse a NUL in it outright.
    attempt = LoginAttempt(
        store_id=default_store.id,
        email="ron\x00@example.com\n",
        audited_email="ron\x00@example.com\n",
        host="192.0.2.1\r",
        pair="p",
        account="a",
        address="d",
        guess="g",
    )
    failure = FailedLogin(5, 5, 5, False, ("pair",))
    async with database.sessions() as session:
        record_failed_login(session, attempt, failure, window=WINDOW)
        await session.commit()
    events = [
        *await audit_events(database, "customer.login_failed"),
        *await audit_events(database, "customer.lockout_started"),
    ]
    assert [(e.subject, e.address) for e in events] == [
        ("ron\ufffd@example.com\ufffd", "192.0.2.1\ufffd")
    ] * 2


@counted
@pytest.mark.settings(login_rate_limit_per_address="3/minute")
async def test_logins_are_rate_limited_per_address(
    app: FastAPI, http: httpx.AsyncClient, storefront: str, make_shopper: MakeShopper
) -> None:
    shopper = await make_shopper()  # its own login is the first of three
    for _ in range(2):
        assert (await log_in(http, storefront, email=shopper.email)).status_code == 200
    assert_locked(await log_in(http, storefront, email=shopper.email), window=60)
    async with http_client(app, ELSEWHERE) as elsewhere:
        assert (await log_in(elsewhere, storefront, email=shopper.email)).status_code == 200


@counted
@pytest.mark.settings(login_rate_limit_per_client="2/minute")
async def test_backend_logins_are_rate_limited_per_client(
    app: FastAPI, backend: str, storefront: str, make_shopper: MakeShopper
) -> None:
    shopper = await make_shopper()
    for number in range(2):
        async with http_client(app, f"203.0.113.{number}") as http:
            assert (await log_in(http, backend, email=shopper.email)).status_code == 200
    async with http_client(app, "203.0.113.9") as http:
        assert_locked(await log_in(http, backend, email=shopper.email), window=60)
        # A storefront's client id is anyone's: its logins are limited per address only.
        for _ in range(3):
            assert (await log_in(http, storefront, email=shopper.email)).status_code == 200


@counted
@pytest.mark.settings(lockout_pair_failures=2)
async def test_workers_share_the_lockout_only_through_redis(
    settings: Settings, http: httpx.AsyncClient, storefront: str, make_shopper: MakeShopper
) -> None:
    shopper = await make_shopper()
    await fail_logins(http, storefront, shopper.email, 2)
    async with serving(settings) as other_worker, http_client(other_worker) as other:
        response = await log_in(other, storefront, email=shopper.email)
    if settings.redis_url:
        assert_locked(response)
    else:
        assert response.status_code == 200  # in memory, each worker counts alone


async def test_with_redis_down_logins_are_refused_with_503(
    database_url: str, tmp_path: Path, make_client: MakeClient
) -> None:
    down = make_settings(database_url, tmp_path, redis_url="redis://127.0.0.1:1/1")
    async with serving(down) as app, http_client(app) as http:
        storefront = await implicit_token(http, await make_client(public=True))  # fails open
        email = new_email()
        assert (await sign_up(http, storefront, email=email)).status_code == 201
        response = await log_in(http, storefront, email=email)
    assert response.status_code == 503, response.text
    assert int(response.headers["retry-after"]) >= 1
    (error,) = response.json()["errors"]
    assert (error["status"], error["title"]) == (503, "Service Unavailable")


@pytest.mark.node
@pytest.mark.parametrize("sdk", SDKS)
@pytest.mark.settings(lockout_pair_failures=2)
async def test_the_sdks_resends_of_one_typo_count_once(
    live_server: LiveServer, make_client: MakeClient, database: Database, sdk: str
) -> None:
    node = node_with_sdks()
    storefront = await make_client(name=f"{sdk} storefront", public=True)
    email = new_email()
    async with httpx.AsyncClient(base_url=live_server.url) as http:
        bearer = await implicit_token(http, storefront)
        assert (await sign_up(http, bearer, email=email)).status_code == 201
    environment = {
        "KEYHOUSE_URL": live_server.url,
        "SDK": sdk,
        "PUBLIC_CLIENT_ID": storefront.client.id,
        "CUSTOMER_EMAIL": email,
        "CUSTOMER_PASSWORD": PASSWORD,
        "WRONG_PASSWORD": "correct horse battery stapel",
    }
    report = await run_script(node, "sdk_login.mjs", environment)
    # The SDK sent the typo several times (re-authenticating after each 401) ...
    typo = report["typo"]["login_statuses"]
    assert len(typo) >= 2 and set(typo) == {401}, typo
    # ... and that was one failure: with two failures the pair would be locked now.
    assert report["login"]["login_statuses"] == [200]
    failed = await audit_events(database, "customer.login_failed")
    assert [event.details["failures"] for event in failed] == [1] * len(typo)
    assert await audit_events(database, "customer.lockout_started") == []
