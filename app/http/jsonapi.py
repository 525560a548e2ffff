"""The commerce API's JSON:API-style conventions, shared by every `/v2` resource.

Bodies are wrapped as `{"data": {...}}` with a `type`; lists answer `{"data": [...], "links",
"meta": {"page", "results": {"total"}}}` and take `page[limit]`, `page[offset]` and
`filter=eq(status,complete):gt(created_at,2026-01-01)`.
"""

import email.message
import re
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, TypeVar
from urllib.parse import urlencode

from fastapi.routing import APIRoute
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictInt
from sqlalchemy import ColumnElement, FromClause, Row, String, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import DeclarativeBase, InstrumentedAttribute
from starlette.convertors import Convertor
from starlette.requests import Request
from starlette.responses import Response

from app.http.errors import KeyhouseError, error_responses
from app.http.nesting import MAX_JSON_DEPTH, nests_deeper_than

T = TypeVar("T")
M = TypeVar("M", bound=DeclarativeBase)
DEFAULT_PAGE_LIMIT = 25
MATCHING = "rows_matching"  # the column `read_page` counts every matching row in
MAX_PAGE_LIMIT = 100


class BadRequestError(KeyhouseError):
    status_code = 400
    title = "Bad Request"


class ConflictError(KeyhouseError):
    status_code = 409
    title = "Conflict"
    default_detail = "The request conflicts with an existing resource."


# Text as a database can store it: PostgreSQL refuses NUL characters. (Unpaired surrogates,
# which neither database can encode, pydantic refuses on its own.) A pattern rather than a
# validator, so that the OpenAPI schema says it and other constraints keep their own messages.
NO_NUL = r"^[^\x00]*$"
StorableText = Annotated[str, Field(pattern=NO_NUL)]


def whole_number(value: Any) -> Any:
    """`2.0` as `2`: JSON Schema's integers include numbers with a zero fraction. Anything else
    goes on to the strict check, which refuses `2.5`, `"2"` and `true`, and never rounds."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


WholeNumber = Annotated[StrictInt, BeforeValidator(whole_number)]

NULL = {"type": "null"}


def without_nulls(schema: dict[str, Any]) -> None:
    """A model's `json_schema_extra`: its optional fields are documented as left out, never
    `null`, where a `null` would be refused or mean nothing (a `None` default is Python's way
    of saying "not given")."""
    for field in schema.get("properties", {}).values():
        options = field.get("anyOf", [])
        if NULL in options:
            rest = [option for option in field.pop("anyOf") if option != NULL]
            field.update(rest[0] if len(rest) == 1 else {"anyOf": rest})
        if "default" in field and field["default"] is None:
            del field["default"]


class Body(BaseModel, Generic[T]):
    """`{"data": {...}}`: the envelope of every request body."""

    model_config = ConfigDict(extra="ignore")
    data: T


NESTED_TOO_DEEPLY = "The JSON body is nested too deeply."


def _is_json(content_type: str | None) -> bool:
    """Whether FastAPI parses a body of this type as JSON (`application/json`, `…+json`)."""
    if content_type is None:
        return False
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )


class JsonApiRoute(APIRoute):
    """A /v2 route: a JSON body nested deeper than `MAX_JSON_DEPTH` is a 400 before FastAPI
    parses it (`json.loads` recursing 2,000 levels deep raises; app/http/nesting.py)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()
        if self.body_field is None:
            return handle  # reads no body: nothing to measure

        async def handle_measured(request: Request) -> Response:
            # `body()` keeps what it read on the request, where FastAPI reads it from next.
            if _is_json(request.headers.get("content-type")) and nests_deeper_than(
                await request.body(), MAX_JSON_DEPTH
            ):
                raise BadRequestError(NESTED_TOO_DEEPLY)
            return await handle(request)

        return handle_measured


def timestamps(created_at: datetime, updated_at: datetime) -> dict[str, Any]:
    return {
        "timestamps": {"created_at": created_at.isoformat(), "updated_at": updated_at.isoformat()}
    }


# --- answers, as the OpenAPI schema documents them ----------------------------------------
# The routes build their answers as plain dicts (see the `*_json` functions); these models only
# describe them, and tests/test_schema_fuzzing.py checks that every answer fits its description.


class Output(BaseModel):
    """A documented answer: exactly these fields, no others."""

    model_config = ConfigDict(extra="forbid")


class Timestamps(Output):
    created_at: datetime
    updated_at: datetime


class TimestampsMeta(Output):
    timestamps: Timestamps


class Document(Output, Generic[T]):
    """`{"data": {...}}`: one resource."""

    data: T


class Links(Output):
    current: str
    first: str
    last: str
    prev: str | None
    next: str | None


class PageMeta(Output):
    limit: int
    offset: int
    current: int
    total: int


class Results(Output):
    total: int


class ListMeta(Output):
    page: PageMeta
    results: Results


class ListDocument(Output, Generic[T]):
    """A page of a list: `{"data": [...], "links": {...}, "meta": {...}}`."""

    data: list[T]
    links: Links
    meta: ListMeta


def answers(
    model: type[BaseModel], *errors: int, status: int = 200
) -> dict[int | str, dict[str, Any]]:
    """A route's OpenAPI `responses`: its success body, and the errors it adds to its router's."""
    return {status: {"model": model}, **error_responses(*errors)}


# --- pagination ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Page:
    limit: int
    offset: int


MAX_PAGE_OFFSET = 10_000_000
# ASCII digits only (`str.isdigit()` takes "²", which `int()` refuses), and few enough for `int()`.
_WHOLE_NUMBER = re.compile(r"[0-9]{1,18}")


def _page_number(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not _WHOLE_NUMBER.fullmatch(raw) or not low <= int(raw) <= high:
        raise BadRequestError(f"{name} must be a whole number from {low} to {high}.")
    return int(raw)


# A list reads three parameters and echoes them all in its five links: more are refused before
# any is decoded, so that a list's answer stays about as small as its page.
MAX_QUERY_PARAMETERS = 32
TOO_MANY_PARAMETERS = "The query has too many parameters."


def page_of(request: Request) -> Page:
    """`page[limit]` (1-100, default 25) and `page[offset]` from the query string, of at most
    `MAX_QUERY_PARAMETERS` parameters."""
    if request.scope["query_string"].count(b"&") >= MAX_QUERY_PARAMETERS:
        raise BadRequestError(TOO_MANY_PARAMETERS)
    return Page(
        limit=_page_number(request, "page[limit]", DEFAULT_PAGE_LIMIT, 1, MAX_PAGE_LIMIT),
        offset=_page_number(request, "page[offset]", 0, 0, MAX_PAGE_OFFSET),
    )


def list_document(
    request: Request, data: Sequence[Any], *, page: Page, total: int
) -> dict[str, Any]:
    """A list answer with JSON:API pagination links and the commerce API's `meta`; `data` holds
    documents, or documents already encoded (`orjson.Fragment`) for `json_response`."""

    def link(offset: int) -> str:
        query = {
            **request.query_params,
            "page[limit]": str(page.limit),
            "page[offset]": str(offset),
        }
        return f"{request.url.path}?{urlencode(query)}"

    last_offset = max(0, (total - 1) // page.limit * page.limit)
    return {
        "data": list(data),
        "links": {
            "current": link(page.offset),
            "first": link(0),
            "last": link(last_offset),
            "prev": link(max(0, page.offset - page.limit)) if page.offset > 0 else None,
            "next": link(page.offset + page.limit) if page.offset + page.limit < total else None,
        },
        "meta": {
            "page": {
                "limit": page.limit,
                "offset": page.offset,
                "current": page.offset // page.limit + 1,
                "total": max(1, -(-total // page.limit)),
            },
            "results": {"total": total},
        },
    }


async def read_page(
    connection: AsyncConnection,
    table: FromClause,
    *,
    where: Sequence[ColumnElement[bool]],
    page: Page,
    order_by: Sequence[InstrumentedAttribute[Any]],
) -> tuple[Sequence[Row[Any]], int]:
    """One page of `table`'s rows matching `where`, as plain rows, and how many match in all.

    One query gives both, each row carrying the count of all (`count(*) OVER ()`, computed
    before LIMIT), so a page costs one round trip; only a page past the end, with no row to
    carry it, asks for the count on its own.
    """
    matching = func.count().over().label(MATCHING)
    query = select(table, matching).where(*where).order_by(*order_by)
    rows = (await connection.execute(query.limit(page.limit).offset(page.offset))).all()
    if rows:
        return rows, int(rows[0][-1])
    if page.offset == 0:
        return rows, 0
    total = await connection.scalar(select(func.count()).select_from(table).where(*where))
    return rows, total or 0


async def fetch_page(
    session: AsyncSession,
    model: type[M],
    *,
    where: Sequence[ColumnElement[bool]],
    page: Page,
    order_by: Sequence[InstrumentedAttribute[Any]],
) -> tuple[list[M], int]:
    """One page of `model` rows matching `where`, and how many match in all."""
    total = await session.scalar(select(func.count()).select_from(model).where(*where))
    query = select(model).where(*where).order_by(*order_by).limit(page.limit).offset(page.offset)
    return list(await session.scalars(query)), total or 0


# --- filtering ----------------------------------------------------------------------------

MALFORMED_FILTER = (
    "The filter is malformed: use op(field,value) joined by ':', "
    "with op one of eq, like, gt, ge, lt, le, in, on a filterable field."
)
OPERATORS = ("eq", "like", "gt", "ge", "lt", "le", "in")
# The grammar of a filter, one pattern per kind of value: `parse_filter` holds each value to its
# field's pattern before it reads it, and the OpenAPI schema states the same patterns, so that a
# filter the schema allows is one the server takes. Text may hold anything but parentheses,
# commas (which separate the values of `in`) and NUL (which PostgreSQL refuses in text).
ANY_TEXT = r"[^(),\x00]*"
CANONICAL_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"


class UuidConvertor(Convertor[str]):
    """An id in a path that must be a UUID (in either case), registered under each parameter's
    name (`register_url_convertor("customer_id", UuidConvertor())`). A sibling path such as
    `/v2/customers/tokens` is then no id's path, so a method it does not serve is a 405 naming
    the methods it does, not a 400 about a malformed id."""

    regex = CANONICAL_UUID

    def convert(self, value: str) -> str:
        return value  # FastAPI makes the `uuid.UUID` of it

    def to_string(self, value: str) -> str:
        return str(value)


# Dates that exist: years 0001 to 9999, the days of each month, 29 February in leap years only.
_YEAR = r"(?:000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3})"
_LEAP_YEAR = r"(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:0[48]|[2468][048]|[13579][26])00)"
_MONTH_DAY = (
    r"(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])"
    r"|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)|02-(?:0[1-9]|1[0-9]|2[0-8]))"
)
_TIME = r"T(?:[01][0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9](?:\.[0-9]{1,6})?)?"
_OFFSET = r"(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
ISO_DATETIME = rf"(?:{_YEAR}-{_MONTH_DAY}|{_LEAP_YEAR}-02-29)(?:{_TIME}{_OFFSET}?)?"
_CONDITION = re.compile(r"(?P<op>[a-z]+)\((?P<field>[a-z_]+),(?P<values>[^()\x00]*)\)")


@dataclass(frozen=True, slots=True)
class Filterable:
    """A field a list may be filtered on: its column, the pattern of its values, and how to
    read one. `like` is for text columns only (PostgreSQL has no ILIKE on times or UUIDs)."""

    column: InstrumentedAttribute[Any]
    parse: Callable[[str], Any] = str
    pattern: str = ANY_TEXT

    @property
    def operators(self) -> tuple[str, ...]:
        is_text = isinstance(self.column.type, String)
        return tuple(op for op in OPERATORS if op != "like" or is_text)

    def read(self, value: str) -> Any:
        if re.fullmatch(self.pattern, value) is None:
            raise ValueError("not a value of this field")
        return self.parse(value)


def utc_datetime(value: str) -> datetime:
    """A filter's datetime, such as `gt(created_at,2026-01-01)`: no offset means UTC (the
    timestamp columns refuse naive datetimes). A time whose UTC falls outside years 1 to 9999
    (`9999-12-31T23:59-12:00`) is the first or last time there is, which every stored time is
    after or before, rather than an OverflowError in the database."""
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        return (datetime.max if parsed.year == datetime.max.year else datetime.min).replace(
            tzinfo=UTC
        )


def _condition(op: str, field: Filterable, values: list[Any]) -> ColumnElement[bool]:
    column = field.column
    if op not in field.operators:
        raise BadRequestError(MALFORMED_FILTER)
    if op == "in":
        return column.in_(values)
    if len(values) != 1:
        raise BadRequestError(MALFORMED_FILTER)
    value = values[0]
    if op == "like":
        # `*` is the commerce API's wildcard; SQL's own wildcards are matched literally.
        pattern = str(value).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return column.ilike(pattern.replace("*", "%"), escape="\\")
    comparisons: dict[str, Callable[[Any], ColumnElement[bool]]] = {
        "eq": column.__eq__,
        "gt": column.__gt__,
        "ge": column.__ge__,
        "lt": column.__lt__,
        "le": column.__le__,
    }
    return comparisons[op](value)


def parse_filter(raw: str | None, fields: Mapping[str, Filterable]) -> list[ColumnElement[bool]]:
    """SQL conditions for `filter=eq(status,complete):gt(created_at,…)`; 400 if malformed."""
    if raw is None or raw == "":
        return []
    conditions: list[ColumnElement[bool]] = []
    position = 0
    while True:
        match = _CONDITION.match(raw, position)
        if match is None or match["field"] not in fields:
            raise BadRequestError(MALFORMED_FILTER)
        field = fields[match["field"]]
        try:
            values = [field.read(value) for value in match["values"].split(",")]
        except (ValueError, TypeError) as error:
            raise BadRequestError(MALFORMED_FILTER) from error
        conditions.append(_condition(match["op"], field, values))
        position = match.end()
        if position == len(raw):
            return conditions
        if raw[position] != ":":
            raise BadRequestError(MALFORMED_FILTER)
        position += 1


def filter_of(request: Request, fields: Mapping[str, Filterable]) -> list[ColumnElement[bool]]:
    return parse_filter(request.query_params.get("filter"), fields)


# --- the query of a list, in the OpenAPI schema ------------------------------------------
# `page_of` and `filter_of` read the query themselves, so that a list refuses a token without
# the right scope (403) before it finds fault with the query (400); FastAPI would validate
# declared parameters first. So the parameters are documented here, by hand.


def _page_parameter(name: str, low: int, high: int, default: int, about: str) -> dict[str, Any]:
    schema = {"type": "integer", "minimum": low, "maximum": high, "default": default}
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": about}


PAGE_PARAMETERS = [
    _page_parameter("page[limit]", 1, MAX_PAGE_LIMIT, DEFAULT_PAGE_LIMIT, "Results per page."),
    _page_parameter("page[offset]", 0, MAX_PAGE_OFFSET, 0, "Results to skip."),
]


def _field_conditions(name: str, field: Filterable) -> str:
    one, many = field.pattern, rf"{field.pattern}(?:,{field.pattern})*"
    single = [op for op in field.operators if op != "in"]
    return rf"(?:{'|'.join(single)})\({name},{one}\)|in\({name},{many}\)"


def filter_pattern(fields: Mapping[str, Filterable]) -> str:
    """The language `parse_filter` reads, as a regular expression (for the schema): on each
    field, its operators, one value each (`in`: one or more), of the field's pattern."""
    condition = "(?:" + "|".join(_field_conditions(n, f) for n, f in fields.items()) + ")"
    return rf"^(?:{condition}(?::{condition})*)?$"


def list_parameters(fields: Mapping[str, Filterable] | None = None) -> dict[str, Any]:
    """`openapi_extra` for a list route: its page parameters, and `filter` on `fields`."""
    if not fields:
        return {"parameters": PAGE_PARAMETERS}
    about = f"Conditions joined by ':', such as eq(field,value), on {', '.join(fields)}."
    schema = {"type": "string", "pattern": filter_pattern(fields)}
    filter_parameter = {"name": "filter", "in": "query", "schema": schema, "description": about}
    return {"parameters": [*PAGE_PARAMETERS, filter_parameter]}
