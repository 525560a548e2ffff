"""A customer's saved addresses, and the service functions the routes share."""

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import ForeignKey, String, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from app.http.jsonapi import Output, Page, StorableText, TimestampsMeta, fetch_page, timestamps
from app.runtime.db import Base, utcnow


class AddressFields(Output):
    """The address shape of the commerce API, in the order it is answered (saved addresses
    and the addresses of orders)."""

    first_name: str
    last_name: str
    name: str
    phone_number: str
    instructions: str
    company_name: str
    line_1: str
    line_2: str
    city: str
    postcode: str
    county: str
    region: str
    country: str


ADDRESS_FIELDS = tuple(AddressFields.model_fields)


class Address(Base):
    __tablename__ = "address"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    store_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("store.id"), index=True)
    customer_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("customer.id", ondelete="CASCADE"), index=True
    )
    first_name: Mapped[str] = mapped_column(String(200))
    last_name: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(200), default="")  # a label: "Home", "Work"
    phone_number: Mapped[str] = mapped_column(String(50), default="")
    instructions: Mapped[str] = mapped_column(String(1000), default="")
    company_name: Mapped[str] = mapped_column(String(200), default="")
    line_1: Mapped[str] = mapped_column(String(200))
    line_2: Mapped[str] = mapped_column(String(200), default="")
    city: Mapped[str] = mapped_column(String(200), default="")
    postcode: Mapped[str] = mapped_column(String(50))
    county: Mapped[str] = mapped_column(String(200), default="")
    region: Mapped[str] = mapped_column(String(200), default="")
    country: Mapped[str] = mapped_column(String(2))  # ISO 3166-1 alpha-2
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


RequiredText = Annotated[StorableText, Field(min_length=1, max_length=200)]
OptionalText = Annotated[StorableText, Field(max_length=200)]
Phone = Annotated[StorableText, Field(max_length=50)]
Instructions = Annotated[StorableText, Field(max_length=1000)]
Postcode = Annotated[StorableText, Field(min_length=1, max_length=50)]
Country = Annotated[str, Field(min_length=2, max_length=2, pattern="^[A-Z]{2}$")]


class AddressIn(BaseModel):
    """`{"data": {"type": "address", ...}}`; fields left out are empty strings."""

    model_config = ConfigDict(extra="ignore")
    type: str = Field(pattern="^address$")
    first_name: RequiredText
    last_name: RequiredText
    name: OptionalText = ""
    phone_number: Phone = ""
    instructions: Instructions = ""
    company_name: OptionalText = ""
    line_1: RequiredText
    line_2: OptionalText = ""
    city: OptionalText = ""
    postcode: Postcode
    county: OptionalText = ""
    region: OptionalText = ""
    country: Country


class AddressUpdate(BaseModel):
    """A partial update: fields left out (or null) keep their value."""

    model_config = ConfigDict(extra="ignore")
    type: str = Field(pattern="^address$")
    first_name: RequiredText | None = None
    last_name: RequiredText | None = None
    name: OptionalText | None = None
    phone_number: Phone | None = None
    instructions: Instructions | None = None
    company_name: OptionalText | None = None
    line_1: RequiredText | None = None
    line_2: OptionalText | None = None
    city: OptionalText | None = None
    postcode: Postcode | None = None
    county: OptionalText | None = None
    region: OptionalText | None = None
    country: Country | None = None


class AddressOut(AddressFields):
    """A saved address on the wire (`address_json`)."""

    type: Literal["address"]
    id: uuid.UUID
    meta: TimestampsMeta


def address_json(address: Address) -> dict[str, Any]:
    return {
        "type": "address",
        "id": str(address.id),
        **{field: getattr(address, field) for field in ADDRESS_FIELDS},
        "meta": timestamps(address.created_at, address.updated_at),
    }


async def create_address(
    session: AsyncSession, *, store_id: uuid.UUID, customer_id: uuid.UUID, data: AddressIn
) -> Address:
    address = Address(
        store_id=store_id, customer_id=customer_id, **data.model_dump(include=set(ADDRESS_FIELDS))
    )
    session.add(address)
    await session.commit()
    return address


async def get_address(
    session: AsyncSession, *, store_id: uuid.UUID, customer_id: uuid.UUID, address_id: uuid.UUID
) -> Address | None:
    query = select(Address).where(
        Address.id == address_id, Address.store_id == store_id, Address.customer_id == customer_id
    )
    return (await session.scalars(query)).first()


async def list_addresses(
    session: AsyncSession, *, store_id: uuid.UUID, customer_id: uuid.UUID, page: Page
) -> tuple[list[Address], int]:
    return await fetch_page(
        session,
        Address,
        where=[Address.store_id == store_id, Address.customer_id == customer_id],
        page=page,
        order_by=[Address.created_at, Address.id],
    )


async def update_address(
    session: AsyncSession, *, address: Address, data: AddressUpdate
) -> Address:
    changes = data.model_dump(include=set(ADDRESS_FIELDS), exclude_none=True)
    for field, value in changes.items():
        setattr(address, field, value)
    await session.commit()
    return address


async def delete_address(session: AsyncSession, *, address: Address) -> None:
    await session.delete(address)
    await session.commit()
