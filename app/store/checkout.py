"""Checkout: a cart becomes an order with its items, and the cart is emptied, atomically."""

import uuid
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.customers.emails import Email
from app.http.errors import NotFoundError
from app.http.jsonapi import BadRequestError, ConflictError, StorableText, without_nulls
from app.runtime.db import utcnow
from app.store.addresses import ADDRESS_FIELDS, AddressIn, RequiredText
from app.store.carts import Cart, CartItem, cart_items, empty_cart, may_use
from app.store.money import total
from app.store.orders import Order, OrderItem
from app.store.products import LIVE, Product

EMPTY_CART = "The cart is empty: there is nothing to check out."
NOT_FOR_SALE = "A product in the cart is no longer for sale; remove it and check out again."
GUEST_DETAILS = "A guest checkout needs the customer's email and name."


class CheckoutAddress(AddressIn):
    """An address as customers save them; `type` may be left out, and a city is required."""

    type: str = Field(default="address", pattern="^address$")
    city: RequiredText


# The schema says what a checkout needs: an id, or a guest's email and name. (The server also
# reads a `null` as left out, which the schema does not offer.)
def _guest_or_customer(schema: dict[str, Any]) -> None:
    without_nulls(schema)
    schema["anyOf"] = [{"required": ["id"]}, {"required": ["email", "name"]}]


CUSTOMER_ABOUT = (
    "Who the order is for. Required, except with a shopper's customer token (then it is "
    "theirs) or an account token (then `contact` names who placed the account's order)."
)


class CheckoutCustomer(BaseModel):
    """`{"id": …}` for a registered customer, or `{"email", "name"}` for a guest."""

    model_config = ConfigDict(extra="ignore", json_schema_extra=_guest_or_customer)
    id: uuid.UUID | None = None
    email: Email | None = None
    name: Annotated[StorableText, Field(min_length=1, max_length=200)] | None = None


def _customer_required(schema: dict[str, Any]) -> None:
    """`customer` is required in the schema, which cannot say when the token makes it optional."""
    without_nulls(schema)
    schema["required"] = ["customer", *schema.get("required", [])]


class CheckoutIn(BaseModel):
    """`{"data": {"customer": {...}, "billing_address": {...}, "shipping_address": {...}}}`;
    with an account token, `contact` (`{"email", "name"}`) says who placed the order."""

    model_config = ConfigDict(extra="ignore", json_schema_extra=_customer_required)
    customer: CheckoutCustomer | None = Field(default=None, description=CUSTOMER_ABOUT)
    contact: CheckoutCustomer | None = Field(
        default=None, description="With an account token: `{email, name}` of who placed it."
    )
    billing_address: CheckoutAddress
    shipping_address: CheckoutAddress


@dataclass(frozen=True, slots=True)
class Buyer:
    """Who the order is for: a customer of the store, or a guest (`customer_id` None)."""

    customer_id: uuid.UUID | None
    name: str
    email: str


def guest(named: CheckoutCustomer | None) -> Buyer:
    if named is None or named.email is None or named.name is None:
        raise BadRequestError(GUEST_DETAILS)
    return Buyer(customer_id=None, name=named.name, email=named.email)


async def _locked_cart(session: AsyncSession, store_id: uuid.UUID, reference: str) -> Cart | None:
    # Row lock on PostgreSQL: a second checkout of the same cart waits, then finds it empty.
    # SQLite has no FOR UPDATE; it runs one writer at a time anyway.
    query = (
        select(Cart).where(Cart.store_id == store_id, Cart.reference == reference).with_for_update()
    )
    return (await session.scalars(query)).first()


async def _check_for_sale(
    session: AsyncSession, store_id: uuid.UUID, items: list[CartItem]
) -> None:
    wanted = {item.product_id for item in items}
    query = select(Product.id).where(
        Product.store_id == store_id, Product.id.in_(wanted), Product.status == LIVE
    )
    if set(await session.scalars(query)) != wanted:
        raise ConflictError(NOT_FOR_SALE)


def _order_item(order: Order, item: CartItem) -> OrderItem:
    return OrderItem(
        store_id=order.store_id,
        order_id=order.id,
        product_id=item.product_id,
        name=item.name,
        sku=item.sku,
        quantity=item.quantity,
        unit_amount=item.unit_amount,
        currency=item.currency,
        includes_tax=item.includes_tax,
    )


async def checkout(
    session: AsyncSession,
    *,
    store_id: uuid.UUID,
    reference: str,
    buyer: Buyer,
    billing_address: CheckoutAddress,
    shipping_address: CheckoutAddress,
    account_id: uuid.UUID | None = None,
    backend: bool = True,
) -> tuple[Order, list[OrderItem]]:
    """Turns the cart into an order at the prices it shows, and empties it: one commit. With
    `account_id`, the order is the account's; another account's cart does not exist (404)
    unless the caller is a `backend`."""
    cart = await _locked_cart(session, store_id, reference)
    if cart is not None and not may_use(cart, account_id, backend=backend):
        raise NotFoundError()
    items = await cart_items(session, cart=cart) if cart is not None else []
    if cart is None or not items:
        raise ConflictError(EMPTY_CART)  # well formed: the cart's state is what refuses it
    await _check_for_sale(session, store_id, items)
    amount, currency = total((i.unit_amount * i.quantity, i.currency) for i in items)
    order = Order(
        store_id=store_id,
        customer_id=buyer.customer_id,
        account_id=account_id,
        customer_name=buyer.name,
        customer_email=buyer.email,
        billing_address=billing_address.model_dump(include=set(ADDRESS_FIELDS)),
        shipping_address=shipping_address.model_dump(include=set(ADDRESS_FIELDS)),
        total_amount=amount,
        currency=currency,
    )
    session.add(order)
    await session.flush()  # the order row first: its items refer to it
    order_items = [_order_item(order, item) for item in items]
    session.add_all(order_items)
    await empty_cart(session, cart=cart)
    cart.updated_at = utcnow()
    await session.commit()
    return order, order_items
