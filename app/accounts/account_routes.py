"""`/v2/accounts` and `/v2/accounts/{account_id}/account-memberships` (backends)."""

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from app.accounts import accounts as service
from app.accounts import memberships
from app.accounts.accounts import (
    ACCOUNT_FILTERS,
    Account,
    AccountIn,
    AccountOut,
    AccountUpdate,
    account_json,
)
from app.accounts.members import get_member
from app.accounts.memberships import (
    AccountMembership,
    MembershipIn,
    MembershipOut,
    membership_json,
)
from app.accounts.realms import realm_of_store
from app.http.errors import NotFoundError, error_responses, found
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
from app.http.security import ReadCaller, WriteCaller
from app.oauth.revocation import apply_revocation
from app.runtime.db import SessionDep

router = APIRouter(
    prefix="/v2/accounts",
    tags=["accounts"],
    responses=error_responses(400, 401, 403),
    route_class=JsonApiRoute,
)
MEMBERSHIPS = "/{account_id}/account-memberships"
NO_SUCH_MEMBER = "The account member does not exist."


async def _account(session: SessionDep, caller: WriteCaller, account_id: uuid.UUID) -> Account:
    return found(
        await service.get_account(session, store_id=caller.store_id, account_id=account_id)
    )


AccountDep = Annotated[Account, Depends(_account)]


async def _readable_account(
    session: SessionDep, caller: ReadCaller, account_id: uuid.UUID
) -> Account:
    caller.check_account(account_id)  # an account token reads its own account only
    return found(
        await service.get_account(session, store_id=caller.store_id, account_id=account_id)
    )


ReadableAccount = Annotated[Account, Depends(_readable_account)]


async def _membership(
    session: SessionDep, account: AccountDep, membership_id: uuid.UUID
) -> AccountMembership:
    return found(
        await memberships.get_membership(
            session, account_id=account.id, membership_id=membership_id
        )
    )


MembershipDep = Annotated[AccountMembership, Depends(_membership)]


@router.post(
    "",
    status_code=201,
    summary="Create an account (write); a parent_id of no account of the store is a 404",
    responses=answers(Document[AccountOut], 404, 413, status=201),
)
async def create_account(body: Body[AccountIn], session: SessionDep, caller: WriteCaller) -> Any:
    account = await service.create_account(session, store_id=caller.store_id, data=body.data)
    return {"data": account_json(account)}


@router.get(
    "",
    summary="List accounts (write)",
    responses=answers(ListDocument[AccountOut]),
    openapi_extra=list_parameters(ACCOUNT_FILTERS),
)
async def list_accounts(request: Request, session: SessionDep, caller: WriteCaller) -> Any:
    page = page_of(request)
    found, total = await service.list_accounts(
        session,
        store_id=caller.store_id,
        page=page,
        conditions=filter_of(request, ACCOUNT_FILTERS),
    )
    return list_document(request, [account_json(a) for a in found], page=page, total=total)


@router.get(
    "/{account_id}",
    summary="An account (write; an account token: its own)",
    responses=answers(Document[AccountOut], 404),
)
async def get_account(account: ReadableAccount) -> Any:
    return {"data": account_json(account)}


@router.put(
    "/{account_id}",
    summary="Update an account (write)",
    responses=answers(Document[AccountOut], 404, 413),
)
async def update_account(
    body: Body[AccountUpdate], session: SessionDep, account: AccountDep
) -> Any:
    account = await service.update_account(session, account=account, data=body.data)
    return {"data": account_json(account)}


@router.delete(
    "/{account_id}",
    status_code=204,
    summary="Delete an account and end its members' tokens for it (write)",
    responses=error_responses(404, 409),
)
async def delete_account(request: Request, session: SessionDep, account: AccountDep) -> Response:
    for revocation in await memberships.delete_account(session, account=account):
        apply_revocation(request, revocation)
    return Response(status_code=204)


@router.post(
    MEMBERSHIPS,
    status_code=201,
    summary="Add a member to the account (write)",
    responses=answers(Document[MembershipOut], 404, 409, 413, status=201),
)
async def create_account_membership(
    body: Body[MembershipIn], session: SessionDep, caller: WriteCaller, account: AccountDep
) -> Any:
    realm = await realm_of_store(session, store_id=caller.store_id)
    member_id = body.data.account_member_id
    if await get_member(session, realm_id=realm.id, member_id=member_id) is None:
        raise NotFoundError(NO_SUCH_MEMBER)
    membership = await memberships.create_membership(
        session, account_id=account.id, member_id=member_id
    )
    return {"data": membership_json(membership)}


@router.get(
    MEMBERSHIPS,
    summary="The account's memberships (write)",
    responses=answers(ListDocument[MembershipOut], 404),
    openapi_extra=list_parameters(),
)
async def list_account_memberships(
    request: Request, session: SessionDep, account: AccountDep
) -> Any:
    page = page_of(request)
    found, total = await memberships.list_memberships(session, page=page, account_id=account.id)
    return list_document(request, [membership_json(m) for m in found], page=page, total=total)


@router.get(
    MEMBERSHIPS + "/{membership_id}",
    summary="An account membership (write)",
    responses=answers(Document[MembershipOut], 404),
)
async def get_account_membership(membership: MembershipDep) -> Any:
    return {"data": membership_json(membership)}


@router.delete(
    MEMBERSHIPS + "/{membership_id}",
    status_code=204,
    summary="Remove a member from the account, ending their tokens for it (write)",
    responses=error_responses(404),
)
async def delete_account_membership(
    request: Request, session: SessionDep, membership: MembershipDep
) -> Response:
    apply_revocation(request, await memberships.delete_membership(session, membership=membership))
    return Response(status_code=204)
