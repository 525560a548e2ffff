"""`/v2/authentication-realms/{realm_id}/password-profiles`: a realm's password profiles."""

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from app.accounts import password_profiles as service
from app.accounts.password_profiles import (
    PasswordProfile,
    PasswordProfileIn,
    PasswordProfileOut,
    PasswordProfileUpdate,
    profile_json,
)
from app.accounts.realm_paths import ReadableRealm, WritableRealm
from app.http.errors import error_responses, found
from app.http.jsonapi import (
    Body,
    Document,
    JsonApiRoute,
    ListDocument,
    answers,
    list_document,
    list_parameters,
    page_of,
)
from app.oauth.revocation import apply_revocation
from app.runtime.db import SessionDep

router = APIRouter(
    prefix="/v2/authentication-realms/{realm_id}/password-profiles",
    tags=["accounts"],
    responses=error_responses(400, 401, 403, 404),
    route_class=JsonApiRoute,
)


async def _readable_profile(
    session: SessionDep, realm: ReadableRealm, profile_id: uuid.UUID
) -> PasswordProfile:
    return found(await service.get_profile(session, realm_id=realm.id, profile_id=profile_id))


async def _writable_profile(
    session: SessionDep, realm: WritableRealm, profile_id: uuid.UUID
) -> PasswordProfile:
    return await _readable_profile(session, realm, profile_id)


ReadableProfile = Annotated[PasswordProfile, Depends(_readable_profile)]
WritableProfile = Annotated[PasswordProfile, Depends(_writable_profile)]


@router.post(
    "",
    status_code=201,
    summary="Create a password profile (write)",
    responses=answers(Document[PasswordProfileOut], 413, status=201),
)
async def create_password_profile(
    body: Body[PasswordProfileIn], session: SessionDep, realm: WritableRealm
) -> Any:
    profile = await service.create_profile(session, realm_id=realm.id, data=body.data)
    return {"data": profile_json(profile)}


@router.get(
    "",
    summary="List the realm's password profiles (read: a storefront logs members in with one)",
    responses=answers(ListDocument[PasswordProfileOut]),
    openapi_extra=list_parameters(),
)
async def list_password_profiles(
    request: Request, session: SessionDep, realm: ReadableRealm
) -> Any:
    page = page_of(request)
    profiles, total = await service.list_profiles(session, realm_id=realm.id, page=page)
    return list_document(request, [profile_json(p) for p in profiles], page=page, total=total)


@router.get(
    "/{profile_id}",
    summary="A password profile (read)",
    responses=answers(Document[PasswordProfileOut]),
)
async def get_password_profile(profile: ReadableProfile) -> Any:
    return {"data": profile_json(profile)}


@router.put(
    "/{profile_id}",
    summary="Update a password profile (write)",
    responses=answers(Document[PasswordProfileOut], 413),
)
async def update_password_profile(
    body: Body[PasswordProfileUpdate], session: SessionDep, profile: WritableProfile
) -> Any:
    profile = await service.update_profile(session, profile=profile, data=body.data)
    return {"data": profile_json(profile)}


@router.delete(
    "/{profile_id}",
    status_code=204,
    summary=(
        "Delete a password profile with every username and password in it, ending the tokens"
        " of logins through it (write)"
    ),
)
async def delete_password_profile(
    request: Request, session: SessionDep, profile: WritableProfile
) -> Response:
    apply_revocation(request, await service.delete_profile(session, profile=profile))
    return Response(status_code=204)
