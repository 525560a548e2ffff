"""A customer's accounts at login providers: one row per (provider, `sub`) linked to them.

A provider's `sub` names one of its users for good (OpenID Connect Core §2), so a sign-in finds
its customer by it first (matching.py). A customer holds at most one account per provider.
"""

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from app.customers.customers import Customer
from app.customers.oidc.providers import LoginProvider
from app.runtime.db import Base, utcnow


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


async def linked_customer(
    session: AsyncSession, *, provider: LoginProvider, subject: str
) -> tuple[CustomerIdentity, Customer] | None:
    """The provider's user `subject`, and the customer it is linked to, if any."""
    query = (
        select(CustomerIdentity, Customer)
        .join(Customer, Customer.id == CustomerIdentity.customer_id)
        .where(CustomerIdentity.provider_id == provider.id, CustomerIdentity.subject == subject)
    )
    row = (await session.execute(query)).first()
    return (row[0], row[1]) if row is not None else None


async def identities_of(
    session: AsyncSession, *, customer_id: uuid.UUID
) -> list[tuple[CustomerIdentity, LoginProvider]]:
    """The customer's accounts at providers (enabled or not), oldest link first."""
    query = (
        select(CustomerIdentity, LoginProvider)
        .join(LoginProvider, LoginProvider.id == CustomerIdentity.provider_id)
        .where(CustomerIdentity.customer_id == customer_id)
        .order_by(CustomerIdentity.created_at, CustomerIdentity.id)
    )
    return [(row[0], row[1]) for row in await session.execute(query)]
