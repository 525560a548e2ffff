"""Carts, keyed by a reference the client chooses, and their items.

An item copies the product's name, SKU and price when it is added, so the cart shows what
checkout will charge: a later price change does not reprice a cart behind the shopper's back,
and a cart's single currency holds by construction. Deleting a product removes it from carts
(the foreign key cascades); checkout refuses items whose product is no longer live.
"""

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import BigInteger, ForeignKey, String, UniqueConstraint, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from app.http.jsonapi import (
    BadRequestError,
    ConflictError,
    Output,
    Page,
    Timestamps,
    WholeNumber,
    fetch_page,
    timestamps,
)
from app.runtime.db import Base, utcnow
from app.store.money import (
    MIXED_CURRENCIES,
    DisplayPriceMeta,
    LineOut,
    WithTax,
    display_price,
    line_json,
    total,
)
from app.store.products import Product

MAX_QUANTITY = 1000
MAX_ITEMS = 100  # distinct products per cart: an item list always fits one answer
CART_FULL = f"A cart holds at most {MAX_ITEMS} different products."
TOO_MANY = f"An item's quantity is at most {MAX_QUANTITY}."
NO_PRICE = "This product has no price."
# URL-unreserved characters only, so a reference reads the same in every client and log.
REFERENCE_PATTERN = r"^[A-Za-z0-9._~-]{1,64}$"


class Cart(Base):
    __tablename__ = "cart"
    __table_args__ = (UniqueConstraint("store_id", "reference"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    store_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("store.id"), index=True)
    reference: Mapped[str] = mapped_column(String(64))
    # The account a cart was made for with an account token (app/accounts): only that account's
    # tokens and backends see it. None: anyone with the reference, as ever.
    account_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("account.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class CartItem(Base):
    __tablename__ = "cart_item"
    __table_args__ = (UniqueConstraint("cart_id", "product_id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    store_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("store.id"), index=True)
    cart_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cart.id", ondelete="CASCADE"))
    product_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("product.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    sku: Mapped[str] = mapped_column(String(64))
    # Minor units up to 10**12 (products.PriceIn): past what a 32-bit `integer` holds.
    unit_amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    includes_tax: Mapped[bool]
    quantity: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class CartItemIn(BaseModel):
    """`{"data": {"type": "cart_item", "id": <product id>, "quantity": 2}}`."""

    model_config = ConfigDict(extra="ignore")
    type: str = Field(pattern="^cart_item$")
    id: uuid.UUID
    quantity: WholeNumber = Field(default=1, ge=1, le=MAX_QUANTITY)


class CartItemUpdate(BaseModel):
    """A new quantity; 0 removes the item, as some clients expect."""

    model_config = ConfigDict(extra="ignore")
    type: str = Field(pattern="^cart_item$")
    quantity: WholeNumber = Field(ge=0, le=MAX_QUANTITY)


class CartItemOut(LineOut):
    type: Literal["cart_item"]


class CartItemsDocument(Output):
    """A cart's items and their total (`items_document`)."""

    data: list[CartItemOut]
    meta: DisplayPriceMeta


class CartMeta(Output):
    display_price: WithTax
    timestamps: Timestamps


class CartOut(Output):
    """A cart on the wire (`cart_json`): its id is the client's reference."""

    type: Literal["cart"]
    id: str
    meta: CartMeta


def cart_item_json(item: CartItem) -> dict[str, Any]:
    return line_json(item, kind="cart_item")


def _display_price(items: list[CartItem]) -> dict[str, Any]:
    return display_price(*total((i.unit_amount * i.quantity, i.currency) for i in items))


def cart_json(cart: Cart, items: list[CartItem]) -> dict[str, Any]:
    meta = {**_display_price(items), **timestamps(cart.created_at, cart.updated_at)}
    return {"type": "cart", "id": cart.reference, "meta": meta}


def items_document(items: list[CartItem]) -> dict[str, Any]:
    return {"data": [cart_item_json(i) for i in items], "meta": _display_price(items)}


async def find_cart(session: AsyncSession, *, store_id: uuid.UUID, reference: str) -> Cart | None:
    query = select(Cart).where(Cart.store_id == store_id, Cart.reference == reference)
    return (await session.scalars(query)).first()


def unsaved_cart(*, store_id: uuid.UUID, reference: str) -> Cart:
    """A cart nobody has added to yet: it reads as empty and is saved on its first item,
    so reading or a refused write never leaves a row behind."""
    now = utcnow()
    return Cart(
        id=uuid.uuid4(), store_id=store_id, reference=reference, created_at=now, updated_at=now
    )


def may_use(cart: Cart, account_id: uuid.UUID | None, *, backend: bool) -> bool:
    """Whether a caller acting for `account_id` (None: no account) may see the cart: a cart of
    an account is that account's, and a backend's."""
    return backend or cart.account_id is None or cart.account_id == account_id


async def get_or_create_cart(
    session: AsyncSession,
    *,
    store_id: uuid.UUID,
    reference: str,
    account_id: uuid.UUID | None = None,
) -> Cart:
    """A cart is saved with its first item (not committed here, so a refused item leaves no
    cart behind), for `account_id` if given; a concurrent first use finds the winner's."""
    cart = await find_cart(session, store_id=store_id, reference=reference)
    if cart is not None:
        return cart
    cart = Cart(store_id=store_id, reference=reference, account_id=account_id)
    session.add(cart)
    try:
        await session.flush()
    except IntegrityError:
        await session.rollback()
        cart = await find_cart(session, store_id=store_id, reference=reference)
        if cart is None:
            raise
    return cart


async def list_account_carts(
    session: AsyncSession, *, store_id: uuid.UUID, account_id: uuid.UUID | None, page: Page
) -> tuple[list[Cart], int]:
    """A page of the store's carts: an account's, or (None) all of them."""
    where = [Cart.store_id == store_id]
    if account_id is not None:
        where.append(Cart.account_id == account_id)
    return await fetch_page(
        session, Cart, where=where, page=page, order_by=[Cart.created_at, Cart.id]
    )


async def cart_items(session: AsyncSession, *, cart: Cart) -> list[CartItem]:
    query = (
        select(CartItem)
        .where(CartItem.store_id == cart.store_id, CartItem.cart_id == cart.id)
        .order_by(CartItem.created_at, CartItem.id)
        .execution_options(populate_existing=True)  # quantities change in SQL, not in Python
    )
    return list(await session.scalars(query))


def _new_item(cart: Cart, product: Product, currency: str | None, quantity: int) -> CartItem:
    price = product.price_in(currency) if currency else next(iter(product.price), None)
    if price is None:
        raise BadRequestError(MIXED_CURRENCIES if currency else NO_PRICE)
    return CartItem(
        store_id=cart.store_id,
        cart_id=cart.id,
        product_id=product.id,
        name=product.name,
        sku=product.sku,
        unit_amount=price["amount"],
        currency=price["currency"],
        includes_tax=price["includes_tax"],
        quantity=quantity,
    )


async def _increase(session: AsyncSession, item: CartItem, quantity: int) -> None:
    # In SQL, so two concurrent additions both count and neither passes the limit.
    increased = await session.execute(
        update(CartItem)
        .where(
            CartItem.store_id == item.store_id,
            CartItem.id == item.id,
            CartItem.quantity <= MAX_QUANTITY - quantity,
        )
        .values(quantity=CartItem.quantity + quantity)
        .execution_options(synchronize_session=False)
    )
    if increased.rowcount != 1:  # type: ignore[attr-defined]
        raise BadRequestError(TOO_MANY)


async def add_item(session: AsyncSession, *, cart: Cart, product: Product, quantity: int) -> None:
    """Adds `quantity` of a product, in the cart's currency (its first item's); the same
    product again only raises the quantity, at the price it was first added at."""
    items = await cart_items(session, cart=cart)
    existing = next((i for i in items if i.product_id == product.id), None)
    if existing is not None:
        await _increase(session, existing, quantity)
    elif len(items) >= MAX_ITEMS:
        raise BadRequestError(CART_FULL)
    else:
        session.add(_new_item(cart, product, items[0].currency if items else None, quantity))
    cart.updated_at = utcnow()
    try:
        await session.commit()
    except IntegrityError as error:  # the same product added twice at the same moment
        await session.rollback()
        raise ConflictError() from error


async def get_item(session: AsyncSession, *, cart: Cart, item_id: uuid.UUID) -> CartItem | None:
    query = select(CartItem).where(
        CartItem.store_id == cart.store_id, CartItem.cart_id == cart.id, CartItem.id == item_id
    )
    return (await session.scalars(query)).first()


async def set_quantity(session: AsyncSession, *, cart: Cart, item: CartItem, quantity: int) -> None:
    if quantity == 0:
        await session.delete(item)
    else:
        item.quantity = quantity
    cart.updated_at = utcnow()
    await session.commit()


async def remove_item(session: AsyncSession, *, cart: Cart, item: CartItem) -> None:
    await set_quantity(session, cart=cart, item=item, quantity=0)


async def empty_cart(session: AsyncSession, *, cart: Cart) -> None:
    """Removes every item without committing: checkout commits it with the order."""
    await session.execute(
        delete(CartItem).where(CartItem.store_id == cart.store_id, CartItem.cart_id == cart.id)
    )
