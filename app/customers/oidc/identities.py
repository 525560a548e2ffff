"""Which customer a provider's shopper is: found by (provider, `sub`), linked, or created.

A provider's `sub` names one of its users for good (OpenID Connect Core §2), so a customer is
found by it first. A shopper new to the provider is linked to the store's customer of the same
email, or a customer is created for them, and in both cases only if the provider says it
verified the email: an unverified email would let anyone who can open an account at the
provider take over, or squat, the customer of that address.
"""

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from sqlalchemy import ForeignKey, String, UniqueConstraint, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from app.customers.customers import Customer, find_by_email
from app.customers.emails import EMAIL_PATTERN
from app.customers.oidc.discovery import ProviderResponseError
from app.customers.oidc.id_tokens import ProviderIdentity
from app.customers.oidc.providers import LoginProvider
from app.db import Base, utcnow
from app.passwords import PasswordHasher


class CustomerIdentity(Base):
    """A customer's account at one login provider."""

    __tablename__ = "customer_identity"
    __table_args__ = (
        UniqueConstraint("provider_id", "subject"),
        UniqueConstraint("provider_id", "customer_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("login_provider.id", ondelete="CASCADE")
    )
    customer_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("customer.id", ondelete="CASCADE"), index=True
    )
    subject: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime] = mapped_column(default=utcnow)


class Outcome(Enum):
    FOUND = "found"
    LINKED = "linked"
    CREATED = "created"


@dataclass(frozen=True, slots=True)
class ResolvedCustomer:
    customer: Customer
    outcome: Outcome


class IdentityRefusedError(ProviderResponseError):
    """The provider's shopper cannot be matched to a customer, nor made one."""


def _usable_email(identity: ProviderIdentity) -> str:
    if identity.email is None or not EMAIL_PATTERN.fullmatch(identity.email):
        raise IdentityRefusedError(
            "no_email", "The login provider did not share an email address; it is needed here."
        )
    if not identity.email_verified:
        raise IdentityRefusedError(
            "email_not_verified",
            "The login provider has not verified your email address; verify it there first.",
        )
    return identity.email


async def _linked_customer(
    session: AsyncSession, *, provider: LoginProvider, subject: str
) -> tuple[CustomerIdentity, Customer] | None:
    query = (
        select(CustomerIdentity, Customer)
        .join(Customer, Customer.id == CustomerIdentity.customer_id)
        .where(CustomerIdentity.provider_id == provider.id, CustomerIdentity.subject == subject)
    )
    row = (await session.execute(query)).first()
    return (row[0], row[1]) if row is not None else None


async def _is_linked(session: AsyncSession, *, provider: LoginProvider, customer: Customer) -> bool:
    query = select(CustomerIdentity.id).where(
        CustomerIdentity.provider_id == provider.id, CustomerIdentity.customer_id == customer.id
    )
    return (await session.scalars(query)).first() is not None


async def _new_customer(
    *, hasher: PasswordHasher, provider: LoginProvider, identity: ProviderIdentity, email: str
) -> Customer:
    return Customer(
        id=uuid.uuid4(),
        store_id=provider.store_id,
        name=identity.name or email.partition("@")[0][:200],
        email=email,
        email_key=email.lower(),
        # 256 random bits nobody ever sees: a password login fails for this customer at a
        # wrong password's cost, until the shopper sets a password of their own.
        password_hash=await hasher.hash(secrets.token_urlsafe(32)),
    )


async def resolve_customer(
    session: AsyncSession,
    *,
    hasher: PasswordHasher,
    provider: LoginProvider,
    identity: ProviderIdentity,
) -> ResolvedCustomer:
    """The customer this provider's shopper is, linking or creating one in the session. The
    caller commits, so a customer never exists without its link; a race with another sign-in
    of the same shopper or email ends in an `IntegrityError` there, and a second try finds it."""
    linked = await _linked_customer(session, provider=provider, subject=identity.subject)
    if linked is not None:
        link, found = linked
        link.last_login_at = utcnow()
        return ResolvedCustomer(found, Outcome.FOUND)
    email = _usable_email(identity)
    existing = await find_by_email(session, store_id=provider.store_id, email=email)
    if existing is not None and await _is_linked(session, provider=provider, customer=existing):
        raise IdentityRefusedError(
            "linked_elsewhere",
            "This email's account is linked to another account at this login provider.",
        )
    resolved = ResolvedCustomer(existing, Outcome.LINKED) if existing else None
    if resolved is None:
        created = await _new_customer(
            hasher=hasher, provider=provider, identity=identity, email=email
        )
        session.add(created)
        resolved = ResolvedCustomer(created, Outcome.CREATED)
    session.add(
        CustomerIdentity(
            provider_id=provider.id, customer_id=resolved.customer.id, subject=identity.subject
        )
    )
    return resolved
