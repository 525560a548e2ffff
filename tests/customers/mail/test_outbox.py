"""The reset outbox and its sender: nothing acknowledged is lost, nothing is sent twice, and a
mail server that fails gets the mail later or has the failure audited."""

import asyncio
import threading
import time
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.customers.mail import sender as sender_module
from app.customers.mail.outbox import LEASE, MailRequest, add_request, claim_next
from app.customers.mail.sender import PUSHED_POLL_SECONDS
from app.oauth.stores import Store
from app.runtime.db import Database, utcnow
from app.runtime.settings import Settings

from ...conftest import MakeClient, http_client, serving
from ...smtp import MailServer, token_in, with_mail
from ..shoppers import implicit_token, new_shopper
from .resets import ask_for_reset, audited, confirm_reset, eventually, mails


@pytest.fixture
def settings(settings: Settings, mail_server: MailServer) -> Settings:
    return with_mail(settings, mail_server)


async def outbox(database: Database) -> list[MailRequest]:
    async with database.sessions() as session:
        return list(await session.scalars(select(MailRequest)))


@pytest.fixture
def second_mail_server(smtp_certificate: tuple[Path, Path]) -> MailServer:
    server = MailServer(smtp_certificate)
    server.start()
    yield server  # type: ignore[misc]
    server.stop()


async def test_a_request_survives_a_stop_in_the_middle_of_its_send(
    settings: Settings,
    mail_server: MailServer,
    second_mail_server: MailServer,
    make_client: MakeClient,
    database: Database,
) -> None:
    """The first process stops while its mail server holds the message unanswered: the
    request goes back to the outbox, and the next process sends a link that works."""
    mail_server.handler.hold = threading.Event()
    async with serving(settings) as first, http_client(first) as http:
        front = await implicit_token(http, await make_client(public=True))
        shopper = await new_shopper(http, front)
        assert (await ask_for_reset(http, front, shopper.email)).status_code == 202

        async def claimed() -> bool:
            return bool((await outbox(database))[0].claim_id)

        await eventually(claimed)
    (request,) = await outbox(database)
    assert (request.claim_id, request.claimed_until) == (None, None)  # given back at the stop

    second_settings = with_mail(settings, second_mail_server)
    async with serving(second_settings) as second, http_client(second) as http:
        (mail,) = await mails(second_mail_server, 1)
        assert (await confirm_reset(http, front, token_in(mail))).status_code == 200
    assert await outbox(database) == []


async def test_a_stop_while_a_claim_is_being_read_back_gives_the_row_back(
    app: object,
    database: Database,
    make_client: MakeClient,
    mail_server: MailServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The worker stops after its claim is committed but before the claimed row is back in
    its hands (re-read, session closed): the row goes back at once, not at the lease's end.
    Under load this once failed the test above (the claim kept, the row leased for a minute)."""
    sender = app.state.shopper_mail.sender  # type: ignore[attr-defined]
    claimed = asyncio.Event()

    async def slow_claim(session: AsyncSession) -> MailRequest | None:
        request = await claim_next(session)
        if request is not None:
            claimed.set()
            await asyncio.sleep(0.2)  # the read back and the session's close, stretched
        return request

    monkeypatch.setattr(sender_module, "claim_next", slow_claim)
    mail_server.handler.hold = threading.Event()  # nothing is sent: only the claim matters
    async with http_client(app) as http:  # type: ignore[arg-type]
        front = await implicit_token(http, await make_client(public=True))
        shopper = await new_shopper(http, front)
        assert (await ask_for_reset(http, front, shopper.email)).status_code == 202
    await asyncio.wait_for(claimed.wait(), timeout=10)
    await sender.stop()
    (request,) = await outbox(database)
    assert (request.claim_id, request.claimed_until) == (None, None)


async def test_a_crashed_workers_lease_runs_out(
    app: object, database: Database, make_client: MakeClient, mail_server: MailServer
) -> None:
    """A worker that died mid-send never gives its row back: once its lease has run out,
    another worker claims it."""
    sender = app.state.shopper_mail.sender  # type: ignore[attr-defined]
    await sender.stop()
    async with http_client(app) as http:  # type: ignore[arg-type]
        front = await implicit_token(http, await make_client(public=True))
        shopper = await new_shopper(http, front)
        await ask_for_reset(http, front, shopper.email)
    async with database.sessions() as session:
        crashed = await claim_next(session)  # the worker that will never finish
        assert crashed is not None
        assert await claim_next(session) is None  # leased: nobody else may take it
        await session.execute(
            update(MailRequest).values(claimed_until=utcnow() - timedelta(seconds=1))
        )
        await session.commit()
    assert await sender.send_due() == 1
    (mail,) = await mails(mail_server, 1)
    assert mail["To"] == shopper.email
    assert timedelta(seconds=60) <= LEASE


async def test_two_workers_send_each_mail_once(
    settings: Settings, mail_server: MailServer, make_client: MakeClient, database: Database
) -> None:
    """Two app instances over one database (two workers, or two replicas): every request is
    claimed by exactly one of them."""
    async with (
        serving(settings) as first,
        serving(settings) as second,
        http_client(first) as one,
        http_client(second, "127.0.0.2") as two,
    ):
        front = await implicit_token(one, await make_client(public=True))
        shoppers = [await new_shopper(one, front) for _ in range(8)]
        answers = await asyncio.gather(
            *(
                ask_for_reset(one if n % 2 else two, front, shopper.email)
                for n, shopper in enumerate(shoppers)
            )
        )
        assert {answer.status_code for answer in answers} == {202}
        received = await mails(mail_server, len(shoppers))
        # Both look again for anything left, at once: nothing is.
        again = await asyncio.gather(
            first.state.shopper_mail.sender.send_due(),
            second.state.shopper_mail.sender.send_due(),
        )
        assert again == [0, 0]
        # Every send recorded (the row deleted with its audit event) before the workers stop.
        assert len(await audited(database, "customer.password_reset_mailed", 8)) == 8
    assert sorted(mail["To"] for mail in mail_server.messages) == sorted(
        shopper.email for shopper in shoppers
    )
    assert len(received) == len(shoppers)
    assert await outbox(database) == []


async def test_a_failed_send_is_tried_again_later(
    app: object,
    http: httpx.AsyncClient,
    storefront: str,
    mail_server: MailServer,
    database: Database,
) -> None:
    shopper = await new_shopper(http, storefront)
    mail_server.handler.refuse_with = "451 Try again later"
    await ask_for_reset(http, storefront, shopper.email)

    async def retried() -> bool:
        rows = await outbox(database)
        return bool(rows) and rows[0].attempts == 1

    await eventually(retried)
    (request,) = await outbox(database)
    assert request.claim_id is None
    wait = request.next_attempt_at - utcnow()
    assert timedelta(seconds=3) < wait <= timedelta(seconds=5)
    assert mail_server.messages == []

    mail_server.handler.refuse_with = None
    async with database.sessions() as session:
        await session.execute(update(MailRequest).values(next_attempt_at=utcnow()))
        await session.commit()
    app.state.shopper_mail.sender.wake()  # type: ignore[attr-defined]
    (mail,) = await mails(mail_server, 1)
    (mailed,) = await audited(database, "customer.password_reset_mailed")
    assert mailed.details == {"attempts": 2}
    assert (await confirm_reset(http, storefront, token_in(mail))).status_code == 200


async def test_a_refused_recipient_ends_the_request_with_an_audit_event(
    http: httpx.AsyncClient, storefront: str, mail_server: MailServer, database: Database
) -> None:
    shopper = await new_shopper(http, storefront)
    mail_server.handler.refuse_with = "550 No such mailbox"
    await ask_for_reset(http, storefront, shopper.email)
    (failed,) = await audited(database, "customer.password_reset_mail_failed")
    assert failed.subject == shopper.id
    assert failed.details == {"attempts": 1, "error": "SMTPRecipientsRefused 550"}
    assert await outbox(database) == []


@pytest.mark.timing
async def test_a_request_queued_by_another_worker_is_sent_at_once_over_the_push(
    app: FastAPI,
    http: httpx.AsyncClient,
    storefront: str,
    mail_server: MailServer,
    database: Database,
    default_store: Store,
) -> None:
    """The request is written as another worker writes it, without waking this one: only the
    announcement does, long before the sender's next look (`PUSHED_POLL_SECONDS`)."""
    feed = app.state.change_feed
    if feed is None:
        pytest.skip("no push on SQLite")
    shopper = await new_shopper(http, storefront)

    async def connected() -> bool:
        return bool(feed.connected)

    await eventually(connected)
    await asyncio.sleep(0.2)  # the sender has looked once more, after connecting
    queued_at = time.monotonic()
    async with database.sessions() as session:
        add_request(
            session,
            purpose="password_reset",
            store_id=default_store.id,
            email=shopper.email,
            address="127.0.0.1",
        )
        await session.commit()
    (mail,) = await mails(mail_server, 1)
    assert mail["To"] == shopper.email
    assert time.monotonic() - queued_at < PUSHED_POLL_SECONDS / 3
