"""Password reset by one-time token: the request, the mail a real SMTP server receives, and the
confirmation, with each way a token can be refused (issue 13, part 1)."""

import hmac
import statistics
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event, func, select, update

from app.customers.mail.outbox import MailRequest
from app.customers.mail.tokens import MailToken
from app.runtime.db import Database, utcnow
from app.runtime.server_secret import load_server_keys
from app.runtime.settings import Settings

from ...conftest import MakeClient, http_client, make_settings, serving
from ...smtp import MAIL_FROM, MailServer, link_in, token_in, with_mail
from ..conftest import MakeShopper, MakeStore
from ..shoppers import PASSWORD, headers, implicit_token, log_in
from .resets import (
    NEW_PASSWORD,
    ask_for_reset,
    audit_events,
    audited,
    confirm_reset,
    mails,
)


@pytest.fixture
def settings(settings: Settings, mail_server: MailServer) -> Settings:
    return with_mail(settings, mail_server)


def reset_key(settings: Settings) -> bytes:
    return load_server_keys(settings).password_reset_token_hmac


def error_of(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    (error,) = response.json()["errors"]
    assert error["status"] == status
    detail: str = error["detail"]
    return detail


async def test_a_shopper_resets_a_forgotten_password_by_mail(
    http: httpx.AsyncClient,
    storefront: str,
    make_shopper: MakeShopper,
    mail_server: MailServer,
    database: Database,
) -> None:
    shopper = await make_shopper(email="Ron@Example.com")
    response = await ask_for_reset(http, storefront, "ron@example.COM")
    assert response.status_code == 202, response.text
    data = response.json()["data"]
    assert data["type"] == "password_reset_request" and data["expires_in"] == 900

    (mail,) = await mails(mail_server, 1)
    assert mail["To"] == "Ron@Example.com" and mail["From"] == MAIL_FROM
    assert mail["Subject"] == "Set a new password for Default store"
    assert mail["Auto-Submitted"] == "auto-generated"
    assert link_in(mail).startswith("https://shop.example/reset#token=")
    token = token_in(mail)
    assert len(token) >= 43  # 32 random bytes, base64url

    confirmed = await confirm_reset(http, storefront, token)
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["data"]["id"] == shopper.id
    assert (await log_in(http, storefront, email=shopper.email)).status_code == 401
    new_login = await log_in(http, storefront, email=shopper.email, password=NEW_PASSWORD)
    assert new_login.status_code == 200
    # Every customer token from before the reset is refused.
    before = await http.get("/v2/orders", headers=headers(storefront, shopper.token))
    assert before.status_code == 401
    after = await http.get(
        "/v2/orders", headers=headers(storefront, new_login.json()["data"]["token"])
    )
    assert after.status_code == 200

    (mailed,) = await audited(database, "customer.password_reset_mailed")
    assert mailed.subject == shopper.id and mailed.address == "127.0.0.1"
    assert mailed.details == {"attempts": 1}
    (reset,) = await audit_events(database, "customer.password_reset")
    assert reset.subject == shopper.id


async def test_the_token_is_stored_only_as_a_keyed_hash(
    http: httpx.AsyncClient,
    storefront: str,
    make_shopper: MakeShopper,
    mail_server: MailServer,
    database: Database,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    shopper = await make_shopper()
    await ask_for_reset(http, storefront, shopper.email)
    token = token_in((await mails(mail_server, 1))[0])
    await audited(database, "customer.password_reset_mailed")
    async with database.sessions() as session:
        (row,) = await session.scalars(select(MailToken))  # one row, no raw token
    assert row.token_hash == hmac.new(reset_key(settings), token.encode(), "sha256").hexdigest()
    assert token not in row.token_hash
    assert (row.expires_at - row.created_at) == timedelta(seconds=900)
    assert token not in caplog.text
    for mailed in await audit_events(database, "customer.password_reset_mailed"):
        assert token not in str(mailed.details) and token not in str(mailed.subject)


async def test_an_unknown_email_gets_the_same_answer_and_no_mail(
    http: httpx.AsyncClient,
    storefront: str,
    make_shopper: MakeShopper,
    mail_server: MailServer,
    database: Database,
) -> None:
    shopper = await make_shopper()
    known = await ask_for_reset(http, storefront, shopper.email)
    unknown = await ask_for_reset(http, storefront, "nobody@example.com")
    assert (known.status_code, known.content) == (unknown.status_code, unknown.content)
    (ignored,) = await audited(database, "customer.password_reset_unknown_email")
    assert ignored.subject == "nobody@example.com"
    await audited(database, "customer.password_reset_mailed")
    assert [mail["To"] for mail in mail_server.messages] == [shopper.email]
    async with database.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(MailRequest)) == 0


@pytest.mark.settings(
    login_rate_limit_per_address="1000/minute", password_reset_rate_limit_per_email="1000/hour"
)
async def test_a_known_email_takes_the_time_an_unknown_one_takes(
    app: object, http: httpx.AsyncClient, storefront: str, make_shopper: MakeShopper
) -> None:
    """The request path does the same work for both: one outbox row. (The sender is stopped,
    so that its SMTP work for the known email does not share the event loop with the timing.)"""
    await app.state.shopper_mail.stop()  # type: ignore[attr-defined]
    shopper = await make_shopper()

    async def duration(email: str) -> float:
        started = time.perf_counter()
        response = await ask_for_reset(http, storefront, email)
        elapsed = time.perf_counter() - started
        assert response.status_code == 202
        return elapsed

    for email in (shopper.email, "nobody@example.com"):  # warm up
        await duration(email)
    known: list[float] = []
    unknown: list[float] = []
    for attempt in range(15):
        emails = [(known, shopper.email), (unknown, f"nobody{attempt}@example.com")]
        for times, email in emails if attempt % 2 else reversed(emails):
            times.append(await duration(email))
    ratio = statistics.median(unknown) / statistics.median(known)
    assert 0.5 < ratio < 2.0, (known, unknown)  # as for logins: the machine is shared


async def test_a_token_works_once(
    http: httpx.AsyncClient, storefront: str, make_shopper: MakeShopper, mail_server: MailServer
) -> None:
    shopper = await make_shopper()
    await ask_for_reset(http, storefront, shopper.email)
    token = token_in((await mails(mail_server, 1))[0])
    assert (await confirm_reset(http, storefront, token)).status_code == 200
    again = await confirm_reset(http, storefront, token, password="yet another passphrase")
    assert error_of(again, 409) == "This password reset token has been used already."
    new_login = await log_in(http, storefront, email=shopper.email, password=NEW_PASSWORD)
    assert new_login.status_code == 200


async def test_asking_again_ends_the_earlier_link(
    http: httpx.AsyncClient, storefront: str, make_shopper: MakeShopper, mail_server: MailServer
) -> None:
    shopper = await make_shopper()
    await ask_for_reset(http, storefront, shopper.email)
    first = token_in((await mails(mail_server, 1))[0])
    await ask_for_reset(http, storefront, shopper.email)
    second = token_in((await mails(mail_server, 2))[1])
    assert first != second
    detail = error_of(await confirm_reset(http, storefront, first), 409)
    assert detail == "A newer password reset token was sent since this one: use the newest."
    assert (await confirm_reset(http, storefront, second)).status_code == 200


async def test_an_expired_token_is_gone(
    http: httpx.AsyncClient,
    storefront: str,
    make_shopper: MakeShopper,
    mail_server: MailServer,
    database: Database,
) -> None:
    shopper = await make_shopper()
    await ask_for_reset(http, storefront, shopper.email)
    token = token_in((await mails(mail_server, 1))[0])
    async with database.sessions() as session:
        await session.execute(update(MailToken).values(expires_at=utcnow() - timedelta(seconds=1)))
        await session.commit()
    detail = error_of(await confirm_reset(http, storefront, token), 410)
    assert detail == "This password reset token has expired: ask for a new link."
    assert (await log_in(http, storefront, email=shopper.email)).status_code == 200


@pytest.mark.parametrize(
    "token",
    ["forged-" + "x" * 40, "A" * 43, "\u00e9" * 10, "0"],
    ids=["forged", "b64", "utf8", "1"],
)
async def test_a_forged_token_is_not_valid(
    http: httpx.AsyncClient, storefront: str, database: Database, token: str
) -> None:
    detail = error_of(await confirm_reset(http, storefront, token), 404)
    assert detail == "This password reset token is not valid."
    (refused,) = await audit_events(database, "customer.password_reset_refused")
    assert refused.details == {"reason": "unknown"} and refused.address == "127.0.0.1"


async def test_another_stores_token_is_not_found(
    http: httpx.AsyncClient,
    storefront: str,
    make_shopper: MakeShopper,
    make_store: MakeStore,
    make_client: MakeClient,
    mail_server: MailServer,
) -> None:
    shopper = await make_shopper()
    await ask_for_reset(http, storefront, shopper.email)
    token = token_in((await mails(mail_server, 1))[0])
    other = await make_store("Other shop")
    other_front = await implicit_token(
        http, await make_client(name="other front", public=True, store_id=other.id)
    )
    detail = error_of(await confirm_reset(http, other_front, token), 404)
    assert detail == "This password reset token belongs to another store."
    assert (await confirm_reset(http, storefront, token)).status_code == 200  # still unused


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"type": "password_reset", "token": "t", "password": "short"}, "data.password"),
        ({"type": "password_reset", "password": NEW_PASSWORD}, "data.token"),
        ({"type": "reset", "token": "t", "password": NEW_PASSWORD}, "data.type"),
    ],
)
async def test_a_malformed_confirmation_is_a_400(
    http: httpx.AsyncClient, storefront: str, body: dict[str, str], problem: str
) -> None:
    response = await http.post(
        "/v2/customers/password-reset/confirm", json={"data": body}, headers=headers(storefront)
    )
    assert problem in error_of(response, 400)


@pytest.mark.parametrize("email", ["not an email", "", "a" * 250 + "@example.com"])
async def test_a_malformed_email_is_a_400(
    http: httpx.AsyncClient, storefront: str, email: str, mail_server: MailServer
) -> None:
    assert "data.email" in error_of(await ask_for_reset(http, storefront, email), 400)
    assert mail_server.messages == []


@pytest.mark.settings(login_rate_limit_per_address="3/minute")
async def test_confirmations_are_rate_limited_like_logins(
    http: httpx.AsyncClient, storefront: str
) -> None:
    for _ in range(3):
        assert (await confirm_reset(http, storefront, "guess")).status_code == 404
    limited = await confirm_reset(http, storefront, "guess")
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) >= 1


@pytest.mark.settings(password_reset_rate_limit_per_email="2/hour")
async def test_requests_for_one_email_are_limited(
    http: httpx.AsyncClient, storefront: str, mail_server: MailServer
) -> None:
    """Known or not: the limit tells nothing, and nobody can flood a shopper's inbox."""
    for _ in range(2):
        assert (await ask_for_reset(http, storefront, "nobody@example.com")).status_code == 202
    limited = await ask_for_reset(http, storefront, "NOBODY@example.com")
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    assert (await ask_for_reset(http, storefront, "other@example.com")).status_code == 202


async def test_a_reset_lifts_the_lockout_of_its_email(
    http: httpx.AsyncClient, storefront: str, make_shopper: MakeShopper, mail_server: MailServer
) -> None:
    shopper = await make_shopper()
    for guess in range(5):  # different guesses: a repeated one counts once
        await log_in(http, storefront, email=shopper.email, password=f"wrong password {guess}")
    assert (await log_in(http, storefront, email=shopper.email)).status_code == 429
    await ask_for_reset(http, storefront, shopper.email)
    token = token_in((await mails(mail_server, 1))[0])
    assert (await confirm_reset(http, storefront, token)).status_code == 200
    login = await log_in(http, storefront, email=shopper.email, password=NEW_PASSWORD)
    assert login.status_code == 200, login.text


async def test_without_smtp_a_reset_request_is_a_clear_404(
    database_url: str, tmp_path: Path, make_client: MakeClient
) -> None:
    settings = make_settings(database_url, tmp_path)
    async with serving(settings) as application, http_client(application) as http:
        front = await implicit_token(http, await make_client(public=True))
        response = await ask_for_reset(http, front, "ron@example.com")
    detail = error_of(response, 404)  # not offered here: no 5xx, nothing to wait for
    assert "no mail delivery configured (KEYHOUSE_SMTP_URL)" in detail
    assert "retry-after" not in response.headers


async def test_the_reset_mail_comes_from_the_shoppers_store(
    http: httpx.AsyncClient,
    make_store: MakeStore,
    make_client: MakeClient,
    mail_server: MailServer,
) -> None:
    other = await make_store("Other shop")
    front = await implicit_token(
        http, await make_client(name="other", public=True, store_id=other.id)
    )
    email = f"{uuid.uuid4().hex}@example.com"
    body = {"data": {"type": "customer", "name": "Ann", "email": email, "password": PASSWORD}}
    assert (await http.post("/v2/customers", json=body, headers=headers(front))).status_code == 201
    await ask_for_reset(http, front, email)
    (mail,) = await mails(mail_server, 1)
    assert mail["Subject"] == "Set a new password for Other shop"
    # The name is the sign-up's, anyone's to choose: never in a mail (issue 19, item 8).
    assert "Ann" not in mail.get_content()


async def test_the_schema_documents_each_refusal_and_the_202(http: httpx.AsyncClient) -> None:
    schema = (await http.get("/openapi.json")).json()
    confirm = schema["paths"]["/v2/customers/password-reset/confirm"]["post"]
    documented = {
        (status, example["value"]["errors"][0]["detail"])
        for status, response in confirm["responses"].items()
        if status in {"400", "404", "409", "410"}
        for example in response["content"]["application/json"].get("examples", {}).values()
    }
    assert documented == {
        ("404", "This password reset token is not valid."),
        ("404", "This password reset token belongs to another store."),
        ("409", "This password reset token has been used already."),
        ("409", "A newer password reset token was sent since this one: use the newest."),
        (
            "409",
            "The account's password, email or sign-in changed since this password reset token "
            "was sent: ask for a new link.",
        ),
        ("410", "This password reset token has expired: ask for a new link."),
    }
    assert "customer.password_reset_refused" in confirm["description"]
    request = schema["paths"]["/v2/customers/password-reset"]["post"]
    assert {"202", "404", "429"} <= set(request["responses"])
    assert "KEYHOUSE_SMTP_URL" in request["responses"]["404"]["description"]
    assert "customer.password_reset_mailed" in request["description"]


async def test_a_known_email_costs_the_same_statements_as_an_unknown_one(
    app: FastAPI, http: httpx.AsyncClient, storefront: str, make_shopper: MakeShopper
) -> None:
    """The request path never asks whether the email is a customer's: it sends the database
    the very same statements either way (the sender, stopped here, looks it up later)."""
    await app.state.shopper_mail.stop()
    await app.state.revocations.stop()  # its poll (and the key ring's) would be noted too
    shopper = await make_shopper()
    engine = app.state.database.engine.sync_engine

    async def statements(email: str) -> list[str]:
        sent: list[str] = []

        def note(_connection: Any, _cursor: Any, statement: str, *_: Any) -> None:
            sent.append(statement)

        event.listen(engine, "before_cursor_execute", note)
        try:
            assert (await ask_for_reset(http, storefront, email)).status_code == 202
        finally:
            event.remove(engine, "before_cursor_execute", note)
        return sent

    known = await statements(shopper.email)
    assert known == await statements("nobody@example.com")
    assert any("INSERT INTO mail_request" in statement for statement in known)
    assert not any("FROM customer" in statement for statement in known)


async def test_a_deleted_customers_token_goes_with_them(
    http: httpx.AsyncClient,
    storefront: str,
    backend: str,
    make_shopper: MakeShopper,
    mail_server: MailServer,
) -> None:
    shopper = await make_shopper()
    await ask_for_reset(http, storefront, shopper.email)
    token = token_in((await mails(mail_server, 1))[0])
    deleted = await http.delete(f"/v2/customers/{shopper.id}", headers=headers(backend))
    assert deleted.status_code == 204
    assert error_of(await confirm_reset(http, storefront, token), 404)  # gone with its customer
