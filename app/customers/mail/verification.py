"""Verified emails: a sign-up's address proven by mail, and an email change that takes effect
only once the new address is proven. The routes are in `app/customers/email_routes.py`.

An email counts as verified only when whoever receives its mail also holds the account's
password: the sign-up's link asks for the password, a password reset (which replaces it) marks
the address verified, and an email change needs the current password to start. So a stranger
who signs up with someone else's address never gets an account verified in that address by its
owner's click, and linking a login provider by a verified email (app/customers/oidc) never hands
an account to whoever chose its password first.
"""

import uuid

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from app.customers.credentials import CredentialsChangedError, change_credentials
from app.customers.customers import (
    EMAIL_TAKEN,
    Customer,
    InvalidCredentialsError,
    find_by_email,
    log_in_customer,
)
from app.customers.emails import Email
from app.customers.lockout import LoginGuard
from app.customers.mail.messages import lifetime
from app.customers.mail.outbox import MailPurpose, add_request
from app.customers.mail.shopper_mail import (
    MAX_AUDITED_ADDRESS,
    ShopperMail,
    VerificationNotConfiguredError,
)
from app.customers.mail.tokens import (
    MailToken,
    MailTokenRefusedError,
    OutdatedMailTokenError,
    UsedMailTokenError,
    redeem,
    usable_token,
)
from app.http.errors import KeyhouseError
from app.http.jsonapi import BadRequestError, ConflictError
from app.oauth.revocation import Revocation
from app.observability.audit import record
from app.runtime.db import utcnow
from app.runtime.passwords import PasswordHasher

TOKEN_NAME = "email verification token"  # noqa: S105 (words for errors, not a secret)


class EmailVerificationRequestIn(BaseModel):
    """`{"data": {"type": "email_verification_request", "email"}}`: mail a new link."""

    model_config = ConfigDict(extra="ignore")
    type: str = Field(pattern="^email_verification_request$")
    email: Email


class EmailVerificationIn(BaseModel):
    """`{"data": {"type": "email_verification", "token", "password"}}`: the token from the
    mail, and for a sign-up's link the account's password."""

    model_config = ConfigDict(extra="ignore")
    type: str = Field(pattern="^email_verification$")
    token: str = Field(min_length=1, max_length=512)
    password: str | None = Field(
        default=None,
        max_length=1024,
        description="Required for a sign-up's link; not asked for an email change's.",
    )


class EmailChangeIn(BaseModel):
    """`{"data": {"type": "email_change", "current_password", "email"}}`: the new address."""

    model_config = ConfigDict(extra="ignore")
    type: str = Field(pattern="^email_change$")
    current_password: str = Field(max_length=1024)
    email: Email


class PasswordRequiredError(KeyhouseError):
    status_code = 400
    title = "Bad Request"
    default_detail = "Confirming a sign-up's email needs the account's password."


def verification_accepted(mail: ShopperMail) -> dict[str, object]:
    """The one answer to every verification request, whether or not the email is a
    customer's, or verified already."""
    ttl = mail.verification_ttl
    message = (
        "If this email belongs to a customer of this store whose address is not verified yet, "
        f"a link to verify it is on its way; it works once, within {lifetime(ttl)}."
    )
    return mail.accepted("email_verification_request", ttl, message)


def change_accepted(mail: ShopperMail) -> dict[str, object]:
    ttl = mail.verification_ttl
    message = (
        "A link to confirm the new address is on its way to it, and a notice to the current "
        f"one; the email changes once the link is followed, within {lifetime(ttl)}."
    )
    return mail.accepted("email_change", ttl, message)


async def request_verification(
    session: AsyncSession, mail: ShopperMail, *, store_id: uuid.UUID, email: str, host: str
) -> None:
    """Queues a verification mail; the same work whatever the email (the sender decides)."""
    if not mail.verifies_emails:
        raise VerificationNotConfiguredError()
    await mail.queue(session, "email_verification", store_id=store_id, email=email, host=host)


async def _refused(
    session: AsyncSession, refusal: KeyhouseError, *, store_id: uuid.UUID, address: str
) -> KeyhouseError:
    await session.rollback()
    reason = refusal.reason if isinstance(refusal, MailTokenRefusedError) else "wrong_password"
    record(
        session,
        "customer.email_verification_refused",
        store_id=store_id,
        address=address,
        reason=reason,
    )
    await session.commit()
    return refusal


async def confirm_email(
    session: AsyncSession,
    mail: ShopperMail,
    *,
    hasher: PasswordHasher,
    guard: LoginGuard,
    store_id: uuid.UUID,
    token: str,
    password: str | None,
    host: str,
) -> tuple[Customer, Revocation | None]:
    """Uses a verification or email change token: verifies the address, or moves the account
    to the new one (moving the credential epoch: the revocation to apply)."""
    address = host[:MAX_AUDITED_ADDRESS]
    purposes: tuple[MailPurpose, ...] = ("email_verification", "email_change")
    try:
        row, customer = await usable_token(
            session,
            hasher=mail.hasher,
            token=token,
            purposes=purposes,
            store_id=store_id,
            token_name=TOKEN_NAME,
        )
        if row.purpose == "email_change":
            return customer, await _change_email(session, row, customer, address=address)
        verified = await _verify_email(
            session, row, hasher=hasher, guard=guard, password=password, host=host
        )
    except (MailTokenRefusedError, InvalidCredentialsError) as refusal:
        raise await _refused(session, refusal, store_id=store_id, address=address) from None
    return verified, None


async def _verify_email(
    session: AsyncSession,
    row: MailToken,
    *,
    hasher: PasswordHasher,
    guard: LoginGuard,
    password: str | None,
    host: str,
) -> Customer:
    if password is None:
        raise PasswordRequiredError()
    checked = await log_in_customer(
        session,
        hasher=hasher,
        guard=guard,
        store_id=row.store_id,
        email=row.email,
        password=password,
        host=host,
    )
    if checked is None:
        raise InvalidCredentialsError()
    if checked.id != row.customer_id or checked.credential_epoch != row.customer_epoch:
        raise OutdatedMailTokenError(TOKEN_NAME)
    if not await redeem(session, row):
        raise UsedMailTokenError(TOKEN_NAME)
    now = utcnow()
    verified = await session.execute(
        update(Customer)
        .where(Customer.id == checked.id, Customer.credential_epoch == row.customer_epoch)
        .values(email_verified_at=now)
        .execution_options(synchronize_session=False)
    )
    if verified.rowcount != 1:  # type: ignore[attr-defined]
        raise OutdatedMailTokenError(TOKEN_NAME)
    record(session, "customer.email_verified", store_id=row.store_id, subject=str(checked.id))
    await session.commit()
    set_committed_value(checked, "email_verified_at", now)
    return checked


async def _change_email(
    session: AsyncSession, row: MailToken, customer: Customer, *, address: str
) -> Revocation:
    if not await redeem(session, row):
        raise UsedMailTokenError(TOKEN_NAME)
    try:
        revocation = await change_credentials(
            session,
            customer=customer,
            spared_token_id=row.spared_token_id,
            email=row.email,
            email_key=row.email.lower(),
            email_verified_at=utcnow(),
        )
    except CredentialsChangedError:
        raise OutdatedMailTokenError(TOKEN_NAME) from None
    except IntegrityError:
        await session.rollback()
        raise ConflictError(EMAIL_TAKEN) from None
    record(
        session,
        "customer.email_changed",
        store_id=row.store_id,
        subject=str(customer.id),
        address=address,
    )
    await session.commit()
    return revocation


async def request_email_change(
    session: AsyncSession,
    mail: ShopperMail,
    *,
    hasher: PasswordHasher,
    guard: LoginGuard,
    customer: Customer,
    current_password: str,
    email: str,
    host: str,
    actor: str,
    token_id: str,
) -> bool:
    """Queues the mails of an email change if the current password is right (checked like a
    login, behind the lockout); False if it is wrong. The change waits for the new address to
    be confirmed; a credential change meanwhile cancels it."""
    if not mail.verifies_emails:
        raise VerificationNotConfiguredError()
    if email.lower() == customer.email_key:
        raise BadRequestError("This is the account's email address already.")
    await mail.count("email_change", store_id=customer.store_id, email=customer.email)
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
        return False
    if await find_by_email(session, store_id=customer.store_id, email=email) is not None:
        raise ConflictError(EMAIL_TAKEN)
    add_request(
        session,
        purpose="email_change",
        store_id=customer.store_id,
        email=email,
        address=host[:MAX_AUDITED_ADDRESS],
        customer_id=customer.id,
        spared_token_id=token_id,
        customer_epoch=checked.credential_epoch,
    )
    record(
        session,
        "customer.email_change_requested",
        store_id=customer.store_id,
        actor=actor,
        subject=str(customer.id),
        address=host[:MAX_AUDITED_ADDRESS],
    )
    await session.commit()
    mail.wake()
    return True
