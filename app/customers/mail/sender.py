"""The password reset mail sender: a task in every worker that empties the reset outbox.

For each request claimed (`outbox.py`) it looks the customer up; for an unknown email it
only writes the audit trail. For a customer it issues a one-time token (`tokens.py`,
ending any earlier one), mails the link, and records the send; the token is in the mail and
nowhere else, never in a log or the audit trail. A failed send is tried again later, up to
`MAX_ATTEMPTS` times in about 45 minutes, each time with a new token; a refusal that cannot pass
later (a 5xx for the recipient) ends it at once. Either way the end is audited.

The request path wakes the sender of its own worker, so a mail usually leaves within
milliseconds of the 202; the others find rows by polling every `POLL_SECONDS`.
"""

import asyncio
import contextlib
import logging
import secrets
import uuid
from collections.abc import Coroutine
from email.errors import MessageError
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import AuditEventName, record
from app.customers.customers import Customer, find_by_email
from app.customers.mail.outbox import (
    MAX_ATTEMPTS,
    PasswordResetRequest,
    claim_next,
    finish,
    release,
    retry_later,
)
from app.customers.mail.tokens import ResetTokenHasher, issue_reset_token, purge_reset_tokens
from app.db import Database, is_unavailable
from app.mail import DeliveryError, Mailer
from app.oauth.stores import Store

logger = logging.getLogger("keyhouse.mail")

POLL_SECONDS = 1.0
STOP_PATIENCE_SECONDS = 0.5
PURGE_EVERY_POLLS = 300


def _printable(text: str) -> str:
    return "".join(char if char.isprintable() else " " for char in text)


async def _uncancellable(work: Coroutine[Any, Any, None]) -> None:
    """Runs `work` to its end however often this task is cancelled meanwhile; then, if it
    was, goes on being cancelled."""
    task = asyncio.ensure_future(work)
    cancelled = False
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            cancelled = True
    task.result()  # its own error, if it had one
    if cancelled:
        raise asyncio.CancelledError


def reset_message(
    *, sender: str, customer: Customer, store_name: str, link: str, ttl: int
) -> EmailMessage:
    """The mail: plain text, the link on a line of its own."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = customer.email
    message["Subject"] = f"Set a new password for {_printable(store_name)}"
    message["Date"] = formatdate(usegmt=True)
    # Not `email.utils.make_msgid`, which draws from the `random` module's shared state.
    domain = parseaddr(sender)[1].rpartition("@")[2]
    message["Message-ID"] = f"<{secrets.token_hex(16)}@{domain}>"
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies, please
    minutes = max(1, ttl // 60)
    message.set_content(
        f"Hello {customer.name},\n\n"
        f"Someone, hopefully you, asked to set a new password for your account at "
        f"{store_name}. Follow this link to choose one; it works once, within {minutes} "
        f"minutes:\n\n{link}\n\n"
        "If you did not ask, ignore this mail: your password stays as it is.\n"
    )
    return message


class ResetMailSender:
    """Claims reset requests, issues tokens and mails them, in a task of this worker."""

    def __init__(
        self,
        database: Database,
        mailer: Mailer,
        hasher: ResetTokenHasher,
        *,
        sender: str,
        link_template: str,
        ttl: int,
    ) -> None:
        self._database = database
        self._mailer = mailer
        self._hasher = hasher
        self._sender = sender
        self._link_template = link_template
        self._ttl = ttl
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        """A request was just committed: look for it now rather than at the next poll."""
        self._wakeup.set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._keep_sending(), name="password-reset-mail")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        # aiosmtplib answers a cancellation by sending QUIT and waiting for the reply, which a
        # stuck server never gives: cancelled again, it stops waiting (the row goes back).
        while not task.done():
            task.cancel()
            await asyncio.wait([task], timeout=STOP_PATIENCE_SECONDS)
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def _keep_sending(self) -> None:
        polls = 0
        while True:
            self._wakeup.clear()  # before looking: a wake from now on is for rows not seen yet
            try:
                await self.send_due()
                if polls % PURGE_EVERY_POLLS == 0:
                    await self._purge()
            except Exception as error:  # try again at the next poll, whatever it was
                if not is_unavailable(error):
                    logger.warning("password reset mail: sending failed", exc_info=True)
            polls += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), POLL_SECONDS)

    async def send_due(self) -> int:
        """Handles every request due now; returns how many."""
        handled = 0
        while True:
            async with self._database.sessions() as session:
                request = await claim_next(session)
            if request is None:
                return handled
            try:
                await self._handle(request)
            except asyncio.CancelledError:
                await _uncancellable(self._give_back(request))
                raise
            except Exception as error:  # a bug or an outage: counted as an attempt, not stuck
                logger.warning("password reset mail: request failed", exc_info=True)
                request.attempts += 1
                await self._failed(request, None, DeliveryError(type(error).__name__))
            handled += 1

    async def _handle(self, request: PasswordResetRequest) -> None:
        async with self._database.sessions() as session:
            customer = await find_by_email(session, store_id=request.store_id, email=request.email)
            if customer is None:
                record(
                    session,
                    "customer.password_reset_unknown_email",
                    store_id=request.store_id,
                    subject=_printable(request.email),
                    address=request.address,
                )
                await finish(session, request)
                await session.commit()
                return
            try:
                message = await self._message(session, customer)
            except (ValueError, MessageError):  # an address no mail can carry
                message = None
            await session.commit()  # the token, before the mail that carries it
        request.attempts += 1
        try:
            if message is None:
                raise DeliveryError("unusable address", permanent=True)
            await self._mailer.send(message)
        except DeliveryError as error:
            await self._failed(request, customer.id, error)
            return
        # Sent: recorded even if the worker is stopping, or the next one would send it again.
        await _uncancellable(self._done(request, customer.id, "customer.password_reset_mailed"))

    async def _message(self, session: AsyncSession, customer: Customer) -> EmailMessage:
        token = await issue_reset_token(
            session, hasher=self._hasher, customer=customer, ttl=self._ttl
        )
        store = await session.get(Store, customer.store_id)
        return reset_message(
            sender=self._sender,
            customer=customer,
            store_name=store.name if store else "our shop",
            link=self._link_template.replace("{token}", token),
            ttl=self._ttl,
        )

    async def _failed(
        self, request: PasswordResetRequest, customer_id: uuid.UUID | None, error: DeliveryError
    ) -> None:
        final = error.permanent or request.attempts >= MAX_ATTEMPTS
        logger.warning(
            "password reset mail not sent (attempt %d of %d%s): %s",
            request.attempts,
            MAX_ATTEMPTS,
            ", giving up" if final else "",
            error.description,
        )
        if final:
            await self._done(
                request, customer_id, "customer.password_reset_mail_failed", error=error.description
            )
            return
        async with self._database.sessions() as session:
            await retry_later(session, request)
            await session.commit()

    async def _done(
        self,
        request: PasswordResetRequest,
        customer_id: uuid.UUID | None,
        event: AuditEventName,
        **details: str,
    ) -> None:
        async with self._database.sessions() as session:
            await finish(session, request)
            record(
                session,
                event,
                store_id=request.store_id,
                subject=str(customer_id) if customer_id else _printable(request.email),
                address=request.address,
                attempts=request.attempts,
                **details,
            )
            await session.commit()

    async def _give_back(self, request: PasswordResetRequest) -> None:
        with contextlib.suppress(Exception):  # stopping: at worst the lease runs out
            async with self._database.sessions() as session:
                await release(session, request)
                await session.commit()

    async def _purge(self) -> None:
        async with self._database.sessions() as session:
            await purge_reset_tokens(session)
            await session.commit()
