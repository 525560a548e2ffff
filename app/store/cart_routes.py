"""`/v2/carts/{ref}`: any token of the store may fill a cart; the reference is its key. A cart
first filled with an account token is that account's: other callers do not see it (404)."""

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from sqlalchemy.ext.asyncio import AsyncSession

from app.http.errors import NotFoundError, error_responses, found
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
from app.http.security import Caller, InsufficientScopeError, ReadCaller
from app.oauth.scopes import WRITE
from app.runtime.db import SessionDep
from app.store import carts as service
from app.store.carts import (
    REFERENCE_PATTERN,
    Cart,
    CartItem,
    CartItemIn,
    CartItemsDocument,
    CartItemUpdate,
    CartOut,
)
from app.store.products import get_product

router = APIRouter(
    prefix="/v2/carts",
    tags=["carts"],
    responses=error_responses(400, 401, 403),
    route_class=JsonApiRoute,
)

CartReference = Annotated[str, Path(pattern=REFERENCE_PATTERN)]


def _account_of(caller: Caller) -> uuid.UUID | None:
    return caller.account.account_id if caller.account is not None else None


async def _cart_for(session: SessionDep, caller: ReadCaller, cart_ref: CartReference) -> Cart:
    # An account's cart does not exist for anyone but its account's tokens and backends.
    cart = await service.find_cart(session, store_id=caller.store_id, reference=cart_ref)
    if cart is not None and not service.may_use(
        cart, _account_of(caller), backend=caller.is_backend
    ):
        raise NotFoundError()
    return cart or service.unsaved_cart(store_id=caller.store_id, reference=cart_ref)


CartDep = Annotated[Cart, Depends(_cart_for)]


async def _item_for(session: SessionDep, cart: CartDep, item_id: uuid.UUID) -> CartItem:
    return found(await service.get_item(session, cart=cart, item_id=item_id))


CartItemDep = Annotated[CartItem, Depends(_item_for)]


async def _items_document(session: AsyncSession, cart: Cart) -> dict[str, Any]:
    return service.items_document(await service.cart_items(session, cart=cart))


@router.get(
    "",
    summary="List an account's carts (an account token; write: every cart)",
    responses=answers(ListDocument[CartOut]),
    openapi_extra=list_parameters(),
)
async def list_carts(request: Request, session: SessionDep, caller: ReadCaller) -> Any:
    account_id = _account_of(caller)
    if account_id is None and not caller.is_backend:
        raise InsufficientScopeError(WRITE)
    page = page_of(request)
    if caller.is_backend:
        account_id = None
    carts, total = await service.list_account_carts(
        session, store_id=caller.store_id, account_id=account_id, page=page
    )
    data = [service.cart_json(c, await service.cart_items(session, cart=c)) for c in carts]
    return list_document(request, data, page=page, total=total)


@router.get(
    "/{cart_ref}", summary="A cart and its total (read)", responses=answers(Document[CartOut])
)
async def get_cart(session: SessionDep, cart: CartDep) -> Any:
    return {"data": service.cart_json(cart, await service.cart_items(session, cart=cart))}


@router.get(
    "/{cart_ref}/items", summary="A cart's items (read)", responses=answers(CartItemsDocument)
)
async def list_cart_items(session: SessionDep, cart: CartDep) -> Any:
    return await _items_document(session, cart)


@router.post(
    "/{cart_ref}/items",
    status_code=201,
    summary="Add a live product to a cart (read)",
    responses=answers(CartItemsDocument, 404, 409, 413, status=201),
)
async def add_cart_item(
    body: Body[CartItemIn], session: SessionDep, caller: ReadCaller, cart_ref: CartReference
) -> Any:
    # Drafts are not for sale, whoever asks: an unknown or draft product is 404.
    product = await get_product(
        session, store_id=caller.store_id, product_id=body.data.id, live_only=True
    )
    if product is None:
        raise NotFoundError()
    cart = await service.get_or_create_cart(
        session, store_id=caller.store_id, reference=cart_ref, account_id=_account_of(caller)
    )
    if not service.may_use(cart, _account_of(caller), backend=caller.is_backend):
        raise NotFoundError()
    await service.add_item(session, cart=cart, product=product, quantity=body.data.quantity)
    return await _items_document(session, cart)


@router.put(
    "/{cart_ref}/items/{item_id}",
    summary="Change an item's quantity (read)",
    responses=answers(CartItemsDocument, 404, 413),
)
async def update_cart_item(
    body: Body[CartItemUpdate], session: SessionDep, cart: CartDep, item: CartItemDep
) -> Any:
    await service.set_quantity(session, cart=cart, item=item, quantity=body.data.quantity)
    return await _items_document(session, cart)


@router.delete(
    "/{cart_ref}/items/{item_id}",
    summary="Remove an item from a cart (read)",
    responses=answers(CartItemsDocument, 404),
)
async def delete_cart_item(session: SessionDep, cart: CartDep, item: CartItemDep) -> Any:
    await service.remove_item(session, cart=cart, item=item)
    return await _items_document(session, cart)
