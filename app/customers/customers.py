"""Customers (shoppers) of a store, and the service functions the routes and CLI share."""

import re
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from sqlalchemy import ColumnElement, ForeignKey, String, UniqueConstraint, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from app import metrics
from app.audit import record
from app.customers.lockout import LoginGuard, record_failed_login
from app.db import Base, utcnow
from app.jsonapi import (
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
from app.passwords import PasswordHasher
from app.settings import MAX_CUSTOMER_TOKEN_TTL

# No control characters either: PostgreSQL refuses NUL in text, and no mail can be sent to them.
# As the schema says it (ECMAScript has no possessive quantifiers):
EMAIL_SCHEMA_PATTERN = r"[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f]+\.[^@\s\x00-\x1f\x7f]+"
# The same language in linear time. Matched as above, a domain part of many dots that fails at
# its end is tried from every dot (6 s for 20,000 of them, in an ID token's email); the first
# dot after the domain's first character is enough (the atomic group keeps to it).
_EMAIL_CHAR = r"[^@\s\x00-\x1f\x7f]"
EMAIL_PATTERN = re.compile(rf"{_EMAIL_CHAR}++@(?>{_EMAIL_CHAR}{_EMAIL_CHAR}*?\.){_EMAIL_CHAR}++")
EMAIL_TAKEN = "A customer with this email already exists."


async def _release_connection(session: AsyncSession) -> None:
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
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


def _checked_email(value: str) -> str:
    value = value.strip()
    if not EMAIL_PATTERN.fullmatch(value):
        raise ValueError("not an email address")
    return value


# An email address in a request body, at most 254 characters, trimmed; anything else is a 400
# naming the field. The schema shows the same rule (`_checked_email` keeps its own message).
Email = Annotated[
    str,
    Field(max_length=254, json_schema_extra={"pattern": rf"^\s*{EMAIL_SCHEMA_PATTERN}\s*$"}),
    AfterValidator(_checked_email),
]


class CustomerIn(BaseModel):
    """A sign-up: `{"data": {"type": "customer", "name", "email", "password"}}`."""

    model_config = ConfigDict(extra="ignore")
    type: str = Field(pattern="^customer$")
    name: StorableText = Field(min_length=1, max_length=200)
    email: Email
    password: str = Field(min_length=8, max_length=1024)


class CustomerUpdate(BaseModel):
    """A partial update; `password` is write-only, like everywhere else."""

    model_config = ConfigDict(extra="ignore")
    type: str = Field(pattern="^customer$")
    name: Annotated[StorableText, Field(min_length=1, max_length=200)] | None = None
    email: Email | None = None
    password: str | None = Field(default=None, min_length=8, max_length=1024)


CUSTOMER_FILTERS = {
    "name": Filterable(Customer.name),
    "email": Filterable(Customer.email_key, str.lower),
    "created_at": Filterable(Customer.created_at, utc_datetime),
}


class CustomerOut(Output):
    """A customer on the wire (`customer_json`); never its password."""

    type: Literal["customer"]
    id: uuid.UUID
    name: str
    email: str
    meta: TimestampsMeta


def customer_json(customer: Customer) -> dict[str, object]:
    return {
        "type": "customer",
        "id": str(customer.id),
        "name": customer.name,
        "email": customer.email,
        "meta": timestamps(customer.created_at, customer.updated_at),
    }


async def create_customer(
    session: AsyncSession, *, hasher: PasswordHasher, store_id: uuid.UUID, data: CustomerIn
) -> Customer:
    """Signs a customer up; a taken email (in any case) is a 409, even under a race."""
    await _release_connection(session)
    customer = Customer(
        store_id=store_id,
        name=data.name,
        email=data.email,
        email_key=data.email.lower(),
        password_hash=await hasher.hash(data.password),
    )
    session.add(customer)
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


async def update_customer(
    session: AsyncSession, *, hasher: PasswordHasher, customer: Customer, data: CustomerUpdate
) -> Customer:
    if data.password is not None:
        await _release_connection(session)
        customer.password_hash = await hasher.hash(data.password)
    if data.name is not None:
        customer.name = data.name
    if data.email is not None:
        customer.email, customer.email_key = data.email, data.email.lower()
    try:
        await session.commit()
    except IntegrityError as error:
        await session.rollback()
        raise ConflictError(EMAIL_TAKEN) from error
    return customer


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
    await _release_connection(session)
    check = await hasher.check(password, customer.password_hash if customer else None)
    if customer is None or not check.matches:
        return None
    if check.upgraded_hash is not None:
        customer.password_hash = check.upgraded_hash
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
