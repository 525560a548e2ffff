"""Money on the wire: integer amounts in minor units, one currency per total."""

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Protocol

from app.http.jsonapi import BadRequestError, Output, TimestampsMeta, timestamps

MIXED_CURRENCIES = "A cart or order holds one currency; this product is not priced in it."
# ISO 4217 currencies whose minor unit is not a hundredth; every other one has two decimals.
DECIMALS = {
    **dict.fromkeys(["BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG"], 0),
    **dict.fromkeys(["RWF", "UGX", "UYI", "VND", "VUV", "XAF", "XOF", "XPF"], 0),
    **dict.fromkeys(["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"], 3),
}


def formatted(amount: int, currency: str | None) -> str:
    """`1999, "USD"` → `"19.99 USD"`: major units with the currency's own decimals."""
    if currency is None:
        return str(amount)
    decimals = DECIMALS.get(currency, 2)
    sign, digits = ("-" if amount < 0 else ""), str(abs(amount)).rjust(decimals + 1, "0")
    major = f"{digits[:-decimals]}.{digits[-decimals:]}" if decimals else digits
    return f"{sign}{major} {currency}"


class Price(Output):
    amount: int
    currency: str
    includes_tax: bool


def price_json(amount: int, currency: str, includes_tax: bool) -> dict[str, Any]:
    return {"amount": amount, "currency": currency, "includes_tax": includes_tax}


class PricedLine(Protocol):
    """A line of a cart or an order: a product, a quantity and the unit price it was sold at."""

    @property
    def id(self) -> uuid.UUID: ...
    @property
    def product_id(self) -> uuid.UUID: ...
    @property
    def name(self) -> str: ...
    @property
    def sku(self) -> str: ...
    @property
    def quantity(self) -> int: ...
    @property
    def unit_amount(self) -> int: ...
    @property
    def currency(self) -> str: ...
    @property
    def includes_tax(self) -> bool: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def updated_at(self) -> datetime: ...


class LineOut(Output):
    """A cart item or an order item on the wire (`line_json`)."""

    type: str
    id: uuid.UUID
    product_id: uuid.UUID
    name: str
    sku: str
    quantity: int
    unit_price: Price
    value: Price
    meta: TimestampsMeta


def line_json(line: PricedLine, *, kind: str) -> dict[str, Any]:
    """A cart item or order item on the wire, with its unit price and line value."""
    return {
        "type": kind,
        "id": str(line.id),
        "product_id": str(line.product_id),
        "name": line.name,
        "sku": line.sku,
        "quantity": line.quantity,
        "unit_price": price_json(line.unit_amount, line.currency, line.includes_tax),
        "value": price_json(line.unit_amount * line.quantity, line.currency, line.includes_tax),
        "meta": timestamps(line.created_at, line.updated_at),
    }


class ShownPrice(Output):
    amount: int
    currency: str | None
    formatted: str


class WithTax(Output):
    with_tax: ShownPrice


class DisplayPriceMeta(Output):
    """`meta.display_price` (`display_price`)."""

    display_price: WithTax


def display_price(amount: int, currency: str | None) -> dict[str, Any]:
    """`meta.display_price`. There is no tax engine: prices are summed as they were given."""
    shown = {"amount": amount, "currency": currency, "formatted": formatted(amount, currency)}
    return {"display_price": {"with_tax": shown}}


def total(lines: Iterable[tuple[int, str]]) -> tuple[int, str | None]:
    """The sum of `(amount, currency)` lines, and their one currency (None when empty)."""
    amount, currencies = 0, set()
    for line_amount, currency in lines:
        amount += line_amount
        currencies.add(currency)
    if len(currencies) > 1:
        raise BadRequestError(MIXED_CURRENCIES)
    return amount, next(iter(currencies), None)
