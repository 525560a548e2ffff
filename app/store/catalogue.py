"""The products storefronts read, kept per worker for a moment, ready to send.

Reads of the catalogue far outnumber its writes, and the same few products and pages are read
over and over. So each worker keeps what it read (a product, a page of a list) for
`catalogue_cache_seconds` (one second by default, as clients are kept for the token endpoint):
while it is fresh, a read costs no database round trip. A write through this worker forgets
everything at once, so it reads its own writes; the other workers forget theirs when the write
is announced to them (app/runtime/change_feed.py), or, without a push, once their copy expires,
within that bound. Set it to 0 to read the database every time.

Products are kept as JSON already encoded (`orjson.Fragment`), which the answers embed as they
are: neither the encoding nor the memory is paid twice for a product on several pages.
"""

import functools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import ColumnElement, Row, select

from app.http.jsonapi import Page, parse_filter, read_page
from app.runtime.cache import ExpiringCache
from app.runtime.db import Database
from app.store.products import LIVE, PRODUCT_FILTERS, Product, product_json

MAX_CACHED_PRODUCTS = 10_000  # about 600 bytes each
MAX_CACHED_PAGES = 256  # 13 kB for a page of 25 products, 50 kB for one of 100


@dataclass(frozen=True, slots=True)
class CachedProduct:
    status: str
    document: orjson.Fragment  # `product_json`, encoded


@dataclass(frozen=True, slots=True)
class CachedPage:
    products: list[orjson.Fragment]
    total: int


def _encoded(product: Row[Any]) -> CachedProduct:
    data = product_json(product)
    return CachedProduct(status=data["status"], document=orjson.Fragment(orjson.dumps(data)))


class Catalogue:
    """Reads products, by id or by the page, through a short-lived per-worker cache."""

    def __init__(self, database: Database, *, cache_seconds: float) -> None:
        self._database = database
        self._products: ExpiringCache[CachedProduct | None] = ExpiringCache(
            cache_seconds, MAX_CACHED_PRODUCTS
        )
        self._pages: ExpiringCache[CachedPage] = ExpiringCache(cache_seconds, MAX_CACHED_PAGES)

    async def product(
        self, *, store_id: uuid.UUID, product_id: uuid.UUID, live_only: bool
    ) -> orjson.Fragment | None:
        """The product as it is answered, or None if the store has none with this id (or, with
        `live_only`, only a draft)."""
        key = f"{store_id}/{product_id}"
        cached = self._products.fresh(key)  # the busy path, with no await
        if cached is None:
            found = await self._products.get(key, lambda: self._load_product(store_id, product_id))
        else:
            (found,) = cached
        if found is None or (live_only and found.status != LIVE):
            return None
        return found.document

    async def page(
        self,
        *,
        store_id: uuid.UUID,
        page: Page,
        live_only: bool,
        filter_text: str,
    ) -> tuple[list[orjson.Fragment], int]:
        """A page of the store's products matching `filter_text` (`filter=eq(sku,…)`, a 400 if
        malformed), and how many there are in all."""
        key = f"{store_id}/{live_only}/{page.limit}/{page.offset}/{filter_text}"
        cached = self._pages.fresh(key)  # a filter is only ever cached once it parsed
        if cached is None:
            conditions = parse_filter(filter_text, PRODUCT_FILTERS)
            load = functools.partial(self._load_page, store_id, page, live_only, conditions)
            found = await self._pages.get(key, load)
        else:
            (found,) = cached
        return found.products, found.total

    def changed(self) -> None:
        """A product of any store was written through this worker: forget every copy."""
        self._products.clear()
        self._pages.clear()

    async def _load_product(
        self, store_id: uuid.UUID, product_id: uuid.UUID
    ) -> CachedProduct | None:
        query = select(Product.__table__).where(
            Product.store_id == store_id, Product.id == product_id
        )
        async with self._database.reading() as connection:
            row = (await connection.execute(query)).first()
        return _encoded(row) if row is not None else None

    async def _load_page(
        self,
        store_id: uuid.UUID,
        page: Page,
        live_only: bool,
        conditions: Sequence[ColumnElement[bool]],
    ) -> CachedPage:
        where = [Product.store_id == store_id, *conditions]
        if live_only:
            where.append(Product.status == LIVE)
        async with self._database.reading() as connection:
            rows, total = await read_page(
                connection,
                Product.__table__,
                where=where,
                page=page,
                order_by=[Product.created_at, Product.id],
            )
        return CachedPage(products=[_encoded(row).document for row in rows], total=total)
