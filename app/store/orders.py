"""Orders: what a checkout sold, to whom, at which prices; backends move them along.

An order copies everything it needs (customer name and email, addresses, product names,
SKUs and prices), so editing or deleting a product or customer later never rewrites it.
"""

import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import JSON, BigInteger, ColumnElement, ForeignKey, Row, String, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from app.http.jsonapi import (
    CANONICAL_UUID,
    ISO_DATETIME,
    Filterable,
    Output,
    Page,
    Timestamps,
    fetch_page,
    read_page,
    timestamps,
    utc_datetime,
)
from app.runtime.db import Base, utcnow
from app.store.addresses import AddressFields
from app.store.money import LineOut, WithTax, display_price, line_json


class Order(Base):
    # `order` is an SQL keyword; this name needs no quoting in hand-written SQL.
    __tablename__ = "sales_order"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    store_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("store.id"), index=True)
    # None for a guest; an order outlives its customer.
    customer_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("customer.id", ondelete="SET NULL"), index=True
    )
    # The account whose member checked out with an account token (app/accounts), if any.
    account_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("account.id", ondelete="SET NULL"), index=True
    )
    customer_name: Mapped[str] = mapped_column(String(200))
    customer_email: Mapped[str] = mapped_column(String(254))
    billing_address: Mapped[dict[str, Any]] = mapped_column(JSON)
    shipping_address: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="incomplete")
    payment: Mapped[str] = mapped_column(String(16), default="unpaid")
    shipping: Mapped[str] = mapped_column(String(16), default="unfulfilled")
    total_amount: Mapped[int] = mapped_column(BigInteger)  # up to 100 items of 1000 at 10**12
    currency: Mapped[str] = mapped_column(String(3))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class OrderItem(Base):
    __tablename__ = "sales_order_item"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    store_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("store.id"), index=True)
    order_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("sales_order.id", ondelete="CASCADE"), index=True
    )
    product_id: Mapped[uuid.UUID]  # no foreign key: the product may be deleted since
    name: Mapped[str] = mapped_column(String(200))
    sku: Mapped[str] = mapped_column(String(64))
    quantity: Mapped[int]
    unit_amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    includes_tax: Mapped[bool]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


OrderStatus = Literal["incomplete", "complete", "cancelled"]
PaymentStatus = Literal["unpaid", "paid", "refunded"]
ShippingStatus = Literal["unfulfilled", "fulfilled"]


class OrderUpdate(BaseModel):
    """What a backend may change: `{"data": {"type": "order", "status", "payment", "shipping"}}`."""

    model_config = ConfigDict(extra="ignore")
    type: str = Field(pattern="^order$")
    status: OrderStatus | None = None
    payment: PaymentStatus | None = None
    shipping: ShippingStatus | None = None


ORDER_FILTERS = {
    "status": Filterable(Order.status),
    "payment": Filterable(Order.payment),
    "shipping": Filterable(Order.shipping),
    "customer_id": Filterable(Order.customer_id, uuid.UUID, CANONICAL_UUID),
    "account_id": Filterable(Order.account_id, uuid.UUID, CANONICAL_UUID),
    "created_at": Filterable(Order.created_at, utc_datetime, ISO_DATETIME),
}


class OrderCustomer(Output):
    name: str
    email: str


class OrderMeta(Output):
    display_price: WithTax
    timestamps: Timestamps


class CustomerReference(Output):
    type: Literal["customer"]
    id: uuid.UUID | None  # None for a guest


class ItemReference(Output):
    type: Literal["item"]
    id: uuid.UUID


class CustomerRelationship(Output):
    data: CustomerReference


class ItemsRelationship(Output):
    data: list[ItemReference]


class AccountReference(Output):
    type: Literal["account"]
    id: uuid.UUID


class AccountRelationship(Output):
    data: AccountReference


class OrderRelationships(Output):
    customer: CustomerRelationship
    items: ItemsRelationship
    # Only on an order checked out with an account token.
    account: AccountRelationship | None = None


class OrderOut(Output):
    """An order on the wire (`order_json`)."""

    type: Literal["order"]
    id: uuid.UUID
    status: OrderStatus
    payment: PaymentStatus
    shipping: ShippingStatus
    customer: OrderCustomer
    billing_address: AddressFields
    shipping_address: AddressFields
    meta: OrderMeta
    relationships: OrderRelationships


class OrderItemOut(LineOut):
    type: Literal["order_item"]


class OrderFields(Protocol):
    """What `order_json` reads: an `Order`, or a row of its table."""

    @property
    def id(self) -> uuid.UUID: ...
    @property
    def status(self) -> str: ...
    @property
    def payment(self) -> str: ...
    @property
    def shipping(self) -> str: ...
    @property
    def customer_id(self) -> uuid.UUID | None: ...
    @property
    def account_id(self) -> uuid.UUID | None: ...
    @property
    def customer_name(self) -> str: ...
    @property
    def customer_email(self) -> str: ...
    @property
    def billing_address(self) -> dict[str, Any]: ...
    @property
    def shipping_address(self) -> dict[str, Any]: ...
    @property
    def total_amount(self) -> int: ...
    @property
    def currency(self) -> str: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def updated_at(self) -> datetime: ...


def order_json(order: OrderFields, item_ids: Sequence[uuid.UUID]) -> dict[str, Any]:
    customer_id = str(order.customer_id) if order.customer_id is not None else None
    relationships: dict[str, Any] = {
        "customer": {"data": {"type": "customer", "id": customer_id}},
        "items": {"data": [{"type": "item", "id": str(i)} for i in item_ids]},
    }
    if order.account_id is not None:
        relationships["account"] = {"data": {"type": "account", "id": str(order.account_id)}}
    return {
        "type": "order",
        "id": str(order.id),
        "status": order.status,
        "payment": order.payment,
        "shipping": order.shipping,
        "customer": {"name": order.customer_name, "email": order.customer_email},
        "billing_address": order.billing_address,
        "shipping_address": order.shipping_address,
        "meta": {
            **display_price(order.total_amount, order.currency),
            **timestamps(order.created_at, order.updated_at),
        },
        "relationships": relationships,
    }


def order_item_json(item: OrderItem) -> dict[str, Any]:
    return line_json(item, kind="order_item")


def _owned(
    store_id: uuid.UUID, customer_id: uuid.UUID | None, account_id: uuid.UUID | None = None
) -> list[ColumnElement[bool]]:
    """Orders of the store; of one customer, or one account, only when it is given."""
    owned = [Order.store_id == store_id]
    if customer_id is not None:
        owned.append(Order.customer_id == customer_id)
    if account_id is not None:
        owned.append(Order.account_id == account_id)
    return owned


async def get_order(
    session: AsyncSession,
    *,
    store_id: uuid.UUID,
    order_id: uuid.UUID,
    customer_id: uuid.UUID | None,
    account_id: uuid.UUID | None = None,
) -> Order | None:
    query = select(Order).where(Order.id == order_id, *_owned(store_id, customer_id, account_id))
    return (await session.scalars(query)).first()


async def list_orders(
    connection: AsyncConnection,
    *,
    store_id: uuid.UUID,
    customer_id: uuid.UUID | None,
    page: Page,
    conditions: Sequence[ColumnElement[bool]],
    account_id: uuid.UUID | None = None,
) -> tuple[Sequence[Row[Any]], int]:
    """A page of orders as plain rows (a read needs no ORM objects), and how many in all."""
    return await read_page(
        connection,
        Order.__table__,
        where=[*_owned(store_id, customer_id, account_id), *conditions],
        page=page,
        order_by=[Order.created_at, Order.id],
    )


async def item_ids(
    reader: AsyncSession | AsyncConnection,
    *,
    store_id: uuid.UUID,
    orders: Sequence[OrderFields],
) -> dict[uuid.UUID, list[uuid.UUID]]:
    """The item ids of each order, for `relationships.items`, in one query."""
    ids: dict[uuid.UUID, list[uuid.UUID]] = defaultdict(list)
    if not orders:
        return ids
    query = (
        select(OrderItem.order_id, OrderItem.id)
        .where(OrderItem.store_id == store_id, OrderItem.order_id.in_([o.id for o in orders]))
        .order_by(OrderItem.created_at, OrderItem.id)
    )
    for order_id, item_id in await reader.execute(query):
        ids[order_id].append(item_id)
    return ids


async def list_order_items(
    session: AsyncSession, *, order: Order, page: Page
) -> tuple[list[OrderItem], int]:
    return await fetch_page(
        session,
        OrderItem,
        where=[OrderItem.store_id == order.store_id, OrderItem.order_id == order.id],
        page=page,
        order_by=[OrderItem.created_at, OrderItem.id],
    )


async def update_order(session: AsyncSession, *, order: Order, data: OrderUpdate) -> Order:
    for field, value in data.model_dump(exclude={"type"}, exclude_none=True).items():
        setattr(order, field, value)
    await session.commit()
    return order
