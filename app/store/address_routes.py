"""`/v2/customers/{customer_id}/addresses`: a backend for any customer of its store, a shopper
for their own; to anyone else the customer and its addresses do not exist (404)."""

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response

from app.customers.router import CustomerDep
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
from app.http.security import ReadCaller
from app.runtime.db import SessionDep
from app.store import addresses as service
from app.store.addresses import Address, AddressIn, AddressOut, AddressUpdate

router = APIRouter(
    prefix="/v2/customers/{customer_id}/addresses",
    tags=["addresses"],
    # Every route names a customer, who may not exist (or not for this token): 404.
    responses=error_responses(400, 401, 403, 404),
    route_class=JsonApiRoute,
)


async def _address_for(
    session: SessionDep, caller: ReadCaller, customer: CustomerDep, address_id: uuid.UUID
) -> Address:
    return found(
        await service.get_address(
            session, store_id=caller.store_id, customer_id=customer.id, address_id=address_id
        )
    )


AddressDep = Annotated[Address, Depends(_address_for)]


@router.get(
    "",
    summary="List a customer's addresses (write, or that customer's own token)",
    responses=answers(ListDocument[AddressOut]),
    openapi_extra=list_parameters(),
)
async def list_addresses(
    request: Request, session: SessionDep, caller: ReadCaller, customer: CustomerDep
) -> Any:
    page = page_of(request)
    addresses, total = await service.list_addresses(
        session, store_id=caller.store_id, customer_id=customer.id, page=page
    )
    data = [service.address_json(address) for address in addresses]
    return list_document(request, data, page=page, total=total)


@router.get(
    "/{address_id}",
    summary="An address (write, or that customer's own token)",
    responses=answers(Document[AddressOut]),
)
async def get_address(address: AddressDep) -> Any:
    return {"data": service.address_json(address)}


@router.post(
    "",
    status_code=201,
    summary="Add an address (write, or that customer's own token)",
    responses=answers(Document[AddressOut], 413, status=201),
)
async def create_address(
    body: Body[AddressIn], session: SessionDep, caller: ReadCaller, customer: CustomerDep
) -> Any:
    address = await service.create_address(
        session, store_id=caller.store_id, customer_id=customer.id, data=body.data
    )
    return {"data": service.address_json(address)}


@router.put(
    "/{address_id}",
    summary="Update an address (write, or that customer's own token)",
    responses=answers(Document[AddressOut], 413),
)
async def update_address(
    body: Body[AddressUpdate], session: SessionDep, address: AddressDep
) -> Any:
    updated = await service.update_address(session, address=address, data=body.data)
    return {"data": service.address_json(updated)}


@router.delete(
    "/{address_id}",
    status_code=204,
    response_class=Response,
    summary="Delete an address (write, or that customer's own token)",
)
async def delete_address(session: SessionDep, address: AddressDep) -> Response:
    await service.delete_address(session, address=address)
    return Response(status_code=204)
