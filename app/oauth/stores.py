"""Stores: the tenants. Every client, key holder and resource belongs to one."""

import uuid
from datetime import datetime

from sqlalchemy import String, false, select, true
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from app.observability.audit import record
from app.runtime.db import Base, utcnow

DEFAULT_STORE_NAME = "Default store"


class Store(Base):
    __tablename__ = "store"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(200))
    # Whether storefronts (read-only tokens) may sign shoppers up, as in the origin API.
    allow_customer_signup: Mapped[bool] = mapped_column(default=True, server_default=true())
    # Whether a shopper must have verified their email before a password login works.
    require_email_verification: Mapped[bool] = mapped_column(default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


async def create_store(session: AsyncSession, *, name: str) -> Store:
    store = Store(name=name)
    session.add(store)
    await session.commit()
    return store


async def list_stores(session: AsyncSession) -> list[Store]:
    return list(await session.scalars(select(Store).order_by(Store.created_at, Store.id)))


async def get_store(session: AsyncSession, *, store_id: uuid.UUID) -> Store | None:
    return await session.get(Store, store_id)


async def default_store(session: AsyncSession) -> Store | None:
    """The oldest store: where clients go when no store is named."""
    stores = await session.scalars(select(Store).order_by(Store.created_at, Store.id).limit(1))
    return stores.first()


async def ensure_default_store(session: AsyncSession) -> Store:
    return await default_store(session) or await create_store(session, name=DEFAULT_STORE_NAME)


async def change_store_settings(
    session: AsyncSession,
    *,
    store: Store,
    allow_customer_signup: bool | None = None,
    require_email_verification: bool | None = None,
) -> Store:
    """Sets the shopper settings given (None: unchanged), audited as the operator's."""
    if allow_customer_signup is not None:
        store.allow_customer_signup = allow_customer_signup
    if require_email_verification is not None:
        store.require_email_verification = require_email_verification
    record(
        session,
        "store.settings_changed",
        store_id=store.id,
        actor="cli",
        subject=str(store.id),
        allow_customer_signup=store.allow_customer_signup,
        require_email_verification=store.require_email_verification,
    )
    await session.commit()
    return store
