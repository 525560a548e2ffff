"""The mail sender: a task in every worker that empties the outbox of mails to shoppers.

For each request claimed (`outbox.py`) it looks the customer up and decides, by the request's
purpose, what goes out (`drafts.py`): for an unknown email, or a request that no longer applies,
nothing but the audit trail. Otherwise it issues a one-time token (`tokens.py`, ending any
earlier one of that purpose), mails the link, and records the send; the token is in the mail and
nowhere else, never in a log or the audit trail. A failed send is tried again later, up to
`MAX_ATTEMPTS` times in about 45 minutes, each time with a new token; a refusal that cannot pass
later (a 5xx for the recipient) ends it at once. Either way the end is audited.

The request path wakes the sender of its own worker, so a mail usually leaves within
milliseconds of the 202; a new request is announced to the other workers too
(app/runtime/changes.py), and they look for rows every `POLL_SECONDS`, or, while announcements
reach them, every `PUSHED_POLL_SECONDS`: for a lost announcement, a retry come due or a lease
run out, none of which a shopper waits on by the second.
"""

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable, Coroutine
from typing import Any

from app.customers.mail.drafts import Drafts, Skipped
from app.customers.mail.outbox import (
    MAX_ATTEMPTS,
    MailRequest,
    claim_next,
    finish,
    release,
    retry_later,
)
from app.customers.mail.tokens import purge_mail_tokens
from app.observability.audit import AuditEventName, record
from app.runtime.db import Database, is_unavailable
from app.runtime.mail import DeliveryError, Mailer

logger = logging.getLogger("keyhouse.mail")

POLL_SECONDS = 1.0
PUSHED_POLL_SECONDS = 30.0
STOP_PATIENCE_SECONDS = 0.5
PURGE_EVERY_POLLS = 300


def printable(text: str) -> str:
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


class MailSender:
    """Claims mail requests, issues tokens and mails them, in a task of this worker."""

    def __init__(self, database: Database, mailer: Mailer, drafts: Drafts) -> None:
        self._database = database
        self._mailer = mailer
        self._drafts = drafts
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._pushed: Callable[[], bool] = lambda: False

    def pushed_by(self, connected: Callable[[], bool]) -> None:
        """While `connected()`, new requests are announced (`wake`): look every
        `PUSHED_POLL_SECONDS` only."""
        self._pushed = connected

    def wake(self) -> None:
        """A request was just committed: look for it now rather than at the next poll."""
        self._wakeup.set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._keep_sending(), name="shopper-mail")

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
                    logger.warning("shopper mail: sending failed", exc_info=True)
            polls += 1
            interval = PUSHED_POLL_SECONDS if self._pushed() else POLL_SECONDS
            # Not `asyncio.wait_for`, which on Python 3.11 swallows a cancellation that arrives
            # as a wake ends the wait (the stop cancels again, but need not).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval):
                    await self._wakeup.wait()

    async def send_due(self) -> int:
        """Handles every request due now; returns how many."""
        handled = 0
        while True:
            claimed: list[MailRequest] = []
            try:
                # To its end even if the worker stops meanwhile: a claim committed but cut off
                # before it reached `claimed` (re-reading the row, closing the session) would
                # leave the row to wait out its lease instead of going back at once.
                await _uncancellable(self._claim_into(claimed))
            except asyncio.CancelledError:
                if claimed:
                    await _uncancellable(self._give_back(claimed[0]))
                raise
            if not claimed:
                return handled
            request = claimed[0]
            try:
                await self._handle(request)
            except asyncio.CancelledError:
                await _uncancellable(self._give_back(request))
                raise
            except Exception as error:  # a bug or an outage: counted as an attempt, not stuck
                logger.warning("shopper mail: request failed", exc_info=True)
                request.attempts += 1
                await self._failed(request, None, DeliveryError(type(error).__name__))
            handled += 1

    async def _claim_into(self, claimed: list[MailRequest]) -> None:
        async with self._database.sessions() as session:
            request = await claim_next(session)
        if request is not None:
            claimed.append(request)

    async def _handle(self, request: MailRequest) -> None:
        async with self._database.sessions() as session:
            draft = await self._drafts.draft(session, request)
            if isinstance(draft, Skipped):
                record(
                    session,
                    draft.event,
                    store_id=request.store_id,
                    subject=draft.subject,
                    address=request.address,
                    **draft.details,
                )
                await finish(session, request)
                await session.commit()
                return
            await session.commit()  # the token, before the mail that carries it
        request.attempts += 1
        try:
            if draft.unusable:
                raise DeliveryError("unusable address", permanent=True)
            for message in draft.messages:
                await self._mailer.send(message)
        except DeliveryError as error:
            await self._failed(request, draft.customer_id, error)
            return
        # Sent: recorded even if the worker is stopping, or the next one would send it again.
        await _uncancellable(self._done(request, draft.customer_id, draft.sent_event))

    async def _failed(
        self, request: MailRequest, customer_id: uuid.UUID | None, error: DeliveryError
    ) -> None:
        final = error.permanent or request.attempts >= MAX_ATTEMPTS
        logger.warning(
            "%s mail not sent (attempt %d of %d%s): %s",
            request.purpose,
            request.attempts,
            MAX_ATTEMPTS,
            ", giving up" if final else "",
            error.description,
        )
        if final:
            event = self._drafts.failed_event(request)
            await self._done(request, customer_id, event, error=error.description)
            return
        async with self._database.sessions() as session:
            await retry_later(session, request)
            await session.commit()

    async def _done(
        self,
        request: MailRequest,
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
                subject=str(customer_id) if customer_id else printable(request.email),
                address=request.address,
                attempts=request.attempts,
                **details,
            )
            await session.commit()

    async def _give_back(self, request: MailRequest) -> None:
        with contextlib.suppress(Exception):  # stopping: at worst the lease runs out
            async with self._database.sessions() as session:
                await release(session, request)
                await session.commit()

    async def _purge(self) -> None:
        async with self._database.sessions() as session:
            await purge_mail_tokens(session)
            await session.commit()
