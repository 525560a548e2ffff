"""Forgotten and changed passwords: reset requests, reset by one-time token, and change with
the current password. The routes are in `password_routes.py`; the mail goes out through the
outbox (`outbox.py`) and its sender (`sender.py`)."""

import asyncio
import time
import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import record
from app.customers.customers import Customer, Email, log_in_customer
from app.customers.lockout import LoginGuard
from app.customers.mail.outbox import enqueue
from app.customers.mail.sender import ResetMailSender
from app.customers.mail.tokens import (
    ResetTokenHasher,
    ResetTokenRefusedError,
    UsedResetTokenError,
    redeem,
    usable_token,
)
from app.db import Database
from app.errors import KeyhouseError
from app.jsonapi import Output
from app.mail import Mailer, SmtpServer
from app.oauth.revocation import Revocation, revoke_subject
from app.passwords import PasswordHasher
from app.ratelimit import Counters, RateLimiter, TooManyRequestsError
from app.settings import MAX_CUSTOMER_TOKEN_TTL, Settings

MAX_AUDITED_ADDRESS = 64  # the audit column's width
NEW_PASSWORD = Field(min_length=8, max_length=1024)  # as at sign-up


class MailNotConfiguredError(KeyhouseError):
    """503 without `Retry-After`: the server has no SMTP settings, so no mail could go out."""

    status_code = 503
    title = "Service Unavailable"
    default_detail = (
        "Password reset is unavailable: this server has no mail delivery configured "
        "(KEYHOUSE_SMTP_URL)."
    )


class PasswordResetRequestIn(BaseModel):
    """`{"data": {"type": "password_reset_request", "email"}}`."""

    model_config = ConfigDict(extra="ignore")
    type: str = Field(pattern="^password_reset_request$")
    email: Email


class PasswordResetIn(BaseModel):
    """`{"data": {"type": "password_reset", "token", "password"}}`: the token from the mail."""

    model_config = ConfigDict(extra="ignore")
    type: str = Field(pattern="^password_reset$")
    token: str = Field(min_length=1, max_length=512)
    password: str = NEW_PASSWORD


class PasswordChangeIn(BaseModel):
    """`{"data": {"type": "password_change", "current_password", "password"}}`."""

    model_config = ConfigDict(extra="ignore")
    type: str = Field(pattern="^password_change$")
    current_password: str = Field(max_length=1024)
    password: str = NEW_PASSWORD


class ResetRequestedOut(Output):
    """The one answer to every reset request, whether or not the email is a customer's."""

    type: Literal["password_reset_request"]
    expires_in: int
    message: str


class PasswordResets:
    """What the password routes share in a worker: the mail sender (None without SMTP), the
    token hasher, and the limit of requests per email."""

    def __init__(
        self,
        *,
        sender: ResetMailSender | None,
        hasher: ResetTokenHasher,
        per_email: RateLimiter,
        ttl: int,
    ) -> None:
        self.sender = sender
        self.hasher = hasher
        self.per_email = per_email
        self.ttl = ttl

    @classmethod
    def from_settings(
        cls, settings: Settings, *, database: Database, counters: Counters, key: bytes
    ) -> "PasswordResets":
        hasher = ResetTokenHasher(key)
        server = SmtpServer.from_settings(settings)
        sender = None
        if server is not None:
            assert settings.mail_from and settings.password_reset_url  # the settings insist
            sender = ResetMailSender(
                database,
                Mailer(server),
                hasher,
                sender=settings.mail_from,
                link_template=settings.password_reset_url,
                ttl=settings.password_reset_ttl,
            )
        limit = settings.password_reset_rate_limit_per_email
        per_email = RateLimiter(counters, "reset-email", limit)
        return cls(
            sender=sender, hasher=hasher, per_email=per_email, ttl=settings.password_reset_ttl
        )

    async def start(self) -> None:
        if self.sender is not None:
            await self.sender.start()

    async def stop(self) -> None:
        if self.sender is not None:
            await self.sender.stop()

    def accepted(self) -> dict[str, object]:
        minutes = max(1, self.ttl // 60)
        message = (
            "If this email belongs to a customer of this store, a link to set a new password "
            f"is on its way; it works once, within {minutes} minutes."
        )
        return {
            "data": {"type": "password_reset_request", "expires_in": self.ttl, "message": message}
        }


async def past_cutoff(revocation: Revocation) -> None:
    """Waits (under a second) until tokens issued now carry an `iat` after the revocation's
    cutoff: `iat` is whole seconds, so a login in the same second as a reset would otherwise
    get a token that the reset refuses. Answering after it, the shopper's next login works."""
    assert revocation.issued_before is not None
    await asyncio.sleep(max(0.0, revocation.issued_before + 1 - time.time()))


async def request_reset(
    session: AsyncSession, resets: PasswordResets, *, store_id: uuid.UUID, email: str, host: str
) -> None:
    """Queues a reset mail. The same work whether or not the email is a customer's: the
    lookup is the sender's, off the request path."""
    if resets.sender is None:
        raise MailNotConfiguredError()
    # Counted by a keyed hash, so the counters hold no email addresses.
    wait = await resets.per_email.hit(resets.hasher.hash(f"request\0{store_id}\0{email.lower()}"))
    if wait:
        raise TooManyRequestsError(retry_after=wait)
    await enqueue(session, store_id=store_id, email=email, address=host[:MAX_AUDITED_ADDRESS])
    resets.sender.wake()


async def reset_password(
    session: AsyncSession,
    resets: PasswordResets,
    *,
    hasher: PasswordHasher,
    guard: LoginGuard,
    store_id: uuid.UUID,
    token: str,
    password: str,
    host: str,
) -> tuple[Customer, Revocation]:
    """Sets the password of the token's customer, uses the token up, revokes every customer
    token of theirs and clears their lockout; raises `ResetTokenRefusedError` otherwise."""
    address = host[:MAX_AUDITED_ADDRESS]
    try:
        row = await usable_token(session, hasher=resets.hasher, token=token, store_id=store_id)
    except ResetTokenRefusedError as refusal:
        await session.rollback()
        record(
            session,
            "customer.password_reset_refused",
            store_id=store_id,
            address=address,
            reason=refusal.reason,
        )
        await session.commit()
        raise
    customer = await session.get(Customer, row.customer_id)
    assert customer is not None  # a customer's tokens are deleted with them
    await session.commit()  # the connection goes back to the pool while the hash runs
    password_hash = await hasher.hash(password)
    if not await redeem(session, row):  # a concurrent request used it first
        await session.rollback()
        raise UsedResetTokenError()
    customer.password_hash = password_hash
    revocation = revoke_subject(
        session,
        kind="customer",
        subject=str(customer.id),
        max_token_lifetime=MAX_CUSTOMER_TOKEN_TTL,
    )
    record(
        session,
        "customer.password_reset",
        store_id=store_id,
        subject=str(customer.id),
        address=address,
    )
    await session.commit()
    await guard.reset(store_id=store_id, email=customer.email, host=host)
    return customer, revocation


async def change_password(
    session: AsyncSession,
    *,
    hasher: PasswordHasher,
    guard: LoginGuard,
    customer: Customer,
    current_password: str,
    password: str,
    host: str,
    actor: str,
    spared_token_id: str,
) -> Revocation | None:
    """Sets a new password if the current one is right (checked like a login, behind the
    lockout); revokes every customer token of theirs but the one asking. None if wrong."""
    checked = await log_in_customer(
        session,
        hasher=hasher,
        guard=guard,
        store_id=customer.store_id,
        email=customer.email,
        password=current_password,
        host=host,
    )
    if checked is None:
        return None
    await session.commit()  # the connection goes back to the pool while the hash runs
    checked.password_hash = await hasher.hash(password)
    revocation = revoke_subject(
        session,
        kind="customer",
        subject=str(customer.id),
        max_token_lifetime=MAX_CUSTOMER_TOKEN_TTL,
        spared_token_id=spared_token_id,
    )
    record(
        session,
        "customer.password_changed",
        store_id=customer.store_id,
        actor=actor,
        subject=str(customer.id),
        address=host[:MAX_AUDITED_ADDRESS],
    )
    await session.commit()
    return revocation
