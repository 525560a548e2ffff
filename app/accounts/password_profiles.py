"""Password profiles of a realm: where account members' usernames and passwords live."""

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool
from sqlalchemy import ForeignKey, String, delete
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from app.accounts.realms import revoke_account_tokens
from app.http.jsonapi import Output, Page, StorableText, TimestampsMeta, fetch_page, timestamps
from app.oauth.revocation import Revocation
from app.runtime.db import Base, utcnow

PROFILE_TYPE = "password_profile"
# The 404 for a profile id (in a body) that names no profile of the realm.
PROFILE_ELSEWHERE = "The password profile does not exist in this realm."
UsernameFormat = Literal["email", "any"]


class PasswordProfile(Base):
    __tablename__ = "password_profile"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    realm_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("account_realm.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    username_format: Mapped[str] = mapped_column(String(8))
    enable_one_time_password_token: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class PasswordProfileIn(BaseModel):
    """`{"data": {"type": "password_profile", "name", "username_format"}}`."""

    model_config = ConfigDict(extra="ignore")
    type: str = Field(pattern=f"^{PROFILE_TYPE}$")
    name: StorableText = Field(min_length=1, max_length=200)
    username_format: UsernameFormat = "any"
    enable_one_time_password_token: StrictBool = False


class PasswordProfileUpdate(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: str = Field(pattern=f"^{PROFILE_TYPE}$")
    name: Annotated[StorableText, Field(min_length=1, max_length=200)] | None = None
    username_format: UsernameFormat | None = None
    enable_one_time_password_token: StrictBool | None = None


class PasswordProfileOut(Output):
    type: Literal["password_profile"]
    id: uuid.UUID
    name: str
    username_format: UsernameFormat
    enable_one_time_password_token: bool
    meta: TimestampsMeta


def profile_json(profile: PasswordProfile) -> dict[str, Any]:
    return {
        "type": PROFILE_TYPE,
        "id": str(profile.id),
        "name": profile.name,
        "username_format": profile.username_format,
        "enable_one_time_password_token": profile.enable_one_time_password_token,
        "meta": timestamps(profile.created_at, profile.updated_at),
    }


async def create_profile(
    session: AsyncSession, *, realm_id: uuid.UUID, data: PasswordProfileIn
) -> PasswordProfile:
    profile = PasswordProfile(
        id=uuid.uuid4(),
        realm_id=realm_id,
        name=data.name,
        username_format=data.username_format,
        enable_one_time_password_token=data.enable_one_time_password_token,
    )
    session.add(profile)
    await session.commit()
    return profile


async def get_profile(
    session: AsyncSession, *, realm_id: uuid.UUID, profile_id: uuid.UUID
) -> PasswordProfile | None:
    profile = await session.get(PasswordProfile, profile_id)
    return profile if profile is not None and profile.realm_id == realm_id else None


async def list_profiles(
    session: AsyncSession, *, realm_id: uuid.UUID, page: Page
) -> tuple[list[PasswordProfile], int]:
    return await fetch_page(
        session,
        PasswordProfile,
        where=[PasswordProfile.realm_id == realm_id],
        page=page,
        order_by=[PasswordProfile.created_at, PasswordProfile.id],
    )


async def update_profile(
    session: AsyncSession, *, profile: PasswordProfile, data: PasswordProfileUpdate
) -> PasswordProfile:
    """Changes what is given. A username format of `email` applies to usernames set from now on."""
    for name in ("name", "username_format", "enable_one_time_password_token"):
        value = getattr(data, name)
        if value is not None:
            setattr(profile, name, value)
    profile.updated_at = utcnow()
    await session.commit()
    return profile


async def delete_profile(session: AsyncSession, *, profile: PasswordProfile) -> Revocation:
    """Deletes the profile and every username and password in it (the foreign keys cascade),
    and ends the account tokens of every login through it, with one revocation whatever the
    number of members (tokens name their login's profile)."""
    await session.execute(delete(PasswordProfile).where(PasswordProfile.id == profile.id))
    revocation = revoke_account_tokens(session, kind="password_profile", subject=profile.id)
    await session.commit()
    return revocation
