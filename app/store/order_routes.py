"""Checkout, and `/v2/orders`: backends see every order, a customer token its own only."""

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from app.customers.customers import get_customer
from app.http.errors import NotFoundError, error_responses, found, json_response
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
from app.http.security import Caller, InsufficientScopeError, ReadCaller, WriteCaller
from app.oauth.scopes import WRITE
from app.runtime.db import Database, SessionDep
from app.store import orders as service
from app.store.cart_routes import CartDep, CartReference
from app.store.checkout import Buyer, CheckoutIn, checkout, guest
from app.store.orders import ORDER_FILTERS, Order, OrderItemOut, OrderOut, OrderUpdate

router = APIRouter(
    tags=["orders"], responses=error_responses(400, 401, 403), route_class=JsonApiRoute
)


async def _buyer(session: AsyncSession, caller: Caller, data: CheckoutIn) -> Buyer:
    """With an account token, the contact named (the order is the account's); else the
    logged-in customer by default; naming any other customer needs `write`."""
    if caller.account is not None:
        return guest(data.contact or data.customer)
    named = data.customer
    own = caller.customer.customer_id if caller.customer is not None else None
    wanted = named.id if named is not None and named.id is not None else own
    if wanted is None:
        return guest(named)
    if wanted != own and not caller.is_backend:
        raise InsufficientScopeError(WRITE)
    customer = await get_customer(session, store_id=caller.store_id, customer_id=wanted)
    if customer is None:
        raise NotFoundError()
    return Buyer(customer_id=customer.id, name=customer.name, email=customer.email)


async def _order_for(session: SessionDep, caller: ReadCaller, order_id: uuid.UUID) -> Order:
    # Another customer's order, or a guest's, does not exist for a customer token; another
    # account's, for an account token.
    customer_id, account_id = caller.order_owner()
    return found(
        await service.get_order(
            session,
            store_id=caller.store_id,
            order_id=order_id,
            customer_id=customer_id,
            account_id=account_id,
        )
    )


OrderDep = Annotated[Order, Depends(_order_for)]


async def _order_document(session: AsyncSession, order: Order) -> dict[str, Any]:
    ids = await service.item_ids(session, store_id=order.store_id, orders=[order])
    return {"data": service.order_json(order, ids[order.id])}


@router.post(
    "/v2/carts/{cart_ref}/checkout",
    status_code=201,
    summary="Check a cart out (read)",
    responses=answers(Document[OrderOut], 404, 409, 413, status=201),
)
async def checkout_cart(
    body: Body[CheckoutIn],
    session: SessionDep,
    caller: ReadCaller,
    cart_ref: CartReference,
    _visible: CartDep,  # another account's cart is 404 before anything is said of the body
) -> Any:
    buyer = await _buyer(session, caller, body.data)
    order, items = await checkout(
        session,
        store_id=caller.store_id,
        reference=cart_ref,
        buyer=buyer,
        billing_address=body.data.billing_address,
        shipping_address=body.data.shipping_address,
        account_id=caller.account.account_id if caller.account is not None else None,
        backend=caller.is_backend,
    )
    return {"data": service.order_json(order, [item.id for item in items])}


async def orders_answer(request: Request, caller: Caller) -> Response:
    """The page of orders a caller may see; served by app/store/reads.py, or by the route."""
    owner, account = caller.order_owner()  # 403 before any 400 about the query
    page = page_of(request)
    conditions = filter_of(request, ORDER_FILTERS)
    database: Database = request.app.state.database
    async with database.reading() as connection:
        orders, total = await service.list_orders(
            connection,
            store_id=caller.store_id,
            customer_id=owner,
            page=page,
            conditions=conditions,
            account_id=account,
        )
        ids = await service.item_ids(connection, store_id=caller.store_id, orders=orders)
    data = [service.order_json(order, ids[order.id]) for order in orders]
    return json_response(list_document(request, data, page=page, total=total))


@router.get(
    "/v2/orders",
    summary="List orders (write; a customer token: its own; an account token: its account's)",
    responses=answers(ListDocument[OrderOut]),
    openapi_extra=list_parameters(ORDER_FILTERS),
)
async def list_orders(request: Request, caller: ReadCaller) -> Any:
    return await orders_answer(request, caller)


@router.get(
    "/v2/orders/{order_id}",
    summary="An order (write; a customer token: its own)",
    responses=answers(Document[OrderOut], 404),
)
async def get_order(session: SessionDep, order: OrderDep) -> Any:
    return await _order_document(session, order)


@router.get(
    "/v2/orders/{order_id}/items",
    summary="An order's items (as the order)",
    responses=answers(ListDocument[OrderItemOut], 404),
    openapi_extra=list_parameters(),
)
async def list_order_items(request: Request, session: SessionDep, order: OrderDep) -> Any:
    page = page_of(request)
    items, total = await service.list_order_items(session, order=order, page=page)
    data = [service.order_item_json(item) for item in items]
    return list_document(request, data, page=page, total=total)


@router.put(
    "/v2/orders/{order_id}",
    summary="Update status, payment, shipping (write)",
    responses=answers(Document[OrderOut], 404, 413),
)
async def update_order(
    body: Body[OrderUpdate], session: SessionDep, _caller: WriteCaller, order: OrderDep
) -> Any:
    updated = await service.update_order(session, order=order, data=body.data)
    return await _order_document(session, updated)
