"""The bare app the `protected` scenario's reads are measured against: FastAPI and the same SQL.

A plain FastAPI app on the same Uvicorn as Keyhouse that answers the three reads of the
scenario with the SQL Keyhouse sends for them, through SQLAlchemy's asyncio engine on the same
database and driver, and renders the same bytes with orjson. None of Keyhouse's layers: no
middleware, no token checks (it reads for the store and the shopper named in its environment),
no sessions or ORM, no caching; each request runs its statements on a pooled connection.

- `GET /v2/products/{id}`: the store's live product with this id.
- `GET /v2/products?page[limit]=N&page[offset]=M`: a count and a page of live products.
- `GET /v2/orders`: a count and a page of the shopper's orders, and their items' ids; with an
  account token header (whatever its value), of the account's orders instead.

Set by `bench/run.py`: `KEYHOUSE_DATABASE_URL` (Keyhouse's), `BENCH_STORE_ID`,
`BENCH_CUSTOMER_ID`, `BENCH_ACCOUNT_ID`.

    KEYHOUSE_DATABASE_URL=... BENCH_STORE_ID=... BENCH_CUSTOMER_ID=... \\
        .venv/bin/python -m uvicorn bench.bare_reads:create_bare_app --factory
"""

import os
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response
from sqlalchemy import JSON, DateTime, TextClause, Uuid, bindparam, text
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

PRODUCT_COLUMNS = (
    "id, name, slug, sku, description, manage_stock, price, status, commodity_type, "
    "created_at, updated_at"
)
ORDER_COLUMNS = (
    "id, customer_id, account_id, customer_name, customer_email, billing_address, "
    "shipping_address, status, payment, shipping, total_amount, currency, created_at, updated_at"
)
ACCOUNT_TOKEN_HEADER = "ep-account-management-authentication-token"  # noqa: S105 (a header)
TYPES = {
    "id": Uuid(),
    "customer_id": Uuid(),
    "account_id": Uuid(),
    "order_id": Uuid(),
    "price": JSON(),
    "billing_address": JSON(),
    "shipping_address": JSON(),
    "created_at": DateTime(timezone=True),
    "updated_at": DateTime(timezone=True),
}
LIVE_PRODUCTS = "FROM product WHERE store_id = :store_id AND status = 'live'"
OWN_ORDERS = "FROM sales_order WHERE store_id = :store_id AND customer_id = :customer_id"
ACCOUNT_ORDERS = "FROM sales_order WHERE store_id = :store_id AND account_id = :account_id"


def sql(statement: str, *columns: str, expanding: Sequence[str] = ()) -> TextClause:
    """`statement` with its bound ids and its result columns typed as Keyhouse's are."""
    params = [
        bindparam(name, type_=Uuid(), expanding=name in expanding)
        for name in ("store_id", "customer_id", "account_id", "product_id", "order_ids")
        if f":{name}" in statement
    ]
    return text(statement).bindparams(*params).columns(**{c: TYPES[c] for c in columns})


PRODUCT = sql(
    f"SELECT {PRODUCT_COLUMNS} {LIVE_PRODUCTS} AND id = :product_id",
    "id", "price", "created_at", "updated_at",
)  # fmt: skip
PRODUCT_COUNT = sql(f"SELECT count(*) {LIVE_PRODUCTS}")
PRODUCT_PAGE = sql(
    f"SELECT {PRODUCT_COLUMNS} {LIVE_PRODUCTS} ORDER BY created_at, id LIMIT :limit OFFSET :offset",
    "id", "price", "created_at", "updated_at",
)  # fmt: skip
ORDER_TYPED = ("id", "customer_id", "account_id", "billing_address", "shipping_address")
ORDER_PAGE_SQL = "SELECT {columns} {orders} ORDER BY created_at, id LIMIT :limit OFFSET :offset"
ORDER_COUNT = sql(f"SELECT count(*) {OWN_ORDERS}")
ORDER_PAGE = sql(
    ORDER_PAGE_SQL.format(columns=ORDER_COLUMNS, orders=OWN_ORDERS),
    *ORDER_TYPED, "created_at", "updated_at",
)  # fmt: skip
ACCOUNT_ORDER_COUNT = sql(f"SELECT count(*) {ACCOUNT_ORDERS}")
ACCOUNT_ORDER_PAGE = sql(
    ORDER_PAGE_SQL.format(columns=ORDER_COLUMNS, orders=ACCOUNT_ORDERS),
    *ORDER_TYPED, "created_at", "updated_at",
)  # fmt: skip
ITEM_IDS = sql(
    "SELECT order_id, id FROM sales_order_item WHERE store_id = :store_id "
    "AND order_id IN :order_ids ORDER BY created_at, id",
    "order_id", "id",
    expanding=("order_ids",),
)  # fmt: skip


def _utc(moment: datetime) -> str:
    # SQLite hands back naive datetimes; Keyhouse stores UTC.
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat()


def _timestamps(row: Row[Any]) -> dict[str, Any]:
    return {"timestamps": {"created_at": _utc(row.created_at), "updated_at": _utc(row.updated_at)}}


def _product(row: Row[Any]) -> dict[str, Any]:
    return {
        "type": "product",
        "id": str(row.id),
        "name": row.name,
        "slug": row.slug,
        "sku": row.sku,
        "description": row.description,
        "manage_stock": bool(row.manage_stock),
        "price": [
            {"amount": p["amount"], "currency": p["currency"], "includes_tax": p["includes_tax"]}
            for p in row.price
        ],
        "status": row.status,
        "commodity_type": row.commodity_type,
        "meta": _timestamps(row),
    }


def _formatted(amount: int, currency: str) -> str:
    """Two decimals: the bench's orders are in USD."""
    digits = str(abs(amount)).rjust(3, "0")
    return f"{'-' if amount < 0 else ''}{digits[:-2]}.{digits[-2:]} {currency}"


def _order(row: Row[Any], item_ids: list[uuid.UUID]) -> dict[str, Any]:
    shown = {
        "amount": row.total_amount,
        "currency": row.currency,
        "formatted": _formatted(row.total_amount, row.currency),
    }
    customer_id = str(row.customer_id) if row.customer_id is not None else None
    relationships: dict[str, Any] = {
        "customer": {"data": {"type": "customer", "id": customer_id}},
        "items": {"data": [{"type": "item", "id": str(i)} for i in item_ids]},
    }
    if row.account_id is not None:
        relationships["account"] = {"data": {"type": "account", "id": str(row.account_id)}}
    return {
        "type": "order",
        "id": str(row.id),
        "status": row.status,
        "payment": row.payment,
        "shipping": row.shipping,
        "customer": {"name": row.customer_name, "email": row.customer_email},
        "billing_address": row.billing_address,
        "shipping_address": row.shipping_address,
        "meta": {"display_price": {"with_tax": shown}, **_timestamps(row)},
        "relationships": relationships,
    }


def _page(request: Request) -> tuple[int, int]:
    query = request.query_params
    return int(query.get("page[limit]", "25")), int(query.get("page[offset]", "0"))


def _list(request: Request, data: list[Any], limit: int, offset: int, total: int) -> Response:
    """Keyhouse's list document: its links and its `meta`."""

    def link(at: int) -> str:
        query = {**request.query_params, "page[limit]": str(limit), "page[offset]": str(at)}
        return f"{request.url.path}?{urlencode(query)}"

    document = {
        "data": data,
        "links": {
            "current": link(offset),
            "first": link(0),
            "last": link(max(0, (total - 1) // limit * limit)),
            "prev": link(max(0, offset - limit)) if offset > 0 else None,
            "next": link(offset + limit) if offset + limit < total else None,
        },
        "meta": {
            "page": {
                "limit": limit,
                "offset": offset,
                "current": offset // limit + 1,
                "total": max(1, -(-total // limit)),
            },
            "results": {"total": total},
        },
    }
    return _json(document)


def _json(document: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(document), status, media_type="application/json")


async def _item_ids(
    connection: AsyncConnection, store_id: uuid.UUID, orders: Sequence[Row[Any]]
) -> dict[uuid.UUID, list[uuid.UUID]]:
    ids: dict[uuid.UUID, list[uuid.UUID]] = defaultdict(list)
    if orders:
        params = {"store_id": store_id, "order_ids": [order.id for order in orders]}
        for order_id, item_id in await connection.execute(ITEM_IDS, params):
            ids[order_id].append(item_id)
    return ids


def create_bare_app() -> FastAPI:
    url = os.environ["KEYHOUSE_DATABASE_URL"]
    store_id = uuid.UUID(os.environ["BENCH_STORE_ID"])
    customer_id = uuid.UUID(os.environ["BENCH_CUSTOMER_ID"])
    account_id = uuid.UUID(os.environ["BENCH_ACCOUNT_ID"])
    engines: list[AsyncEngine] = []

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Keyhouse's pool sizes on PostgreSQL; SQLAlchemy's defaults on SQLite, as Keyhouse.
        sized = {} if url.startswith("sqlite") else {"pool_size": 10, "max_overflow": 10}
        engines.append(create_async_engine(url, **sized))
        yield
        await engines[0].dispose()

    app = FastAPI(title="Keyhouse benchmark: bare reads", lifespan=lifespan)

    @app.get("/v2/products/{product_id}")
    async def get_product(product_id: uuid.UUID) -> Response:
        params = {"store_id": store_id, "product_id": product_id}
        async with engines[0].connect() as connection:
            row = (await connection.execute(PRODUCT, params)).first()
        if row is None:
            return _json({"errors": [{"status": 404}]}, 404)
        return _json({"data": _product(row)})

    @app.get("/v2/products")
    async def list_products(request: Request) -> Response:
        limit, offset = _page(request)
        params = {"store_id": store_id, "limit": limit, "offset": offset}
        async with engines[0].connect() as connection:
            total = (await connection.execute(PRODUCT_COUNT, params)).scalar_one()
            rows = (await connection.execute(PRODUCT_PAGE, params)).all()
        return _list(request, [_product(row) for row in rows], limit, offset, total)

    @app.get("/v2/orders")
    async def list_orders(request: Request) -> Response:
        limit, offset = _page(request)
        params: dict[str, Any] = {"store_id": store_id, "customer_id": customer_id}
        count, page = ORDER_COUNT, ORDER_PAGE
        if ACCOUNT_TOKEN_HEADER in request.headers:
            params = {"store_id": store_id, "account_id": account_id}
            count, page = ACCOUNT_ORDER_COUNT, ACCOUNT_ORDER_PAGE
        async with engines[0].connect() as connection:
            total = (await connection.execute(count, params)).scalar_one()
            paged = {**params, "limit": limit, "offset": offset}
            rows = (await connection.execute(page, paged)).all()
            items = await _item_ids(connection, store_id, rows)
        data = [_order(row, items[row.id]) for row in rows]
        return _list(request, data, limit, offset, total)

    return app
