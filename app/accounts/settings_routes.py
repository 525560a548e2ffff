"""`/v2/settings/account-authentication`: the store's account realm and its settings; and
`/v2/authentication-realms/{realm_id}`: the realm itself."""

from typing import Any

from fastapi import APIRouter, Request

from app.accounts.realm_paths import WritableRealm
from app.accounts.realms import (
    RealmOut,
    RealmSettingsOut,
    RealmSettingsUpdate,
    realm_json,
    realm_of_store,
    settings_json,
    update_settings,
)
from app.http.errors import error_responses
from app.http.jsonapi import Body, Document, JsonApiRoute, answers
from app.http.security import ReadCaller, WriteCaller
from app.runtime.db import SessionDep

router = APIRouter(
    prefix="/v2/settings/account-authentication",
    tags=["accounts"],
    responses=error_responses(400, 401, 403),
    route_class=JsonApiRoute,
)


@router.get(
    "",
    summary="The store's account authentication settings and realm (read)",
    description="A storefront may read them: the realm id names its password profiles.",
    responses=answers(Document[RealmSettingsOut]),
)
async def get_account_authentication_settings(
    request: Request, session: SessionDep, caller: ReadCaller
) -> Any:
    realm = await realm_of_store(session, store_id=caller.store_id)
    return {"data": settings_json(realm, base_url=str(request.base_url))}


@router.put(
    "",
    summary="Change the account authentication settings (write)",
    responses=answers(Document[RealmSettingsOut], 413),
)
async def update_account_authentication_settings(
    request: Request, body: Body[RealmSettingsUpdate], session: SessionDep, caller: WriteCaller
) -> Any:
    realm = await realm_of_store(session, store_id=caller.store_id)
    realm = await update_settings(session, realm=realm, data=body.data)
    return {"data": settings_json(realm, base_url=str(request.base_url))}


realm_router = APIRouter(
    prefix="/v2/authentication-realms",
    tags=["accounts"],
    responses=error_responses(400, 401, 403, 404),
    route_class=JsonApiRoute,
)


@realm_router.get(
    "/{realm_id}",
    summary="The store's account authentication realm (write)",
    responses=answers(Document[RealmOut]),
)
async def get_authentication_realm(realm: WritableRealm) -> Any:
    return {"data": realm_json(realm)}
