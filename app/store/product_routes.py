"""`/v2/products`: storefronts read live products; backends manage the catalogue."""

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response

from app.db import SessionDep
from app.errors import NotFoundError, error_responses
from app.jsonapi import (
    Body,
    Document,
    ListDocument,
    answers,
    filter_of,
    list_document,
    list_parameters,
    page_of,
)
from app.security import ReadCaller, WriteCaller
from app.store import products as service
from app.store.products import PRODUCT_FILTERS, Product, ProductIn, ProductOut, ProductUpdate

router = APIRouter(
    prefix="/v2/products", tags=["products"], responses=error_responses(400, 401, 403)
)


async def _product_for(session: SessionDep, caller: ReadCaller, product_id: uuid.UUID) -> Product:
    # A draft does not exist for a storefront: 404, as for an unknown id.
    product = await service.get_product(
        session, store_id=caller.store_id, product_id=product_id, live_only=not caller.is_backend
    )
    if product is None:
        raise NotFoundError()
    return product


ProductDep = Annotated[Product, Depends(_product_for)]


@router.get(
    "",
    summary="List products (read; live products only without write)",
    responses=answers(ListDocument[ProductOut]),
    openapi_extra=list_parameters(PRODUCT_FILTERS),
)
async def list_products(request: Request, session: SessionDep, caller: ReadCaller) -> Any:
    page = page_of(request)
    products, total = await service.list_products(
        session,
        store_id=caller.store_id,
        page=page,
        conditions=filter_of(request, PRODUCT_FILTERS),
        live_only=not caller.is_backend,
    )
    data = [service.product_json(p) for p in products]
    return list_document(request, data, page=page, total=total)


@router.get(
    "/{product_id}",
    summary="A product (read; live products only without write)",
    responses=answers(Document[ProductOut], 404),
)
async def get_product(product: ProductDep) -> Any:
    return {"data": service.product_json(product)}


@router.post(
    "",
    status_code=201,
    summary="Create a product (write)",
    responses=answers(Document[ProductOut], 409, 413, status=201),
)
async def create_product(body: Body[ProductIn], session: SessionDep, caller: WriteCaller) -> Any:
    product = await service.create_product(session, store_id=caller.store_id, data=body.data)
    return {"data": service.product_json(product)}


@router.put(
    "/{product_id}",
    summary="Update a product (write)",
    responses=answers(Document[ProductOut], 404, 409, 413),
)
async def update_product(
    body: Body[ProductUpdate], session: SessionDep, _caller: WriteCaller, product: ProductDep
) -> Any:
    updated = await service.update_product(session, product=product, data=body.data)
    return {"data": service.product_json(updated)}


@router.delete(
    "/{product_id}",
    status_code=204,
    summary="Delete a product (write)",
    responses=error_responses(404),
)
async def delete_product(
    session: SessionDep, _caller: WriteCaller, product: ProductDep
) -> Response:
    await service.delete_product(session, product=product)
    return Response(status_code=204)
