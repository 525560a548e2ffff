"""What the schema fuzzer is told that an OpenAPI document cannot say, through Schemathesis's hooks.

Each hook shapes a request before it is sent, in the phases Schemathesis documents for it
(`map_case` and `filter_case` in the coverage, fuzzing and stateful phases), and never a verdict
after: every check still judges what the server answers.
"""

import json
import re
from collections.abc import Iterator
from itertools import product
from string import ascii_uppercase
from typing import Any

from schemathesis import Case, HookContext, Response
from schemathesis.hooks import HookDispatcher
from schemathesis.schemas import BaseSchema

# Operations whose body carries a product's prices.
PRICED = ["create_product", "update_product"]
# A body field naming another resource, and the `type` that resource answers with.
RELATED = {
    "parent_id": "account",
    "account_member_id": "account_member",
    "password_profile_id": "password_profile",
}
# Operations whose body names one of them; a missing one is a 404 (JSON:API, docs/contract.md §8).
NAMING = ["create_account", "create_account_membership"]
NAMING += ["create_user_authentication_password_profile_info"]
# A member is read as a user authentication info and as an account member, with the same id.
TYPES = {"user_authentication_info": "account_member"} | {kind: kind for kind in RELATED.values()}
LAST_PATH_PARAMETER = re.compile(r"\{([^}]+)\}[^{]*$")


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


class Existing:
    """Ids of the accounts, account members and password profiles that the server answered
    with and has not deleted since, kept from every answer (an `after_call` hook).

    In the stateful phase a step that follows a link from a create sends that resource's id in
    its path and, for a body field naming another resource, whatever was generated: a 404 then
    names the body's resource (JSON:API), and Schemathesis's `ensure_resource_availability` reads
    it as the created one gone. There, a body names a related resource that exists; the fuzzing
    and coverage phases, where no step goes before, keep sending unknown ones.
    """

    def __init__(self, seeds: dict[str, str]) -> None:
        self.ids: dict[str, list[str]] = {kind: [] for kind in RELATED.values()}
        for field, kind in RELATED.items():
            if field in seeds:
                self.ids[kind].append(seeds[field])

    def record(self, case: Case, response: Response) -> None:
        if not 200 <= response.status_code < 300:
            return
        if case.method.upper() == "DELETE":
            match = LAST_PATH_PARAMETER.search(case.path)
            gone = str(case.path_parameters.get(match.group(1))) if match else None
            for ids in self.ids.values():
                if gone in ids:
                    ids.remove(gone)
            return
        data = _json(response).get("data")
        for item in data if isinstance(data, list) else [data]:
            if not isinstance(item, dict):
                continue
            kind = TYPES.get(str(item.get("type")))
            if kind is not None and str(item.get("id")) not in self.ids[kind]:
                self.ids[kind].append(str(item.get("id")))

    def can_name(self, case: Case) -> bool:
        """Whether the step can name one of each resource its body names."""
        return not _stateful_positive(case) or all(
            self.ids[RELATED[field]] for field in RELATED if isinstance(_field(case, field), str)
        )

    def name_existing(self, case: Case) -> Case:
        """The step's body names the latest of each resource it names, where it named another."""
        if not _stateful_positive(case):
            return case
        for field, kind in RELATED.items():
            named = _field(case, field)
            if isinstance(named, str) and named not in self.ids[kind]:
                case = _with_field(case, field, self.ids[kind][-1])
        return case


def has_a_code(context: HookContext, case: Case) -> bool:
    """No stateful step logs in with a login provider's code (`oidc`): a code comes back from a
    provider's sign-in through the browser, which no step makes, so the step could only be a 404
    (a code never issued), which after a sign-up Schemathesis reads as the new customer gone.
    The fuzzing and coverage phases still send such logins."""
    return not _stateful_positive(case) or _field(case, "authentication_mechanism") != "oidc"


def register(schema: BaseSchema, seeds: dict[str, str]) -> None:
    """Adds the hooks to `schema`, and so to the schemas filtered from it (they share them)."""
    install(schema.hooks, seeds)


def install(hooks: HookDispatcher, seeds: dict[str, str]) -> None:
    """Adds the hooks to `hooks`: a schema's, or Schemathesis's global ones (tests/fuzz_cli.py)."""
    existing = Existing(seeds)

    def record(context: HookContext, case: Case, response: Response) -> None:
        existing.record(case, response)

    def can_name(context: HookContext, case: Case) -> bool:
        return existing.can_name(case)

    def name_existing(context: HookContext, case: Case) -> Case:
        return existing.name_existing(case)

    hooks.hook("map_case").apply_to(operation_id=PRICED)(one_price_per_currency)
    hooks.hook("after_call")(record)
    hooks.hook("filter_case").apply_to(operation_id=NAMING)(can_name)
    hooks.hook("map_case").apply_to(operation_id=NAMING)(name_existing)
    hooks.hook("filter_case").apply_to(operation_id="create_customer_token")(has_a_code)


def _positive(case: Case) -> bool:
    return case.meta is not None and case.meta.generation.mode.is_positive


def _stateful_positive(case: Case) -> bool:
    return _positive(case) and case.meta is not None and case.meta.phase.name == "stateful"


def _field(case: Case, name: str) -> Any:
    data = case.body.get("data") if isinstance(case.body, dict) else None
    return data.get(name) if isinstance(data, dict) else None


def _with_field(case: Case, name: str, value: Any) -> Case:
    assert isinstance(case.body, dict)
    case.body = {**case.body, "data": {**case.body["data"], name: value}}
    return case


def _json(response: Response) -> dict[str, Any]:
    try:
        document = json.loads(response.content)
    except ValueError:
        return {}
    return document if isinstance(document, dict) else {}
