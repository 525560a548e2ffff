"""A shopper's credential epoch: one number that every change of their credentials moves.

What proves who a shopper is: their password, their email (reset links go there) and the login
providers linked to their account. Every change of one (a reset, a change with the current
password, a backend setting a password or email, a confirmed email change, a provider linked or
unlinked) moves `customer.credential_epoch` by one (`change_credentials`), in the same UPDATE
that makes the change, and only if the epoch is still the one the change started from: of two
changes racing, the second is refused (409) and can be asked again. Then:

- customer tokens carry the epoch they were issued in (the `cred_epoch` claim), read in the same
  row as the password hash that was checked; a `credentials` revocation row, written with the
  change, makes every worker refuse tokens of an earlier epoch (but the one the shopper made the
  change with, where it is theirs). A login that checked the old password while the change
  committed holds the old epoch, so its token is refused however late it is signed. A cutoff by
  time could not promise that: `iat` is whole seconds, and a hash takes a fraction of one.
- mailed links (reset, verification, email change) carry it too, and stop working once it moves
  (app/customers/mail/tokens.py).
"""

from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from app.customers.customers import (
    EMAIL_TAKEN,
    Customer,
    CustomerUpdate,
    commit_unique,
    release_connection,
)
from app.http.errors import KeyhouseError
from app.http.jsonapi import ConflictError
from app.oauth.revocation import Revocation, revoke_credentials
from app.observability.audit import record
from app.runtime.db import utcnow
from app.runtime.passwords import PasswordHasher
from app.runtime.settings import MAX_CUSTOMER_TOKEN_TTL


class CredentialsChangedError(KeyhouseError):
    """Another change of the same shopper's credentials committed first."""

    status_code = 409
    title = "Conflict"
    default_detail = (
        "The account's password, email or sign-in changed while this request ran; try again."
    )


async def change_credentials(
    session: AsyncSession,
    *,
    customer: Customer,
    spared_token_id: str | None = None,
    **values: Any,
) -> Revocation:
    """Sets `values` (columns of `customer`) and moves the epoch, in the caller's transaction,
    which commits and then applies the revocation returned. Raises `CredentialsChangedError` if
    the epoch moved since `customer` was read; an `IntegrityError` (an email taken) as is."""
    epoch = customer.credential_epoch
    values = {**values, "credential_epoch": epoch + 1, "updated_at": utcnow()}
    changed = await session.execute(
        update(Customer)
        .where(Customer.id == customer.id, Customer.credential_epoch == epoch)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if changed.rowcount != 1:  # type: ignore[attr-defined]
        raise CredentialsChangedError()
    for name, value in values.items():
        set_committed_value(customer, name, value)
    return revoke_credentials(
        session,
        subject=str(customer.id),
        epoch=epoch + 1,
        max_token_lifetime=MAX_CUSTOMER_TOKEN_TTL,
        spared_token_id=spared_token_id,
    )


async def update_customer(
    session: AsyncSession,
    *,
    hasher: PasswordHasher,
    customer: Customer,
    data: CustomerUpdate,
    actor: str,
) -> Revocation | None:
    """A backend's update: a new password or email moves the credential epoch (every customer
    token of the shopper and every link mailed to them stops working; returns the revocation
    to apply). A new email is unverified unless `email_verified` says otherwise."""
    values: dict[str, Any] = {}
    if data.password is not None:  # first: the hash runs with no transaction open
        await release_connection(session)
        values["password_hash"] = await hasher.hash(data.password)
    if data.name is not None:
        customer.name = data.name
    if data.email_verified is not None:
        verified_at = customer.email_verified_at or utcnow()
        customer.email_verified_at = verified_at if data.email_verified else None
    if not data.changes_credentials(customer):
        await commit_unique(session)
        return None
    if data.email is not None and data.email != customer.email:
        values.update(
            email=data.email,
            email_key=data.email.lower(),
            email_verified_at=utcnow() if data.email_verified else None,
        )
    try:
        await session.flush()  # the name, before the UPDATE that moves the epoch
        revocation = await change_credentials(session, customer=customer, **values)
    except IntegrityError as error:
        await session.rollback()
        raise ConflictError(EMAIL_TAKEN) from error
    changed = ["password"] if "password_hash" in values else []
    record(
        session,
        "customer.credentials_changed",
        store_id=customer.store_id,
        actor=actor,
        subject=str(customer.id),
        changed=" ".join([*changed, *(["email"] if "email" in values else [])]),
    )
    await session.commit()
    return revocation
