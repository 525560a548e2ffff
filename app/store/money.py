"""Money on the wire: integer amounts in minor units, one currency per total."""

from collections.abc import Iterable
from typing import Any

from app.jsonapi import BadRequestError

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


def price_json(amount: int, currency: str, includes_tax: bool) -> dict[str, Any]:
    return {"amount": amount, "currency": currency, "includes_tax": includes_tax}


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
