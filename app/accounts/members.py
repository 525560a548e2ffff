"""Account members: the user authentication infos of a store's realm (one row, two names).

`/v2/authentication-realms/{realm}/user-authentication-info` writes them; `/v2/account-members`
reads the same rows under the same ids, as Elastic Path does. A member's credential epoch moves
with every change of a password of theirs, and ends their account tokens of earlier epochs.
"""

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import ColumnElement, ForeignKey, String, delete, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from app.accounts.realms import revoke_account_tokens
from app.customers.emails import Email
from app.http.jsonapi import (
    ISO_DATETIME,
    Filterable,
    Output,
    Page,
    StorableText,
    TimestampsMeta,
    fetch_page,
    timestamps,
    utc_datetime,
)
from app.oauth.revocation import Revocation
from app.runtime.db import Base, utcnow

INFO_TYPE = "user_authentication_info"
MEMBER_TYPE = "account_member"


class AccountMember(Base):
    __tablename__ = "account_member"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    realm_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("account_realm.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(254))
    email_key: Mapped[str | None] = mapped_column(String(254))
    # Moves with every change of one of the member's passwords (passwords.py).
    credential_epoch: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


MEMBER_FILTERS = {
    "name": Filterable(AccountMember.name),
    "email": Filterable(AccountMember.email_key, str.lower),
    "created_at": Filterable(AccountMember.created_at, utc_datetime, ISO_DATETIME),
}


class MemberIn(BaseModel):
    """`{"data": {"type": "user_authentication_info", "name", "email"}}`."""

    model_config = ConfigDict(extra="ignore")
    type: str = Field(pattern=f"^{INFO_TYPE}$")
    name: StorableText = Field(min_length=1, max_length=200)
    email: Email | None = None


class MemberUpdate(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: str = Field(pattern=f"^{INFO_TYPE}$")
    name: Annotated[StorableText, Field(min_length=1, max_length=200)] | None = None
    email: Email | None = None


class MemberOut(Output):
    """A user authentication info (or, with its other type, an account member) on the wire."""

    type: Literal["user_authentication_info", "account_member"]
    id: uuid.UUID
    name: str
    email: str | None
    meta: TimestampsMeta


def member_json(member: AccountMember, *, as_type: str = INFO_TYPE) -> dict[str, Any]:
    return {
        "type": as_type,
        "id": str(member.id),
        "name": member.name,
        "email": member.email,
        "meta": timestamps(member.created_at, member.updated_at),
    }


def new_member(*, realm_id: uuid.UUID, name: str, email: str | None) -> AccountMember:
    return AccountMember(
        id=uuid.uuid4(),
        realm_id=realm_id,
        name=name,
        email=email,
        email_key=email.lower() if email else None,
        credential_epoch=0,
    )


async def create_member(
    session: AsyncSession, *, realm_id: uuid.UUID, data: MemberIn
) -> AccountMember:
    member = new_member(realm_id=realm_id, name=data.name, email=data.email)
    session.add(member)
    await session.commit()
    return member


async def get_member(
    session: AsyncSession, *, realm_id: uuid.UUID, member_id: uuid.UUID
) -> AccountMember | None:
    member = await session.get(AccountMember, member_id)
    return member if member is not None and member.realm_id == realm_id else None


async def list_members(
    session: AsyncSession,
    *,
    realm_id: uuid.UUID,
    page: Page,
    conditions: Sequence[ColumnElement[bool]] = (),
) -> tuple[list[AccountMember], int]:
    return await fetch_page(
        session,
        AccountMember,
        where=[AccountMember.realm_id == realm_id, *conditions],
        page=page,
        order_by=[AccountMember.created_at, AccountMember.id],
    )


async def update_member(
    session: AsyncSession, *, member: AccountMember, data: MemberUpdate
) -> AccountMember:
    if data.name is not None:
        member.name = data.name
    if data.email is not None:
        member.email, member.email_key = data.email, data.email.lower()
    member.updated_at = utcnow()
    await session.commit()
    return member


async def delete_member(session: AsyncSession, *, member: AccountMember) -> Revocation:
    """Deletes the member with their passwords and memberships (the foreign keys cascade) and
    ends every account token they hold; the caller applies the revocation to its worker."""
    await session.execute(delete(AccountMember).where(AccountMember.id == member.id))
    revocation = revoke_account_tokens(session, kind="account_member", subject=member.id)
    await session.commit()
    return revocation
