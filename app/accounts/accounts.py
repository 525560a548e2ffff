"""Accounts: who buys (a company, a household), with members who act for it; a parent account
makes hierarchies. Carts and orders made with an account token belong to its account."""

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import ColumnElement, ForeignKey, String, delete, exists, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from app.http.errors import NotFoundError
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
from app.runtime.db import Base, utcnow

ACCOUNT_TYPE = "account"
NO_SUCH_PARENT = "The parent account does not exist."
HAS_CHILDREN = "This account is the parent of other accounts: delete or move them first."

Text200 = Annotated[StorableText, Field(min_length=1, max_length=200)]


class Account(Base):
    __tablename__ = "account"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    store_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("store.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    legal_name: Mapped[str] = mapped_column(String(200))
    registration_id: Mapped[str | None] = mapped_column(String(200))
    external_ref: Mapped[str | None] = mapped_column(String(200))
    parent_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("account.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


ACCOUNT_FILTERS = {
    "name": Filterable(Account.name),
    "legal_name": Filterable(Account.legal_name),
    "registration_id": Filterable(Account.registration_id),
    "external_ref": Filterable(Account.external_ref),
    "created_at": Filterable(Account.created_at, utc_datetime, ISO_DATETIME),
}


class AccountIn(BaseModel):
    """`{"data": {"type": "account", "name", "legal_name", "registration_id", "parent_id"}}`;
    `legal_name` is the name unless given."""

    model_config = ConfigDict(extra="ignore")
    type: str = Field(pattern=f"^{ACCOUNT_TYPE}$")
    name: Text200
    legal_name: Text200 | None = None
    registration_id: Text200 | None = None
    external_ref: Text200 | None = None
    parent_id: uuid.UUID | None = None


class AccountUpdate(BaseModel):
    """Changes the fields given; the parent of an account stays what it was made with."""

    model_config = ConfigDict(extra="ignore")
    type: str = Field(pattern=f"^{ACCOUNT_TYPE}$")
    name: Text200 | None = None
    legal_name: Text200 | None = None
    registration_id: Text200 | None = None
    external_ref: Text200 | None = None


class AccountReference(Output):
    id: uuid.UUID
    type: Literal["account"]


class ParentRelationship(Output):
    data: AccountReference


class AccountRelationships(Output):
    parent: ParentRelationship | None = None


class AccountOut(Output):
    type: Literal["account"]
    id: uuid.UUID
    name: str
    legal_name: str
    registration_id: str | None
    external_ref: str | None
    relationships: AccountRelationships
    meta: TimestampsMeta


def account_json(account: Account) -> dict[str, Any]:
    relationships: dict[str, Any] = {}
    if account.parent_id is not None:
        relationships["parent"] = {"data": {"id": str(account.parent_id), "type": ACCOUNT_TYPE}}
    return {
        "type": ACCOUNT_TYPE,
        "id": str(account.id),
        "name": account.name,
        "legal_name": account.legal_name,
        "registration_id": account.registration_id,
        "external_ref": account.external_ref,
        "relationships": relationships,
        "meta": timestamps(account.created_at, account.updated_at),
    }


def new_account(*, store_id: uuid.UUID, name: str, legal_name: str | None = None) -> Account:
    return Account(id=uuid.uuid4(), store_id=store_id, name=name, legal_name=legal_name or name)


async def create_account(session: AsyncSession, *, store_id: uuid.UUID, data: AccountIn) -> Account:
    parent_id = data.parent_id
    if parent_id and not await get_account(session, store_id=store_id, account_id=parent_id):
        raise NotFoundError(NO_SUCH_PARENT)
    account = new_account(store_id=store_id, name=data.name, legal_name=data.legal_name)
    account.registration_id = data.registration_id
    account.external_ref = data.external_ref
    account.parent_id = data.parent_id
    session.add(account)
    await session.commit()
    return account


async def get_account(
    session: AsyncSession, *, store_id: uuid.UUID, account_id: uuid.UUID
) -> Account | None:
    account = await session.get(Account, account_id)
    return account if account is not None and account.store_id == store_id else None


async def list_accounts(
    session: AsyncSession,
    *,
    store_id: uuid.UUID,
    page: Page,
    conditions: Sequence[ColumnElement[bool]] = (),
) -> tuple[list[Account], int]:
    return await fetch_page(
        session,
        Account,
        where=[Account.store_id == store_id, *conditions],
        page=page,
        order_by=[Account.created_at, Account.id],
    )


async def update_account(
    session: AsyncSession, *, account: Account, data: AccountUpdate
) -> Account:
    for name in ("name", "legal_name", "registration_id", "external_ref"):
        value = getattr(data, name)
        if value is not None:
            setattr(account, name, value)
    account.updated_at = utcnow()
    await session.commit()
    return account


async def delete_account_row(session: AsyncSession, *, account: Account) -> None:
    """Deletes the account (its memberships cascade), in the caller's transaction; refused
    while it is the parent of another."""
    has_children = await session.scalar(select(exists().where(Account.parent_id == account.id)))
    if has_children:
        raise ConflictError(HAS_CHILDREN)
    await session.execute(delete(Account).where(Account.id == account.id))
