"""Products of a store, and the service functions the routes share."""

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator
from pydantic.config import JsonDict
from sqlalchemy import JSON, ForeignKey, String, Text, UniqueConstraint, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from app.http.jsonapi import (
    ConflictError,
    Filterable,
    Output,
    StorableText,
    TimestampsMeta,
    WholeNumber,
    timestamps,
)
from app.runtime.changes import announce
from app.runtime.db import Base, utcnow
from app.store.money import Price, price_json

SKU_TAKEN = "A product with this SKU already exists in this store."
LIVE = "live"
Status = Literal["live", "draft"]
CommodityType = Literal["physical", "digital"]


class Product(Base):
    __tablename__ = "product"
    __table_args__ = (UniqueConstraint("store_id", "sku"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    store_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("store.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(200))
    sku: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text, default="")
    manage_stock: Mapped[bool] = mapped_column(default=False)
    # `[{"amount", "currency", "includes_tax"}]`, at most one entry per currency.
    price: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))
    commodity_type: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    def price_in(self, currency: str) -> dict[str, Any] | None:
        return next((p for p in self.price if p["currency"] == currency), None)


# Every worker forgets its copies when a product is written (app/store/catalogue.py).
announce(Product, "catalogue")


class PriceIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    amount: WholeNumber = Field(ge=0, le=10**12)  # minor units: 1999.0 is 1999, 19.99 is refused
    currency: str = Field(pattern="^[A-Z]{3}$")
    includes_tax: StrictBool = True


# JSON Schema cannot say "unique by currency"; it says what it can (no two prices alike) and
# the words say the rest.
PRICES: JsonDict = {
    "uniqueItems": True,
    "description": "At most one price per currency (else a 400).",
}


def _one_per_currency(prices: list[PriceIn] | None) -> list[PriceIn] | None:
    if prices is not None and len({p.currency for p in prices}) != len(prices):
        raise ValueError("one price per currency")
    return prices


class ProductIn(BaseModel):
    """`{"data": {"type": "product", ...}}`; a new product is a draft unless told otherwise."""

    model_config = ConfigDict(extra="ignore")
    type: str = Field(pattern="^product$")
    name: StorableText = Field(min_length=1, max_length=200)
    slug: StorableText = Field(min_length=1, max_length=200)
    sku: StorableText = Field(min_length=1, max_length=64)
    description: StorableText = Field(default="", max_length=10_000)
    manage_stock: StrictBool = False
    price: list[PriceIn] = Field(max_length=50, json_schema_extra=PRICES)
    status: Status = "draft"
    commodity_type: CommodityType

    _prices = field_validator("price")(_one_per_currency)


class ProductUpdate(BaseModel):
    """A partial update: fields left out (or null) keep their value."""

    model_config = ConfigDict(extra="ignore")
    type: str = Field(pattern="^product$")
    name: Annotated[StorableText, Field(min_length=1, max_length=200)] | None = None
    slug: Annotated[StorableText, Field(min_length=1, max_length=200)] | None = None
    sku: Annotated[StorableText, Field(min_length=1, max_length=64)] | None = None
    description: Annotated[StorableText, Field(max_length=10_000)] | None = None
    manage_stock: StrictBool | None = None
    price: list[PriceIn] | None = Field(default=None, max_length=50, json_schema_extra=PRICES)
    status: Status | None = None
    commodity_type: CommodityType | None = None

    _prices = field_validator("price")(_one_per_currency)


PRODUCT_FILTERS = {
    "status": Filterable(Product.status),
    "sku": Filterable(Product.sku),
    "slug": Filterable(Product.slug),
    "name": Filterable(Product.name),
    "commodity_type": Filterable(Product.commodity_type),
}


class ProductOut(Output):
    """A product on the wire (`product_json`)."""

    type: Literal["product"]
    id: uuid.UUID
    name: str
    slug: str
    sku: str
    description: str
    manage_stock: bool
    price: list[Price]
    status: Status
    commodity_type: CommodityType
    meta: TimestampsMeta


class ProductFields(Protocol):
    """What `product_json` reads: a `Product`, or a row of its table."""

    @property
    def id(self) -> uuid.UUID: ...
    @property
    def name(self) -> str: ...
    @property
    def slug(self) -> str: ...
    @property
    def sku(self) -> str: ...
    @property
    def description(self) -> str: ...
    @property
    def manage_stock(self) -> bool: ...
    @property
    def price(self) -> list[dict[str, Any]]: ...
    @property
    def status(self) -> str: ...
    @property
    def commodity_type(self) -> str: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def updated_at(self) -> datetime: ...


def product_json(product: ProductFields) -> dict[str, Any]:
    return {
        "type": "product",
        "id": str(product.id),
        "name": product.name,
        "slug": product.slug,
        "sku": product.sku,
        "description": product.description,
        "manage_stock": product.manage_stock,
        "price": [price_json(p["amount"], p["currency"], p["includes_tax"]) for p in product.price],
        "status": product.status,
        "commodity_type": product.commodity_type,
        "meta": timestamps(product.created_at, product.updated_at),
    }


async def _commit(session: AsyncSession) -> None:
    try:
        await session.commit()
    except IntegrityError as error:  # the unique constraint decides races, not a read first
        await session.rollback()
        raise ConflictError(SKU_TAKEN) from error


async def create_product(session: AsyncSession, *, store_id: uuid.UUID, data: ProductIn) -> Product:
    product = Product(store_id=store_id, **data.model_dump(exclude={"type"}))
    session.add(product)
    await _commit(session)
    return product


async def get_product(
    session: AsyncSession, *, store_id: uuid.UUID, product_id: uuid.UUID, live_only: bool
) -> Product | None:
    query = select(Product).where(Product.store_id == store_id, Product.id == product_id)
    if live_only:
        query = query.where(Product.status == LIVE)
    return (await session.scalars(query)).first()


async def update_product(
    session: AsyncSession, *, product: Product, data: ProductUpdate
) -> Product:
    for field, value in data.model_dump(exclude={"type"}, exclude_none=True).items():
        setattr(product, field, value)
    await _commit(session)
    return product


async def delete_product(session: AsyncSession, *, product: Product) -> None:
    """Deleting a product takes it out of every cart (the foreign key cascades); orders keep
    their own copy of what was sold."""
    await session.delete(product)
    await session.commit()
