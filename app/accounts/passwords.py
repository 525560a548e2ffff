"""A member's username and password in a password profile (Elastic Path's user authentication
password profile info), hashed as customers' passwords are (app/runtime/passwords.py).

Usernames are unique within a profile whatever their case, and a member has at most one in each
profile. Setting or removing a password moves the member's credential epoch, in the same
transaction, which ends their account tokens of earlier epochs on every worker
(app/oauth/revocation.py).
"""

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import ForeignKey, String, UniqueConstraint, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from app.accounts.members import AccountMember
from app.accounts.password_profiles import PasswordProfile
from app.accounts.realms import MAX_TOKEN_TIMEOUT
from app.customers.credentials import CredentialsChangedError
from app.customers.customers import release_connection
from app.customers.emails import is_email
from app.http.jsonapi import (
    BadRequestError,
    ConflictError,
    Output,
    StorableText,
    TimestampsMeta,
    timestamps,
)
from app.oauth.revocation import Revocation, revoke_credentials
from app.runtime.db import Base, utcnow
from app.runtime.passwords import PasswordHasher

PASSWORD_INFO_TYPE = "user_authentication_password_profile_info"  # noqa: S105 (a type)
USERNAME_TAKEN = "This username is taken in this password profile, or the member has one there."
NOT_AN_EMAIL = "This password profile's usernames are email addresses."
MIN_PASSWORD_LENGTH = 8


class MemberPassword(Base):
    __tablename__ = "account_member_password"
    __table_args__ = (
        UniqueConstraint("password_profile_id", "username_key"),
        UniqueConstraint("member_id", "password_profile_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    member_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("account_member.id", ondelete="CASCADE"), index=True
    )
    password_profile_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("password_profile.id", ondelete="CASCADE")
    )
    username: Mapped[str] = mapped_column(String(254))
    username_key: Mapped[str] = mapped_column(String(254))
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


Username = StorableText
Password = str


class MemberPasswordIn(BaseModel):
    """`{"data": {"type": "user_authentication_password_profile_info", "username", "password",
    "password_profile_id"}}`."""

    model_config = ConfigDict(extra="ignore")
    type: str = Field(pattern=f"^{PASSWORD_INFO_TYPE}$")
    password_profile_id: uuid.UUID
    username: Username = Field(min_length=1, max_length=254)
    password: Password = Field(min_length=MIN_PASSWORD_LENGTH, max_length=1024)


class MemberPasswordUpdate(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: str = Field(pattern=f"^{PASSWORD_INFO_TYPE}$")
    username: Username | None = Field(default=None, min_length=1, max_length=254)
    password: Password | None = Field(default=None, min_length=MIN_PASSWORD_LENGTH, max_length=1024)


class MemberPasswordOut(Output):
    """Never the password."""

    type: Literal["user_authentication_password_profile_info"]
    id: uuid.UUID
    username: str
    password_profile_id: uuid.UUID
    meta: TimestampsMeta


def password_json(row: MemberPassword) -> dict[str, Any]:
    return {
        "type": PASSWORD_INFO_TYPE,
        "id": str(row.id),
        "username": row.username,
        "password_profile_id": str(row.password_profile_id),
        "meta": timestamps(row.created_at, row.updated_at),
    }


def username_key(username: str) -> str:
    return username.strip().lower()


def check_username(profile: PasswordProfile, username: str) -> None:
    if profile.username_format == "email" and not is_email(username.strip()):
        raise BadRequestError(NOT_AN_EMAIL)


@asynccontextmanager
async def _unique(session: AsyncSession) -> AsyncIterator[None]:
    """A taken username, found by the statements within, is a 409 (and nothing is written)."""
    try:
        yield
    except IntegrityError as error:  # the unique constraints decide races, not a read first
        await session.rollback()
        raise ConflictError(USERNAME_TAKEN) from error


async def _commit_unique(session: AsyncSession) -> None:
    async with _unique(session):
        await session.commit()


def new_password(
    *, member_id: uuid.UUID, profile: PasswordProfile, username: str, password_hash: str
) -> MemberPassword:
    check_username(profile, username)
    return MemberPassword(
        id=uuid.uuid4(),
        member_id=member_id,
        password_profile_id=profile.id,
        username=username.strip(),
        username_key=username_key(username),
        password_hash=password_hash,
    )


async def create_password(
    session: AsyncSession,
    *,
    hasher: PasswordHasher,
    member: AccountMember,
    profile: PasswordProfile,
    data: MemberPasswordIn,
) -> MemberPassword:
    check_username(profile, data.username)
    await release_connection(session)
    password_hash = await hasher.hash(data.password)
    row = new_password(
        member_id=member.id, profile=profile, username=data.username, password_hash=password_hash
    )
    session.add(row)
    await _commit_unique(session)
    return row


async def get_password(
    session: AsyncSession, *, member_id: uuid.UUID, password_id: uuid.UUID
) -> MemberPassword | None:
    row = await session.get(MemberPassword, password_id)
    return row if row is not None and row.member_id == member_id else None


async def list_passwords(session: AsyncSession, *, member_id: uuid.UUID) -> list[MemberPassword]:
    query = (
        select(MemberPassword)
        .where(MemberPassword.member_id == member_id)
        .order_by(MemberPassword.created_at, MemberPassword.id)
    )
    return list(await session.scalars(query))


async def update_password(
    session: AsyncSession,
    *,
    hasher: PasswordHasher,
    member: AccountMember,
    row: MemberPassword,
    data: MemberPasswordUpdate,
    spared_token_id: str | None = None,
) -> Revocation | None:
    """A new username and/or password; a new password moves the member's credential epoch and
    returns the revocation of their earlier tokens (but `spared_token_id`, the one a member
    changed their own password with), for the caller to apply once committed. One commit: a
    taken username (409) changes nothing, the password included."""
    if data.username is not None:
        profile = await session.get(PasswordProfile, row.password_profile_id)
        assert profile is not None  # the foreign key
        check_username(profile, data.username)
    password_hash = None
    if data.password is not None:  # first: the hash runs with no transaction open
        await release_connection(session)
        password_hash = await hasher.hash(data.password)
    if data.username is not None:
        row.username, row.username_key = data.username.strip(), username_key(data.username)
    row.updated_at = utcnow()
    revocation = None
    async with _unique(session):  # a taken username fails the epoch's UPDATE (a flush) or commit
        if password_hash is not None:
            row.password_hash = password_hash
            revocation = await _move_epoch(session, member, spared_token_id)
        await session.commit()
    return revocation


async def _move_epoch(
    session: AsyncSession, member: AccountMember, spared_token_id: str | None
) -> Revocation:
    """Moves the member's epoch on from the one this request read, or raises (409) if another
    change moved it since: this one's revocation would spare the tokens of the other's."""
    epoch = member.credential_epoch
    moved = await session.execute(
        update(AccountMember)
        .where(AccountMember.id == member.id, AccountMember.credential_epoch == epoch)
        .values(credential_epoch=epoch + 1, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if moved.rowcount != 1:  # type: ignore[attr-defined]
        raise CredentialsChangedError()
    member.credential_epoch = epoch + 1
    return revoke_credentials(
        session,
        subject=str(member.id),
        epoch=epoch + 1,
        max_token_lifetime=MAX_TOKEN_TIMEOUT,
        spared_token_id=spared_token_id,
    )


async def delete_password(
    session: AsyncSession, *, member: AccountMember, row: MemberPassword
) -> Revocation:
    """Removes a username and password: a change of credentials too, so it ends the member's
    tokens as a new password does (returns the revocation, for the caller to apply)."""
    await session.execute(delete(MemberPassword).where(MemberPassword.id == row.id))
    revocation = await _move_epoch(session, member, None)
    await session.commit()
    return revocation


async def authenticate_member(
    session: AsyncSession,
    *,
    hasher: PasswordHasher,
    profile_id: uuid.UUID | None,
    username: str,
    password: str,
) -> tuple[AccountMember, int] | None:
    """The member and the credential epoch read with the hash, if the password matches; an
    unknown username, or no profile (None: none of the realm's), costs the same hash as a
    wrong password."""
    found = None
    if profile_id is not None:
        query = (
            select(MemberPassword, AccountMember)
            .join(AccountMember, AccountMember.id == MemberPassword.member_id)
            .where(
                MemberPassword.password_profile_id == profile_id,
                MemberPassword.username_key == username_key(username),
            )
        )
        found = (await session.execute(query)).first()
    await release_connection(session)
    row, member = found if found is not None else (None, None)
    check = await hasher.check(password, row.password_hash if row else None)
    if row is None or member is None or not check.matches:
        return None
    if check.upgraded_hash is not None:
        await session.execute(
            update(MemberPassword)
            .where(
                MemberPassword.id == row.id,
                MemberPassword.password_hash == row.password_hash,
            )
            .values(password_hash=check.upgraded_hash)
            .execution_options(synchronize_session=False)
        )
        await session.commit()
    return member, member.credential_epoch
