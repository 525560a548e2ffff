"""Account memberships: which members act for which accounts (many to many).

Removing a membership, or its account, ends the account tokens of that membership at once
(revocation kind `membership`): a member removed from an account cannot act for it any more.
"""

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import ForeignKey, UniqueConstraint, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from app.accounts.accounts import Account, delete_account_row
from app.accounts.realms import revoke_account_tokens
from app.http.jsonapi import ConflictError, Output, Page, TimestampsMeta, fetch_page, timestamps
from app.oauth.revocation import Revocation
from app.runtime.db import Base, utcnow

MEMBERSHIP_TYPE = "account_membership"
ALREADY_MEMBER = "This member already belongs to this account."


class AccountMembership(Base):
    __tablename__ = "account_membership"
    __table_args__ = (UniqueConstraint("account_id", "member_id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"))
    member_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("account_member.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class MembershipIn(BaseModel):
    """`{"data": {"type": "account_membership", "account_member_id"}}`."""

    model_config = ConfigDict(extra="ignore")
    type: str = Field(pattern=f"^{MEMBERSHIP_TYPE}$")
    account_member_id: uuid.UUID


class Reference(Output):
    id: uuid.UUID
    type: str


class ToOne(Output):
    data: Reference


class MembershipRelationships(Output):
    account: ToOne
    account_member: ToOne


class MembershipOut(Output):
    type: Literal["account_membership"]
    id: uuid.UUID
    relationships: MembershipRelationships
    meta: TimestampsMeta


def membership_json(membership: AccountMembership) -> dict[str, Any]:
    account = {"id": str(membership.account_id), "type": "account"}
    member = {"id": str(membership.member_id), "type": "account_member"}
    return {
        "type": MEMBERSHIP_TYPE,
        "id": str(membership.id),
        "relationships": {"account": {"data": account}, "account_member": {"data": member}},
        "meta": timestamps(membership.created_at, membership.updated_at),
    }


async def create_membership(
    session: AsyncSession, *, account_id: uuid.UUID, member_id: uuid.UUID, commit: bool = True
) -> AccountMembership:
    membership = AccountMembership(id=uuid.uuid4(), account_id=account_id, member_id=member_id)
    session.add(membership)
    if not commit:
        return membership
    try:
        await session.commit()
    except IntegrityError as error:  # the unique constraint decides races
        await session.rollback()
        raise ConflictError(ALREADY_MEMBER) from error
    return membership


async def get_membership(
    session: AsyncSession, *, account_id: uuid.UUID, membership_id: uuid.UUID
) -> AccountMembership | None:
    membership = await session.get(AccountMembership, membership_id)
    return membership if membership is not None and membership.account_id == account_id else None


async def list_memberships(
    session: AsyncSession,
    *,
    page: Page,
    account_id: uuid.UUID | None = None,
    member_id: uuid.UUID | None = None,
) -> tuple[list[AccountMembership], int]:
    where = []
    if account_id is not None:
        where.append(AccountMembership.account_id == account_id)
    if member_id is not None:
        where.append(AccountMembership.member_id == member_id)
    return await fetch_page(
        session,
        AccountMembership,
        where=where,
        page=page,
        order_by=[AccountMembership.created_at, AccountMembership.id],
    )


async def accounts_of_member(
    session: AsyncSession, *, member_id: uuid.UUID
) -> list[tuple[AccountMembership, Account]]:
    """Every membership of the member with its account, oldest first."""
    query = (
        select(AccountMembership, Account)
        .join(Account, Account.id == AccountMembership.account_id)
        .where(AccountMembership.member_id == member_id)
        .order_by(AccountMembership.created_at, AccountMembership.id)
    )
    return [(row[0], row[1]) for row in (await session.execute(query)).all()]


async def delete_membership(session: AsyncSession, *, membership: AccountMembership) -> Revocation:
    """Removes the member from the account and ends the tokens of this membership."""
    await session.execute(delete(AccountMembership).where(AccountMembership.id == membership.id))
    revocation = revoke_account_tokens(session, kind="membership", subject=membership.id)
    await session.commit()
    return revocation


async def delete_account(session: AsyncSession, *, account: Account) -> list[Revocation]:
    """Deletes the account and ends the tokens of every membership it had."""
    query = select(AccountMembership.id).where(AccountMembership.account_id == account.id)
    revocations = [
        revoke_account_tokens(session, kind="membership", subject=membership_id)
        for membership_id in await session.scalars(query)
    ]
    await delete_account_row(session, account=account)
    await session.commit()
    return revocations
