"""What the schema fuzzer is told that an OpenAPI document cannot say, through Schemathesis's hooks.

Each hook shapes a request before it is sent, in the phases Schemathesis documents for it
(`map_case` in the coverage, fuzzing and stateful phases), and never a verdict after: every
check still judges what the server answers.
"""

from collections.abc import Iterator
from itertools import product
from string import ascii_uppercase
from typing import Any

from schemathesis import Case, HookContext
from schemathesis.schemas import BaseSchema

# Operations whose body carries a product's prices.
PRICED = ["create_product", "update_product"]


def currencies() -> Iterator[str]:
    return ("".join(letters) for letters in product(ascii_uppercase, repeat=3))


def one_price_per_currency(context: HookContext, case: Case) -> Case:
    """A product has at most one price per currency (else a 400). JSON Schema's `uniqueItems`
    cannot say "unique by currency", and the coverage phase's longest price list (`maxItems`, 50)
    repeats currencies; a repeated one becomes an unused code, so the list keeps its length.
    A negative case is left as made: it is refused whatever its currencies."""
    prices = _field(case, "price")
    if not _positive(case) or not isinstance(prices, list):
        return case
    taken = {price["currency"] for price in prices}
    spare = (code for code in currencies() if code not in taken)
    seen: set[str] = set()
    distinct = []
    for price in prices:
        if price["currency"] in seen:
            price = {**price, "currency": next(spare)}
        seen.add(price["currency"])
        distinct.append(price)
    return _with_field(case, "price", distinct)


def register(schema: BaseSchema) -> None:
    """Adds the hooks to `schema`, and so to the schemas filtered from it (they share them)."""
    schema.hooks.hook("map_case").apply_to(operation_id=PRICED)(one_price_per_currency)


def _positive(case: Case) -> bool:
    return case.meta is not None and case.meta.generation.mode.is_positive


def _field(case: Case, name: str) -> Any:
    data = case.body.get("data") if isinstance(case.body, dict) else None
    return data.get(name) if isinstance(data, dict) else None


def _with_field(case: Case, name: str, value: Any) -> Case:
    assert isinstance(case.body, dict)
    case.body = {**case.body, "data": {**case.body["data"], name: value}}
    return case
