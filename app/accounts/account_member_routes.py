"""`/v2/account-members`: the members of the store's realm, read-only (backends), and
`/v2/account-members/tokens`: their logins, which answer one account token per account."""

import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.convertors import register_url_convertor

from app.accounts import members as service
from app.accounts.logins import log_in_member, sign_up_member
from app.accounts.members import MEMBER_FILTERS, MEMBER_TYPE, AccountMember, MemberOut, member_json
from app.accounts.memberships import (
    MembershipOut,
    accounts_of_member,
    list_memberships,
    membership_json,
)
from app.accounts.password_profiles import PROFILE_ELSEWHERE, get_profile
from app.accounts.realm_paths import HasherDep
from app.accounts.realms import AccountRealm, realm_of_store
from app.accounts.tokens import AccountTokenIssuer, AccountTokenRequest, AccountTokensOut
from app.customers.lockout import LoginGuard
from app.customers.router import limit_logins
from app.http.errors import KeyhouseError, NotFoundError, error_responses
from app.http.jsonapi import (
    Body,
    Document,
    JsonApiRoute,
    ListDocument,
    Page,
    UuidConvertor,
    answers,
    filter_of,
    list_document,
    list_parameters,
    page_of,
)
from app.http.security import Caller, InsufficientScopeError, ReadCaller, WriteCaller
from app.oauth.revocation import RevocationList
from app.oauth.scopes import WRITE
from app.oauth.verification import REALM, InvalidTokenError, TokenVerifier
from app.runtime.db import SessionDep
from app.runtime.passwords import PasswordHasher
from app.runtime.ratelimit import client_host

LOGIN_DESCRIPTION = """\
`password`: a member's `username` and `password` in the password profile `password_profile_id`
of the store's realm. An unknown username, a wrong password and a profile of another realm get
the same 401; failures count towards the same lockout as customers' logins (429).

`account_management_authentication_token`, with the current account token in
`EP-Account-Management-Authentication-Token`: fresh tokens for every account of its member, for
switching accounts and for renewal (401 without one, or with one revoked or otherwise ended).

`self_signup` (where the realm's settings enable it, else 403): also the new member's `name` and
`email`; creates the member, their username and password in the profile and, if the realm says
so, an account named after them. A username taken in the profile is a 409.

The answer (201) holds one token per account the member belongs to, for
`EP-Account-Management-Authentication-Token`; a member of no account gets none.
"""


# `/v2/account-members/tokens` is then no member's path (UuidConvertor says why).
register_url_convertor("account_member_id", UuidConvertor())
MEMBER_PATH = "/{account_member_id:account_member_id}"

router = APIRouter(
    prefix="/v2/account-members",
    tags=["accounts"],
    responses=error_responses(400, 401, 403),
    route_class=JsonApiRoute,
)


@router.get(
    "",
    summary="List account members (write)",
    responses=answers(ListDocument[MemberOut]),
    openapi_extra=list_parameters(MEMBER_FILTERS),
)
async def list_account_members(request: Request, session: SessionDep, caller: WriteCaller) -> Any:
    page = page_of(request)
    conditions = filter_of(request, MEMBER_FILTERS)
    realm = await realm_of_store(session, store_id=caller.store_id)
    found, total = await service.list_members(
        session, realm_id=realm.id, page=page, conditions=conditions
    )
    data = [member_json(m, as_type=MEMBER_TYPE) for m in found]
    return list_document(request, data, page=page, total=total)


@router.get(
    MEMBER_PATH,
    summary="An account member (write; an account token: its own member)",
    responses=answers(Document[MemberOut], 404),
)
async def get_account_member(
    session: SessionDep, caller: ReadCaller, account_member_id: uuid.UUID
) -> Any:
    if not caller.is_backend:
        if caller.account is None:
            raise InsufficientScopeError(WRITE)
        if caller.account.member_id != account_member_id:
            raise NotFoundError()
    realm = await realm_of_store(session, store_id=caller.store_id)
    member = await service.get_member(session, realm_id=realm.id, member_id=account_member_id)
    if member is None:
        raise NotFoundError()
    return {"data": member_json(member, as_type=MEMBER_TYPE)}


@router.get(
    MEMBER_PATH + "/account-memberships",
    summary="The member's memberships, one per account (write)",
    responses=answers(ListDocument[MembershipOut], 404),
    openapi_extra=list_parameters(),
)
async def list_account_member_memberships(
    request: Request, session: SessionDep, caller: WriteCaller, account_member_id: uuid.UUID
) -> Any:
    realm = await realm_of_store(session, store_id=caller.store_id)
    if await service.get_member(session, realm_id=realm.id, member_id=account_member_id) is None:
        raise NotFoundError()
    page = page_of(request)
    found, total = await list_memberships(session, page=page, member_id=account_member_id)
    return list_document(request, [membership_json(m) for m in found], page=page, total=total)


class AccountTokenRequiredError(KeyhouseError):
    status_code = 401
    title = "Unauthorized"
    default_detail = (
        "Switching accounts needs the current account token in "
        "EP-Account-Management-Authentication-Token."
    )

    def response_headers(self) -> dict[str, str]:
        return {**self.headers, "WWW-Authenticate": f'Bearer {REALM}, error="invalid_token"'}


async def _current_member(
    request: Request, session: AsyncSession, caller: Caller
) -> tuple[AccountMember, int]:
    """The member of the account token sent beside the access token, for switching accounts and
    renewal, and their credential epoch now.

    The token was checked against this worker's copy of the revocations, which may lag another
    worker's by a moment; fresh tokens must not outlive a revocation made there. So the copy is
    brought up to date first, after the member was read: every change of credentials up to
    the epoch read has its revocation in it, and a token still valid is of that epoch, or the
    one its change spared (with which the member made it)."""
    if caller.account is None:
        raise AccountTokenRequiredError()
    member = await session.get(AccountMember, caller.account.member_id)
    revocations: RevocationList = request.app.state.revocations
    await revocations.poll()
    verifier: TokenVerifier = request.app.state.token_verifier
    if member is None or not verifier.still_valid(caller.account):
        raise InvalidTokenError()
    return member, member.credential_epoch


async def _log_in(
    request: Request,
    session: AsyncSession,
    caller: Caller,
    login: AccountTokenRequest,
    realm: AccountRealm,
    hasher: PasswordHasher,
    host: str,
) -> tuple[AccountMember, int]:
    """A password login, or a self sign-up: the member and their credential epoch."""
    assert login.password_profile_id and login.username and login.password  # the model checked
    profile = await get_profile(session, realm_id=realm.id, profile_id=login.password_profile_id)
    guard: LoginGuard = request.app.state.login_guard
    if login.authentication_mechanism == "self_signup":
        if profile is None:
            raise NotFoundError(PROFILE_ELSEWHERE)
        assert login.name and login.email  # the model checked
        member = await sign_up_member(
            session,
            hasher=hasher,
            guard=guard,
            realm=realm,
            profile=profile,
            name=login.name,
            email=login.email,
            username=login.username,
            password=login.password,
            host=host,
        )
        return member, member.credential_epoch
    return await log_in_member(
        session,
        hasher=hasher,
        guard=guard,
        store_id=caller.store_id,
        profile_id=login.password_profile_id,
        profile=profile,
        username=login.username,
        password=login.password,
        host=host,
    )


@router.post(
    "/tokens",
    status_code=201,
    summary="Log an account member in, or sign one up: a token per account (read)",
    description=LOGIN_DESCRIPTION,
    responses=answers(AccountTokensOut, 404, 409, 413, 429, status=201),
)
async def create_account_member_token(
    request: Request,
    body: Body[AccountTokenRequest],
    session: SessionDep,
    caller: ReadCaller,
    hasher: HasherDep,
) -> Any:
    host = client_host(request.scope)
    await limit_logins(request, caller, host)
    realm = await realm_of_store(session, store_id=caller.store_id)
    login = body.data
    if login.authentication_mechanism == "account_management_authentication_token":
        member, epoch = await _current_member(request, session, caller)
        assert caller.account is not None  # _current_member checked
        profile_id = caller.account.password_profile_id  # a renewal keeps its login's profile
    else:
        member, epoch = await _log_in(request, session, caller, login, realm, hasher, host)
        profile_id = login.password_profile_id
    issuer: AccountTokenIssuer = request.app.state.account_token_issuer
    tokens = await issuer.issue(
        member,
        await accounts_of_member(session, member_id=member.id),
        store_id=caller.store_id,
        epoch=epoch,
        password_profile_id=profile_id,
        ttl=realm.token_timeout_seconds,
    )
    page = Page(limit=max(1, len(tokens)), offset=0)
    document = list_document(request, [t.json() for t in tokens], page=page, total=len(tokens))
    document["meta"]["account_member_id"] = str(member.id)
    return JSONResponse(document, status_code=201)
