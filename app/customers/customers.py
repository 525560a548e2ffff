"""Customers (shoppers) of a store, and the service functions the routes and CLI share."""

import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool
from sqlalchemy import ColumnElement, ForeignKey, String, UniqueConstraint, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from app.customers.emails import Email
from app.customers.lockout import LoginGuard, record_failed_login
from app.http.errors import KeyhouseError
from app.http.jsonapi import (
    ISO_DATETIME,
    ConflictError,
    Filterable,
    Output,
    Page,
    StorableText,
    TimestampsMeta,
    fetch_page,
    timestamps,
    utc_datetime,
)
from app.oauth.revocation import Revocation, revoke_subject
from app.oauth.verification import REALM
from app.observability import metrics
from app.observability.audit import record
from app.runtime.db import Base, utcnow
from app.runtime.passwords import PasswordHasher
from app.runtime.settings import MAX_CUSTOMER_TOKEN_TTL

EMAIL_TAKEN = "A customer with this email already exists."


class InvalidCredentialsError(KeyhouseError):
    """Unknown email or wrong password: one answer for both."""

    status_code = 401
    title = "Unauthorized"
    default_detail = "The email or password is incorrect."

    def response_headers(self) -> dict[str, str]:
        return {**self.headers, "WWW-Authenticate": f"Bearer {REALM}"}


async def release_connection(session: AsyncSession) -> None:
    """Ends the read transaction before a password hash, so its connection goes back to the pool.

    Hashes queue for a few threads; requests holding connections while they wait would, under a
    flood of logins, leave none for requests that need no hash. Loaded objects stay usable
    (`expire_on_commit=False`).
    """
    await session.commit()


class Customer(Base):
    __tablename__ = "customer"
    # Unique per store, whatever the case: `email_key` is the lower-cased email.
    __table_args__ = (UniqueConstraint("store_id", "email_key"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    store_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("store.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(254))
    email_key: Mapped[str] = mapped_column(String(254))
    password_hash: Mapped[str] = mapped_column(String(255))
    # Moves with every change of the password, the email or a linked login provider; tokens
    # and mailed links of an earlier epoch are refused (credentials.py).
    credential_epoch: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    # When the shopper proved they receive mail at `email` (None: never, or not since it changed).
    email_verified_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    @property
    def email_verified(self) -> bool:
        return self.email_verified_at is not None


VERIFIED_BY_BACKEND = (
    "Backends only: whether the store already knows the shopper receives mail at this email. "
    "Unset, a new email is unverified until the shopper confirms it by mail."
)


class CustomerIn(BaseModel):
    """A sign-up: `{"data": {"type": "customer", "name", "email", "password"}}`."""

    model_config = ConfigDict(extra="ignore")
    type: str = Field(pattern="^customer$")
    name: StorableText = Field(min_length=1, max_length=200)
    email: Email
    password: str = Field(min_length=8, max_length=1024)
    email_verified: StrictBool | None = Field(default=None, description=VERIFIED_BY_BACKEND)


class CustomerUpdate(BaseModel):
    """A partial update; `password` is write-only, like everywhere else. A shopper's own token
    changes neither `password` nor `email` here (the dedicated routes do, with the current
    password); a backend may set them, which ends every session and link of the shopper."""

    model_config = ConfigDict(extra="ignore")
    type: str = Field(pattern="^customer$")
    name: Annotated[StorableText, Field(min_length=1, max_length=200)] | None = None
    email: Email | None = None
    password: str | None = Field(default=None, min_length=8, max_length=1024)
    email_verified: StrictBool | None = Field(default=None, description=VERIFIED_BY_BACKEND)

    def changes_credentials(self, customer: "Customer") -> bool:
        """Whether this sets a password, or an email other than the customer's (an unchanged
        email, as a profile form sends it back, is no change)."""
        return self.password is not None or (
            self.email is not None and self.email != customer.email
        )


CUSTOMER_FILTERS = {
    "name": Filterable(Customer.name),
    "email": Filterable(Customer.email_key, str.lower),
    "created_at": Filterable(Customer.created_at, utc_datetime, ISO_DATETIME),
}


class CustomerOut(Output):
    """A customer on the wire (`customer_json`); never its password."""

    type: Literal["customer"]
    id: uuid.UUID
    name: str
    email: str
    email_verified: bool
    meta: TimestampsMeta


def customer_json(customer: Customer) -> dict[str, object]:
    return {
        "type": "customer",
        "id": str(customer.id),
        "name": customer.name,
        "email": customer.email,
        "email_verified": customer.email_verified,
        "meta": timestamps(customer.created_at, customer.updated_at),
    }


async def create_customer(
    session: AsyncSession,
    *,
    hasher: PasswordHasher,
    store_id: uuid.UUID,
    data: CustomerIn,
    then: Callable[[Customer], None] | None = None,
) -> Customer:
    """Signs a customer up; a taken email (in any case) is a 409, even under a race. `then`
    adds to the same commit (the verification mail's request)."""
    await release_connection(session)
    customer = Customer(
        id=uuid.uuid4(),
        store_id=store_id,
        name=data.name,
        email=data.email,
        email_key=data.email.lower(),
        password_hash=await hasher.hash(data.password),
        email_verified_at=utcnow() if data.email_verified else None,
    )
    session.add(customer)
    if then is not None:
        then(customer)
    try:
        await session.commit()
    except IntegrityError as error:  # the unique constraint decides races, not a read first
        await session.rollback()
        raise ConflictError(EMAIL_TAKEN) from error
    return customer


async def get_customer(
    session: AsyncSession, *, store_id: uuid.UUID, customer_id: uuid.UUID
) -> Customer | None:
    customer = await session.get(Customer, customer_id)
    return customer if customer is not None and customer.store_id == store_id else None


async def find_by_email(
    session: AsyncSession, *, store_id: uuid.UUID, email: str
) -> Customer | None:
    query = select(Customer).where(
        Customer.store_id == store_id, Customer.email_key == email.strip().lower()
    )
    return (await session.scalars(query)).first()


async def list_customers(
    session: AsyncSession,
    *,
    store_id: uuid.UUID,
    page: Page,
    conditions: Sequence[ColumnElement[bool]],
) -> tuple[list[Customer], int]:
    return await fetch_page(
        session,
        Customer,
        where=[Customer.store_id == store_id, *conditions],
        page=page,
        order_by=[Customer.created_at, Customer.id],
    )


async def commit_unique(session: AsyncSession) -> None:
    try:
        await session.commit()
    except IntegrityError as error:
        await session.rollback()
        raise ConflictError(EMAIL_TAKEN) from error


async def delete_customer(session: AsyncSession, *, customer: Customer, actor: str) -> Revocation:
    """Deletes the customer with their addresses (their orders stay, without the link) and
    revokes every customer token they hold; the caller applies the revocation to its worker."""
    await session.delete(customer)
    revocation = revoke_subject(
        session,
        kind="customer",
        subject=str(customer.id),
        max_token_lifetime=MAX_CUSTOMER_TOKEN_TTL,
    )
    record(
        session,
        "customer.deleted",
        store_id=customer.store_id,
        actor=actor,
        subject=str(customer.id),
    )
    await session.commit()
    return revocation


async def authenticate_customer(
    session: AsyncSession, *, hasher: PasswordHasher, store_id: uuid.UUID, email: str, password: str
) -> Customer | None:
    """The customer if the password matches; unknown email and wrong password cost the same.

    A hash made with older parameters is replaced by a current one on success."""
    customer = await find_by_email(session, store_id=store_id, email=email)
    await release_connection(session)
    check = await hasher.check(password, customer.password_hash if customer else None)
    if customer is None or not check.matches:
        return None
    if check.upgraded_hash is not None:
        # Only over the hash just checked: a password changed meanwhile stays changed.
        await session.execute(
            update(Customer)
            .where(
                Customer.id == customer.id,
                Customer.credential_epoch == customer.credential_epoch,
                Customer.password_hash == customer.password_hash,
            )
            .values(password_hash=check.upgraded_hash)
            .execution_options(synchronize_session=False)
        )
        await session.commit()
    return customer


async def log_in_customer(
    session: AsyncSession,
    *,
    hasher: PasswordHasher,
    guard: LoginGuard,
    store_id: uuid.UUID,
    email: str,
    password: str,
    host: str,
) -> Customer | None:
    """`authenticate_customer` behind the lockout (lockout.py); failures go to the audit trail.

    Raises `TooManyRequestsError` for a locked attempt, before any hashing."""
    attempt = await guard.admit(store_id=store_id, email=email, password=password, host=host)
    customer = await authenticate_customer(
        session, hasher=hasher, store_id=store_id, email=email, password=password
    )
    if customer is not None:
        await guard.succeeded(attempt)
        return customer
    failure = await guard.failed(attempt)
    record_failed_login(session, attempt, failure, window=guard.window)
    await session.commit()
    metrics.login_failed(failure.lockouts)
    return None
