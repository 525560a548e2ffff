"""Shopper accounts attacked as issue 19 found them: each test is one way a stolen customer
token, a login in flight or a stale link tried to outlive the owner's change of credentials, or
a stranger's words reached the owner in the shop's own mail. Each fails on the code before the
credential epoch (app/customers/credentials.py)."""

import asyncio
import json
import logging
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.observability.audit import AuditEvent, list_events
from app.runtime.db import Database
from app.runtime.settings import Settings

from ..smtp import MailServer, token_in, with_mail
from .conftest import MakeShopper
from .mail.resets import NEW_PASSWORD, ask_for_reset, confirm_reset, mails
from .shoppers import CUSTOMERS_URL, PASSWORD, Shopper, headers, log_in, new_email, sign_up

# Logins that checked the old password when the change commits: fewer than the lockout counts
# against one (account, address) before any of them succeeds (5), the change included.
IN_FLIGHT = 3


@pytest.fixture
def settings(settings: Settings, mail_server: MailServer) -> Settings:
    return with_mail(settings, mail_server)


def own_url(shopper: Shopper) -> str:
    return f"{CUSTOMERS_URL}/{shopper.id}"


async def can_read_self(http: httpx.AsyncClient, bearer: str, shopper: Shopper, token: str) -> bool:
    response = await http.get(own_url(shopper), headers=headers(bearer, token))
    assert response.status_code in (200, 401), response.text
    return response.status_code == 200


# --- 1. the profile route with a stolen customer token ------------------------------------


@pytest.mark.parametrize(
    "change",
    [{"password": "the thiefs own password"}, {"email": "thief@example.net"}],
    ids=["password", "email"],
)
async def test_a_stolen_token_cannot_change_credentials_through_the_profile(
    http: httpx.AsyncClient, storefront: str, make_shopper: MakeShopper, change: dict[str, str]
) -> None:
    shopper = await make_shopper()
    stolen = headers(storefront, shopper.token)
    update = {"data": {"type": "customer", **change}}
    refused = await http.put(own_url(shopper), json=update, headers=stolen)
    assert refused.status_code == 403, refused.text
    assert "/password" in refused.json()["errors"][0]["detail"]
    # Nothing changed: the owner's password and email still log in.
    assert (await log_in(http, storefront, email=shopper.email)).status_code == 200


@pytest.mark.parametrize(
    "change",
    [{"password": "set by the back office"}, {"email": "moved@example.net"}],
    ids=["password", "email"],
)
async def test_a_backends_change_of_credentials_ends_every_session_and_link(
    http: httpx.AsyncClient,
    storefront: str,
    backend: str,
    make_shopper: MakeShopper,
    mail_server: MailServer,
    change: dict[str, str],
) -> None:
    shopper = await make_shopper()
    await ask_for_reset(http, storefront, shopper.email)
    link = token_in((await mails(mail_server, 1))[0])
    update = {"data": {"type": "customer", **change}}
    assert (await http.put(own_url(shopper), json=update, headers=headers(backend))).is_success
    assert not await can_read_self(http, storefront, shopper, shopper.token)
    refused = await confirm_reset(http, storefront, link)
    assert refused.status_code == 409
    assert "changed since" in refused.json()["errors"][0]["detail"]


# --- 3. logins in flight across a change --------------------------------------------------


class HeldLogins:
    """Holds password checks of the old password, once done, until released: logins that read
    the old hash before a change commits, and sign their token after it."""

    def __init__(self, app: FastAPI, old_password: str) -> None:
        self.checked = 0
        self.holding = True
        self.release = asyncio.Event()
        hasher = app.state.password_hasher
        check = hasher.check

        async def held_check(password: str, stored_hash: str | None) -> Any:
            result = await check(password, stored_hash)
            if self.holding and password == old_password:
                self.checked += 1
                await self.release.wait()
            return result

        hasher.check = held_check

    async def all_checked(self, count: int) -> None:
        async with asyncio.timeout(30):
            while self.checked < count:  # noqa: ASYNC110 (the checks run in threads)
                await asyncio.sleep(0.01)
        self.holding = False  # the change's own check of the current password goes through


async def change_password(
    how: str, http: httpx.AsyncClient, storefront: str, backend: str, shopper: Shopper
) -> None:
    if how == "backend":
        update = {"data": {"type": "customer", "password": NEW_PASSWORD}}
        response = await http.put(own_url(shopper), json=update, headers=headers(backend))
    else:
        body = {"type": "password_change", "current_password": PASSWORD, "password": NEW_PASSWORD}
        response = await http.put(
            f"{own_url(shopper)}/password",
            json={"data": body},
            headers=headers(storefront, shopper.token),
        )
    assert response.is_success, response.text


@pytest.mark.parametrize("how", ["own_route", "backend", "reset"])
async def test_a_login_racing_a_password_change_cannot_outlive_it(
    app: FastAPI,
    http: httpx.AsyncClient,
    storefront: str,
    backend: str,
    make_shopper: MakeShopper,
    mail_server: MailServer,
    how: str,
) -> None:
    shopper = await make_shopper()
    reset_token = None
    if how == "reset":
        await ask_for_reset(http, storefront, shopper.email)
        reset_token = token_in((await mails(mail_server, 1))[0])
    held = HeldLogins(app, PASSWORD)
    logins = [
        asyncio.create_task(log_in(http, storefront, email=shopper.email)) for _ in range(IN_FLIGHT)
    ]
    await held.all_checked(IN_FLIGHT)
    if reset_token is not None:
        assert (await confirm_reset(http, storefront, reset_token)).status_code == 200
    else:
        await change_password(how, http, storefront, backend, shopper)
    # Past the second of the change: a cutoff by `iat` would now let these tokens through.
    await asyncio.sleep(1.1)
    held.release.set()
    tokens = [(await login).json()["data"]["token"] for login in logins]
    for token in tokens:
        assert not await can_read_self(http, storefront, shopper, token)


# --- 4. links mailed before a change (and above: a backend's change) ------------------------


async def test_a_reset_link_ends_with_a_password_change(
    http: httpx.AsyncClient, storefront: str, make_shopper: MakeShopper, mail_server: MailServer
) -> None:
    shopper = await make_shopper()
    await ask_for_reset(http, storefront, shopper.email)
    link = token_in((await mails(mail_server, 1))[0])
    body = {"type": "password_change", "current_password": PASSWORD, "password": "owners new one"}
    changed = await http.put(
        f"{own_url(shopper)}/password",
        json={"data": body},
        headers=headers(storefront, shopper.token),
    )
    assert changed.status_code == 204
    refused = await confirm_reset(http, storefront, link)
    assert refused.status_code == 409
    assert "changed since" in refused.json()["errors"][0]["detail"]
    assert (
        await log_in(http, storefront, email=shopper.email, password="owners new one")
    ).is_success


# --- 8. a stranger's words in the shop's mail ----------------------------------------------

PHISHING = "SECURITY NOTICE\nConfirm your card at https://evil.example/card"


async def test_the_shops_mail_carries_no_text_a_stranger_chose(
    http: httpx.AsyncClient, storefront: str, mail_server: MailServer
) -> None:
    victim = new_email()
    name = PHISHING.replace("\n", " ")
    assert (await sign_up(http, storefront, email=victim, name=name)).status_code == 201
    await ask_for_reset(http, storefront, victim)
    (mail,) = await mails(mail_server, 1)
    text = mail.get_content()
    assert "SECURITY" not in text and "evil.example" not in text
    assert "SECURITY" not in str(mail["Subject"])


# --- a password typed into the email field ------------------------------------------------


async def test_a_login_email_that_is_no_email_is_never_written_down(
    http: httpx.AsyncClient,
    storefront: str,
    database: Database,
    caplog: pytest.LogCaptureFixture,
) -> None:
    typed = "my-secret-passphrase-42"
    with caplog.at_level(logging.INFO):
        for _ in range(2):
            assert (await log_in(http, storefront, email=typed)).status_code == 401
    async with database.sessions() as session:
        failed: list[AuditEvent] = await list_events(session, event_name="customer.login_failed")
    subjects = {event.subject for event in failed}
    assert len(subjects) == 1  # the same keyed hash both times, so repeats still correlate
    (subject,) = subjects
    assert subject is not None and subject.startswith("hash:")
    written = json.dumps([event.log_fields() for event in failed]) + caplog.text
    assert "secret-passphrase" not in written
    # A real email address is still written as typed.
    email = new_email()
    await log_in(http, storefront, email=email)
    async with database.sessions() as session:
        events = await list_events(session, event_name="customer.login_failed")
    assert email in {event.subject for event in events}
