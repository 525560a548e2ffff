"""The outbox of mails to shoppers: written by the request, emptied by the mail sender.

A password reset, an email verification or an email change (`MailPurpose`) only adds a row
here, whether the email belongs to a customer or not, so the answer and its time tell nothing
about which emails exist; and the row is committed before the 202, so an acknowledged request
survives the process stopping. The sender (`sender.py`) of every worker claims due rows one at
a time: it looks the customer up, issues the token, sends the mail and deletes the row.

Claiming is a conditional update that sets a lease (`claimed_until`) and a claim id, so that of
two workers or replicas, only one gets a row: on PostgreSQL the candidate is also read `FOR
UPDATE SKIP LOCKED`, so workers pass over each other's rows instead of queueing behind them;
SQLite has one writer at a time, and the condition settles it. A worker that dies mid-send
leaves its lease to expire, after which another one sends the mail (a shopper may then get two
mails; the second link is the one that works). A worker that is stopped mid-send gives its row
back at once.
"""

import secrets
import uuid
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import ColumnElement, ForeignKey, String, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from app.runtime.changes import announce
from app.runtime.db import Base, utcnow

LEASE = timedelta(seconds=120)  # several SMTP timeouts: a send outlasting it is not expected
# Waits before each further attempt: a mail server down for a while still gets every request.
RETRY_DELAYS_SECONDS = (5, 30, 120, 600, 1800)
MAX_ATTEMPTS = len(RETRY_DELAYS_SECONDS) + 1

# What a mail is for: a link to set a new password, to prove a sign-up's address, or to move
# an account to a new address (mailed to the new one, with a notice to the old).
MailPurpose = Literal["password_reset", "email_verification", "email_change"]


class MailRequest(Base):
    __tablename__ = "mail_request"

    id: Mapped[int] = mapped_column(primary_key=True)
    store_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("store.id"))
    purpose: Mapped[str] = mapped_column(String(32))
    # As requested: whether a customer has it is only asked by the sender. For an email
    # change, the new address.
    email: Mapped[str] = mapped_column(String(254))
    # An email change: the customer who asked, and the customer token they asked with, which
    # the change will keep valid when it ends their other sessions.
    customer_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("customer.id", ondelete="CASCADE")
    )
    spared_token_id: Mapped[str | None] = mapped_column(String(64))
    # Their credential epoch when they asked: a change of password meanwhile cancels it.
    customer_epoch: Mapped[int | None]
    # The address of the request, for the audit trail.
    address: Mapped[str | None] = mapped_column(String(64))
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    claimed_until: Mapped[datetime | None]
    claim_id: Mapped[str | None] = mapped_column(String(32))


# A new request wakes every worker's sender (app/customers/mail/sender.py), not only its own.
announce(MailRequest, "mail")


def add_request(
    session: AsyncSession,
    *,
    purpose: MailPurpose,
    store_id: uuid.UUID,
    email: str,
    address: str | None,
    customer_id: uuid.UUID | None = None,
    spared_token_id: str | None = None,
    customer_epoch: int | None = None,
) -> None:
    """Adds a request to the caller's transaction: once committed, the mail will be tried."""
    session.add(
        MailRequest(
            purpose=purpose,
            store_id=store_id,
            email=email,
            address=address,
            customer_id=customer_id,
            spared_token_id=spared_token_id,
            customer_epoch=customer_epoch,
        )
    )


def _unclaimed(now: datetime) -> ColumnElement[bool]:
    return or_(MailRequest.claimed_until.is_(None), MailRequest.claimed_until <= now)


async def claim_next(session: AsyncSession) -> MailRequest | None:
    """The oldest due request, leased to this caller; None when none is due."""
    for _ in range(3):  # a row another worker took between our read and our update
        now = utcnow()
        candidate = await session.scalar(
            select(MailRequest.id)
            .where(MailRequest.next_attempt_at <= now, _unclaimed(now))
            .order_by(MailRequest.next_attempt_at, MailRequest.id)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        if candidate is None:
            await session.rollback()
            return None
        claim_id = secrets.token_hex(16)
        claimed = await session.execute(
            update(MailRequest)
            .where(MailRequest.id == candidate, _unclaimed(now))
            .values(claimed_until=now + LEASE, claim_id=claim_id)
            .execution_options(synchronize_session=False)
        )
        await session.commit()
        if claimed.rowcount == 1:  # type: ignore[attr-defined]
            return await session.get(MailRequest, candidate, populate_existing=True)
    return None


def _mine(request: MailRequest) -> ColumnElement[bool]:
    return (MailRequest.id == request.id) & (MailRequest.claim_id == request.claim_id)


async def finish(session: AsyncSession, request: MailRequest) -> None:
    """Deletes a handled request, in the caller's transaction (with its audit event)."""
    await session.execute(delete(MailRequest).where(_mine(request)))


async def retry_later(session: AsyncSession, request: MailRequest) -> None:
    """Gives the request back, due again after the delay its attempts have earned."""
    delay = RETRY_DELAYS_SECONDS[min(request.attempts, len(RETRY_DELAYS_SECONDS)) - 1]
    await session.execute(
        update(MailRequest)
        .where(_mine(request))
        .values(
            attempts=request.attempts,
            next_attempt_at=utcnow() + timedelta(seconds=delay),
            claimed_until=None,
            claim_id=None,
        )
    )


async def release(session: AsyncSession, request: MailRequest) -> None:
    """Gives the request back as it was, due at once (this worker is stopping)."""
    await session.execute(
        update(MailRequest).where(_mine(request)).values(claimed_until=None, claim_id=None)
    )
