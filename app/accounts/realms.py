"""A store's account authentication realm and its settings (`/v2/settings/account-authentication`).

Every store has exactly one realm, made the first time anything asks for it: the realm holds the
store's password profiles and account members (its user authentication infos), and the settings
say whether shoppers may sign themselves up and how long account tokens live.
"""

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, StrictInt
from sqlalchemy import ForeignKey, String, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from app.http.jsonapi import Output, TimestampsMeta, timestamps, whole_number
from app.oauth.revocation import Revocation, SubjectKind, revoke_subject
from app.runtime.db import Base, utcnow

DEFAULT_TOKEN_TIMEOUT = 86_400
# Revocation rows must outlive every token they refuse, so a realm's tokens live 30 days at most.
MAX_TOKEN_TIMEOUT = 30 * 86_400
# A login that has read a member's accounts signs their tokens well within this. Removing the
# member, a membership or a password profile refuses its tokens signed up to this long after,
# not only those signed by then: a login in flight must not sign one that outlives the removal.
SIGNING_LAG_SECONDS = 60
MIN_TOKEN_TIMEOUT = 60
SETTINGS_TYPE = "account_authentication_settings"
SelfManagement = Literal["disabled", "update_only"]


class AccountRealm(Base):
    __tablename__ = "account_realm"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    store_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("store.id"), unique=True)
    enable_self_signup: Mapped[bool] = mapped_column(default=False)
    auto_create_account_for_account_members: Mapped[bool] = mapped_column(default=False)
    account_member_self_management: Mapped[str] = mapped_column(String(16), default="disabled")
    token_timeout_seconds: Mapped[int] = mapped_column(default=DEFAULT_TOKEN_TIMEOUT)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


async def find_realm(session: AsyncSession, *, store_id: uuid.UUID) -> AccountRealm | None:
    query = select(AccountRealm).where(AccountRealm.store_id == store_id)
    return (await session.scalars(query)).first()


async def realm_of_store(session: AsyncSession, *, store_id: uuid.UUID) -> AccountRealm:
    """The store's realm, created (and committed) the first time; of two first requests racing,
    the unique store id keeps one realm and the other reads it."""
    realm = await find_realm(session, store_id=store_id)
    if realm is not None:
        return realm
    realm = AccountRealm(id=uuid.uuid4(), store_id=store_id)
    session.add(realm)
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        found = await find_realm(session, store_id=store_id)
        assert found is not None  # the row that won the race
        return found
    return realm


class RealmSettingsUpdate(BaseModel):
    """`PUT /v2/settings/account-authentication`: the settings given change, the others stay."""

    model_config = ConfigDict(extra="ignore")
    type: str = Field(pattern=f"^{SETTINGS_TYPE}$")
    enable_self_signup: StrictBool | None = None
    auto_create_account_for_account_members: StrictBool | None = None
    account_member_self_management: SelfManagement | None = None
    # The bounds before `WholeNumber`'s validator: on it (or on the union), the schema would get
    # `ge`/`le`, which JSON Schema does not know, rather than `minimum` and `maximum`.
    account_management_authentication_token_timeout_secs: (
        Annotated[
            StrictInt,
            Field(ge=MIN_TOKEN_TIMEOUT, le=MAX_TOKEN_TIMEOUT),
            BeforeValidator(whole_number),
        ]
        | None
    ) = None


async def update_settings(
    session: AsyncSession, *, realm: AccountRealm, data: RealmSettingsUpdate
) -> AccountRealm:
    if data.enable_self_signup is not None:
        realm.enable_self_signup = data.enable_self_signup
    if data.auto_create_account_for_account_members is not None:
        realm.auto_create_account_for_account_members = data.auto_create_account_for_account_members
    if data.account_member_self_management is not None:
        realm.account_member_self_management = data.account_member_self_management
    if data.account_management_authentication_token_timeout_secs is not None:
        realm.token_timeout_seconds = data.account_management_authentication_token_timeout_secs
    realm.updated_at = utcnow()
    await session.commit()
    return realm


class RealmLinks(Output):
    self: str


class RealmReference(Output):
    id: uuid.UUID
    type: Literal["authentication_realm"]
    links: RealmLinks


class RealmRelationship(Output):
    data: RealmReference


class SettingsRelationships(Output):
    authentication_realm: RealmRelationship


class SettingsMeta(Output):
    client_id: str


class RealmSettingsOut(Output):
    """The settings on the wire (`settings_json`), as Elastic Path shapes them."""

    id: uuid.UUID
    type: Literal["account_authentication_settings"]
    enable_self_signup: bool
    auto_create_account_for_account_members: bool
    account_member_self_management: SelfManagement
    account_management_authentication_token_timeout_secs: int
    relationships: SettingsRelationships
    meta: SettingsMeta


def settings_json(realm: AccountRealm, *, base_url: str) -> dict[str, Any]:
    realm_id = str(realm.id)
    return {
        "id": realm_id,
        "type": SETTINGS_TYPE,
        "enable_self_signup": realm.enable_self_signup,
        "auto_create_account_for_account_members": realm.auto_create_account_for_account_members,
        "account_member_self_management": realm.account_member_self_management,
        "account_management_authentication_token_timeout_secs": realm.token_timeout_seconds,
        "relationships": {
            "authentication_realm": {
                "data": {
                    "id": realm_id,
                    "type": "authentication_realm",
                    "links": {"self": f"{base_url}v2/authentication-realms/{realm_id}"},
                }
            }
        },
        "meta": {"client_id": "account-management"},
    }


class RealmOrigin(Output):
    id: uuid.UUID
    type: Literal["account_authentication_settings"]


class OriginRelationship(Output):
    data: RealmOrigin


class RealmRelationships(Output):
    origin: OriginRelationship


class RealmOut(Output):
    """The realm itself (`GET /v2/authentication-realms/{id}`), as Elastic Path shapes one."""

    id: uuid.UUID
    type: Literal["authentication-realm"]
    name: str
    duplicate_email_policy: Literal["allowed"]
    redirect_uris: list[str]
    relationships: RealmRelationships
    meta: TimestampsMeta


def realm_json(realm: AccountRealm) -> dict[str, Any]:
    origin = {"id": str(realm.id), "type": SETTINGS_TYPE}
    return {
        "id": str(realm.id),
        "type": "authentication-realm",
        "name": "Account management",
        "duplicate_email_policy": "allowed",
        "redirect_uris": [],
        "relationships": {"origin": {"data": origin}},
        "meta": timestamps(realm.created_at, realm.updated_at),
    }


def revoke_account_tokens(
    session: AsyncSession, *, kind: SubjectKind, subject: uuid.UUID
) -> Revocation:
    """Ends the account tokens of a member, a membership or a password profile removed: those
    signed up to `SIGNING_LAG_SECONDS` from now, for as long as any realm's could live. The
    caller commits, and applies the revocation to its worker."""
    return revoke_subject(
        session,
        kind=kind,
        subject=str(subject),
        max_token_lifetime=MAX_TOKEN_TIMEOUT,
        issuing_lag_seconds=SIGNING_LAG_SECONDS,
    )
