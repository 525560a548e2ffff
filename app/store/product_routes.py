"""`/v2/products`: storefronts read live products; backends manage the catalogue.

Reads come from the worker's `Catalogue` (a copy at most `KEYHOUSE_CATALOGUE_CACHE_SECONDS`
old), and their two routes are served by app/store/reads.py ahead of FastAPI's routing, through
`product_answer` and `products_answer`; writes go to the database and make this worker's
catalogue forget.
"""

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response

from app.http.errors import NotFoundError, error_responses, found, json_response
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
from app.http.security import Caller, ReadCaller, WriteCaller
from app.runtime.db import SessionDep
from app.store import products as service
from app.store.catalogue import Catalogue
from app.store.products import PRODUCT_FILTERS, Product, ProductIn, ProductOut, ProductUpdate

router = APIRouter(
    prefix="/v2/products",
    tags=["products"],
    responses=error_responses(400, 401, 403),
    route_class=JsonApiRoute,
)


async def _product_for(session: SessionDep, caller: ReadCaller, product_id: uuid.UUID) -> Product:
    # A draft does not exist for a storefront: 404, as for an unknown id.
    return found(
        await service.get_product(
            session,
            store_id=caller.store_id,
            product_id=product_id,
            live_only=not caller.is_backend,
        )
    )


ProductDep = Annotated[Product, Depends(_product_for)]


def _catalogue(request: Request) -> Catalogue:
    catalogue: Catalogue = request.app.state.catalogue
    return catalogue


async def products_answer(request: Request, caller: Caller) -> Response:
    page = page_of(request)
    products, total = await _catalogue(request).page(
        store_id=caller.store_id,
        page=page,
        live_only=not caller.is_backend,
        filter_text=request.query_params.get("filter") or "",
    )
    return json_response(list_document(request, products, page=page, total=total))


async def product_answer(request: Request, caller: Caller, product_id: uuid.UUID) -> Response:
    # A draft does not exist for a storefront: 404, as for an unknown id.
    product = await _catalogue(request).product(
        store_id=caller.store_id, product_id=product_id, live_only=not caller.is_backend
    )
    if product is None:
        raise NotFoundError()
    return json_response({"data": product})


# The routes answer a `Response` but say `Any`, as every route here: FastAPI then documents
# their 200 answers as `responses=` describes them, and nothing else.
@router.get(
    "",
    summary="List products (read; live products only without write)",
    responses=answers(ListDocument[ProductOut]),
    openapi_extra=list_parameters(PRODUCT_FILTERS),
)
async def list_products(request: Request, caller: ReadCaller) -> Any:
    return await products_answer(request, caller)


@router.get(
    "/{product_id}",
    summary="A product (read; live products only without write)",
    responses=answers(Document[ProductOut], 404),
)
async def get_product(request: Request, caller: ReadCaller, product_id: uuid.UUID) -> Any:
    return await product_answer(request, caller, product_id)


@router.post(
    "",
    status_code=201,
    summary="Create a product (write)",
    responses=answers(Document[ProductOut], 409, 413, status=201),
)
async def create_product(
    request: Request, body: Body[ProductIn], session: SessionDep, caller: WriteCaller
) -> Any:
    product = await service.create_product(session, store_id=caller.store_id, data=body.data)
    _catalogue(request).changed()
    return {"data": service.product_json(product)}


@router.put(
    "/{product_id}",
    summary="Update a product (write)",
    responses=answers(Document[ProductOut], 404, 409, 413),
)
async def update_product(
    request: Request,
    body: Body[ProductUpdate],
    session: SessionDep,
    _caller: WriteCaller,
    product: ProductDep,
) -> Any:
    updated = await service.update_product(session, product=product, data=body.data)
    _catalogue(request).changed()
    return {"data": service.product_json(updated)}


@router.delete(
    "/{product_id}",
    status_code=204,
    summary="Delete a product (write)",
    responses=error_responses(404),
)
async def delete_product(
    request: Request, session: SessionDep, _caller: WriteCaller, product: ProductDep
) -> Response:
    await service.delete_product(session, product=product)
    _catalogue(request).changed()
    return Response(status_code=204)
