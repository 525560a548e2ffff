"""`/v2/account-members`: the members of the store's realm, read-only (backends)."""

import uuid
from typing import Any

from fastapi import APIRouter, Request

from app.accounts import members as service
from app.accounts.members import MEMBER_FILTERS, MEMBER_TYPE, MemberOut, member_json
from app.accounts.memberships import MembershipOut, list_memberships, membership_json
from app.accounts.realms import realm_of_store
from app.http.errors import NotFoundError, error_responses
from app.http.jsonapi import (
    Document,
    JsonApiRoute,
    ListDocument,
    answers,
    filter_of,
    list_document,
    list_parameters,
    page_of,
)
from app.http.security import WriteCaller
from app.runtime.db import SessionDep

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
    "/{account_member_id}",
    summary="An account member (write)",
    responses=answers(Document[MemberOut], 404),
)
async def get_account_member(
    session: SessionDep, caller: WriteCaller, account_member_id: uuid.UUID
) -> Any:
    realm = await realm_of_store(session, store_id=caller.store_id)
    member = await service.get_member(session, realm_id=realm.id, member_id=account_member_id)
    if member is None:
        raise NotFoundError()
    return {"data": member_json(member, as_type=MEMBER_TYPE)}


@router.get(
    "/{account_member_id}/account-memberships",
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
