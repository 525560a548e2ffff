"""`/v2/authentication-realms/{realm_id}/user-authentication-info`: a realm's members (their
identity), and under each, `…/user-authentication-password-profile-info`: their usernames and
passwords, one per password profile. Backends (write) only; but a member may change their own
username and password with their account token where the realm allows it."""

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from app.accounts import members as service
from app.accounts import passwords
from app.accounts.members import (
    MEMBER_FILTERS,
    AccountMember,
    MemberIn,
    MemberOut,
    MemberUpdate,
    member_json,
)
from app.accounts.password_profiles import PROFILE_ELSEWHERE, get_profile
from app.accounts.passwords import (
    MemberPassword,
    MemberPasswordIn,
    MemberPasswordOut,
    MemberPasswordUpdate,
    password_json,
)
from app.accounts.realm_paths import HasherDep, WritableRealm
from app.accounts.realms import find_realm
from app.http.errors import KeyhouseError, NotFoundError, error_responses, found
from app.http.jsonapi import (
    Body,
    Document,
    JsonApiRoute,
    ListDocument,
    answers,
    filter_of,
    list_document,
    list_parameters,
    page_of,
)
from app.http.security import InsufficientScopeError, ReadCaller
from app.oauth.revocation import apply_revocation
from app.oauth.scopes import WRITE
from app.runtime.db import SessionDep

router = APIRouter(
    prefix="/v2/authentication-realms/{realm_id}/user-authentication-info",
    tags=["accounts"],
    responses=error_responses(400, 401, 403, 404),
    route_class=JsonApiRoute,
)
PASSWORDS = "/{info_id}/user-authentication-password-profile-info"


async def _member(session: SessionDep, realm: WritableRealm, info_id: uuid.UUID) -> AccountMember:
    return found(await service.get_member(session, realm_id=realm.id, member_id=info_id))


MemberDep = Annotated[AccountMember, Depends(_member)]


async def _password(
    session: SessionDep, member: MemberDep, password_info_id: uuid.UUID
) -> MemberPassword:
    return found(
        await passwords.get_password(session, member_id=member.id, password_id=password_info_id)
    )


PasswordDep = Annotated[MemberPassword, Depends(_password)]


class SelfManagementDisabledError(KeyhouseError):
    status_code = 403
    title = "Forbidden"
    default_detail = "This store's account members may not change their own credentials."


async def _managed_member(
    session: SessionDep, caller: ReadCaller, realm_id: uuid.UUID, info_id: uuid.UUID
) -> AccountMember:
    """A backend's member, or a member's own with their account token where the realm's
    `account_member_self_management` is `update_only`; another member is 404."""
    if not caller.is_backend and caller.account is None:
        raise InsufficientScopeError(WRITE)
    realm = await find_realm(session, store_id=caller.store_id)
    if realm is None or realm.id != realm_id:
        raise NotFoundError()
    if not caller.is_backend:
        assert caller.account is not None
        if caller.account.member_id != info_id:
            raise NotFoundError()
        if realm.account_member_self_management != "update_only":
            raise SelfManagementDisabledError()
    return found(await service.get_member(session, realm_id=realm.id, member_id=info_id))


ManagedMember = Annotated[AccountMember, Depends(_managed_member)]


async def _managed_password(
    session: SessionDep, member: ManagedMember, password_info_id: uuid.UUID
) -> MemberPassword:
    return found(
        await passwords.get_password(session, member_id=member.id, password_id=password_info_id)
    )


ManagedPassword = Annotated[MemberPassword, Depends(_managed_password)]


@router.post(
    "",
    status_code=201,
    summary="Create a member: their name and email (write)",
    responses=answers(Document[MemberOut], 413, status=201),
)
async def create_user_authentication_info(
    body: Body[MemberIn], session: SessionDep, realm: WritableRealm
) -> Any:
    member = await service.create_member(session, realm_id=realm.id, data=body.data)
    return {"data": member_json(member)}


@router.get(
    "",
    summary="List the realm's members (write)",
    responses=answers(ListDocument[MemberOut]),
    openapi_extra=list_parameters(MEMBER_FILTERS),
)
async def list_user_authentication_info(
    request: Request, session: SessionDep, realm: WritableRealm
) -> Any:
    page = page_of(request)
    conditions = filter_of(request, MEMBER_FILTERS)
    found, total = await service.list_members(
        session, realm_id=realm.id, page=page, conditions=conditions
    )
    return list_document(request, [member_json(m) for m in found], page=page, total=total)


@router.get("/{info_id}", summary="A member (write)", responses=answers(Document[MemberOut]))
async def get_user_authentication_info(member: MemberDep) -> Any:
    return {"data": member_json(member)}


@router.put(
    "/{info_id}",
    summary="Update a member's name or email (write)",
    responses=answers(Document[MemberOut], 413),
)
async def update_user_authentication_info(
    body: Body[MemberUpdate], session: SessionDep, member: MemberDep
) -> Any:
    member = await service.update_member(session, member=member, data=body.data)
    return {"data": member_json(member)}


@router.delete(
    "/{info_id}",
    status_code=204,
    summary="Delete a member, their passwords and memberships, and end their tokens (write)",
)
async def delete_user_authentication_info(
    request: Request, session: SessionDep, member: MemberDep
) -> Response:
    apply_revocation(request, await service.delete_member(session, member=member))
    return Response(status_code=204)


@router.post(
    PASSWORDS,
    status_code=201,
    summary="Give a member a username and password in a password profile (write)",
    responses=answers(Document[MemberPasswordOut], 409, 413, status=201),
)
async def create_user_authentication_password_profile_info(
    body: Body[MemberPasswordIn],
    session: SessionDep,
    realm: WritableRealm,
    member: MemberDep,
    hasher: HasherDep,
) -> Any:
    data = body.data
    profile = await get_profile(session, realm_id=realm.id, profile_id=data.password_profile_id)
    if profile is None:
        raise NotFoundError(PROFILE_ELSEWHERE)
    row = await passwords.create_password(
        session, hasher=hasher, member=member, profile=profile, data=data
    )
    return {"data": password_json(row)}


@router.get(
    PASSWORDS,
    summary="A member's usernames, one per password profile (write)",
    responses=answers(ListDocument[MemberPasswordOut]),
    openapi_extra=list_parameters(),
)
async def list_user_authentication_password_profile_info(
    request: Request, session: SessionDep, member: MemberDep
) -> Any:
    page = page_of(request)
    rows = await passwords.list_passwords(session, member_id=member.id)
    shown = rows[page.offset : page.offset + page.limit]
    return list_document(request, [password_json(r) for r in shown], page=page, total=len(rows))


@router.get(
    PASSWORDS + "/{password_info_id}",
    summary="A member's username in one password profile (write)",
    responses=answers(Document[MemberPasswordOut]),
)
async def get_user_authentication_password_profile_info(row: PasswordDep) -> Any:
    return {"data": password_json(row)}


@router.put(
    PASSWORDS + "/{password_info_id}",
    summary="Change a member's username or password (write; a member's own account token where "
    "the realm allows self-management); a new password ends the member's other tokens",
    responses=answers(Document[MemberPasswordOut], 409, 413),
)
async def update_user_authentication_password_profile_info(
    request: Request,
    body: Body[MemberPasswordUpdate],
    session: SessionDep,
    caller: ReadCaller,
    member: ManagedMember,
    row: ManagedPassword,
    hasher: HasherDep,
) -> Any:
    spared = caller.account.token_id if caller.account is not None else None
    revocation = await passwords.update_password(
        session, hasher=hasher, member=member, row=row, data=body.data, spared_token_id=spared
    )
    if revocation is not None:
        apply_revocation(request, revocation)
    return {"data": password_json(row)}


@router.delete(
    PASSWORDS + "/{password_info_id}",
    status_code=204,
    summary="Remove a member's username and password from a profile, ending their tokens (write)",
    responses=error_responses(409),
)
async def delete_user_authentication_password_profile_info(
    request: Request, session: SessionDep, member: MemberDep, row: PasswordDep
) -> Response:
    apply_revocation(request, await passwords.delete_password(session, member=member, row=row))
    return Response(status_code=204)
