"""Forgotten and changed passwords: reset requests, reset by one-time token, and change with
the current password. The routes are in `app/customers/password_routes.py`; the mail goes out
through the outbox (`outbox.py`) and its sender (`sender.py`).

Both a reset and a change move the shopper's credential epoch (app/customers/credentials.py):
their other customer tokens, logins that checked the old password while the change committed,
and every link mailed before, stop working.
"""

import uuid

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession

from app.customers.credentials import CredentialsChangedError, change_credentials
from app.customers.customers import Customer, log_in_customer
from app.customers.emails import Email
from app.customers.lockout import LoginGuard
from app.customers.mail.messages import lifetime
from app.customers.mail.shopper_mail import (
    MAX_AUDITED_ADDRESS,
    MailNotConfiguredError,
    ShopperMail,
)
from app.customers.mail.tokens import (
    MailTokenRefusedError,
    OutdatedMailTokenError,
    UsedMailTokenError,
    redeem,
    usable_token,
)
from app.oauth.revocation import Revocation
from app.observability.audit import record
from app.runtime.db import utcnow
from app.runtime.passwords import PasswordHasher

NEW_PASSWORD = Field(min_length=8, max_length=1024)  # as at sign-up
TOKEN_NAME = "password reset token"  # noqa: S105 (words for errors, not a secret)


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


def reset_accepted(mail: ShopperMail) -> dict[str, object]:
    """The one answer to every reset request, whether or not the email is a customer's."""
    message = (
        "If this email belongs to a customer of this store, a link to set a new password "
        f"is on its way; it works once, within {lifetime(mail.reset_ttl)}."
    )
    return mail.accepted("password_reset_request", mail.reset_ttl, message)


async def request_reset(
    session: AsyncSession, mail: ShopperMail, *, store_id: uuid.UUID, email: str, host: str
) -> None:
    """Queues a reset mail. The same work whether or not the email is a customer's: the
    lookup is the sender's, off the request path."""
    if mail.sender is None:
        raise MailNotConfiguredError()
    await mail.queue(session, "password_reset", store_id=store_id, email=email, host=host)


async def _refused(
    session: AsyncSession, refusal: MailTokenRefusedError, *, store_id: uuid.UUID, address: str
) -> MailTokenRefusedError:
    await session.rollback()
    record(
        session,
        "customer.password_reset_refused",
        store_id=store_id,
        address=address,
        reason=refusal.reason,
    )
    await session.commit()
    return refusal


async def reset_password(
    session: AsyncSession,
    mail: ShopperMail,
    *,
    hasher: PasswordHasher,
    guard: LoginGuard,
    store_id: uuid.UUID,
    token: str,
    password: str,
    host: str,
) -> tuple[Customer, Revocation]:
    """Sets the password of the token's customer, uses the token up, moves their credential
    epoch (every customer token of theirs is refused) and clears their lockout. The mail
    reached them, so their email counts as verified. Raises `MailTokenRefusedError`."""
    address = host[:MAX_AUDITED_ADDRESS]
    try:
        row, customer = await usable_token(
            session,
            hasher=mail.hasher,
            token=token,
            purposes=("password_reset",),
            store_id=store_id,
            token_name=TOKEN_NAME,
        )
    except MailTokenRefusedError as refusal:
        raise await _refused(session, refusal, store_id=store_id, address=address) from None
    await session.commit()  # the connection goes back to the pool while the hash runs
    password_hash = await hasher.hash(password)
    if not await redeem(session, row):  # a concurrent request used it first
        await session.rollback()
        raise UsedMailTokenError(TOKEN_NAME)
    try:
        revocation = await change_credentials(
            session,
            customer=customer,
            password_hash=password_hash,
            email_verified_at=customer.email_verified_at or utcnow(),
        )
    except CredentialsChangedError:  # changed since the token was read: the token is outdated
        raise await _refused(
            session, OutdatedMailTokenError(TOKEN_NAME), store_id=store_id, address=address
        ) from None
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
    lockout) and moves the credential epoch: every customer token of theirs but the one asking
    is refused. None if the password is wrong; `CredentialsChangedError` if another change
    committed since the password was checked."""
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
    revocation = await change_credentials(
        session,
        customer=checked,  # its epoch is the one read with the hash just checked
        password_hash=await hasher.hash(password),
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
