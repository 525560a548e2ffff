"""The realm a `/v2/authentication-realms/{realm_id}/…` path names: the caller's store's, or 404."""

import uuid
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.realms import AccountRealm, find_realm
from app.http.errors import NotFoundError
from app.http.security import ReadCaller, WriteCaller
from app.runtime.db import SessionDep
from app.runtime.passwords import PasswordHasher


async def _store_realm(
    session: AsyncSession, store_id: uuid.UUID, realm_id: uuid.UUID
) -> AccountRealm:
    realm = await find_realm(session, store_id=store_id)
    if realm is None or realm.id != realm_id:
        raise NotFoundError()
    return realm


async def _realm_for_reader(
    session: SessionDep, caller: ReadCaller, realm_id: uuid.UUID
) -> AccountRealm:
    return await _store_realm(session, caller.store_id, realm_id)


async def _realm_for_writer(
    session: SessionDep, caller: WriteCaller, realm_id: uuid.UUID
) -> AccountRealm:
    # The scope first: a read-only token is 403 whatever realm it names.
    return await _store_realm(session, caller.store_id, realm_id)


ReadableRealm = Annotated[AccountRealm, Depends(_realm_for_reader)]
WritableRealm = Annotated[AccountRealm, Depends(_realm_for_writer)]


def _hasher(request: Request) -> PasswordHasher:
    hasher: PasswordHasher = request.app.state.password_hasher
    return hasher


HasherDep = Annotated[PasswordHasher, Depends(_hasher)]
