"""The store API's busiest reads as a lean ASGI layer, ahead of FastAPI's routing.

Storefronts send `GET /v2/products/{id}`, `GET /v2/products` and, for a logged-in shopper,
`GET /v2/orders` far more often than anything else. Measured with the benchmark in `bench/`
(bench/README.md), FastAPI's routing, dependency resolution and parameter validation cost a
request about 130 µs: several times what a product read from the catalogue costs. So this layer,
installed inside the app's middleware like the token endpoint's (app/oauth/endpoint.py), answers
those three itself: the same caller check as the routes' `ReadCaller` (`read_caller`), then the
same functions as the routes (`product_answer`, `products_answer`, `orders_answer`), with the
errors rendered as the app's handlers render them.

Everything else goes on to FastAPI, which also documents these routes and answers them whenever
this layer does not: other methods, other paths, and an id that is not a UUID in its canonical
form (so FastAPI's validation answers keep their wording). The metrics count either way under
the route's template.
"""

import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from app.http.errors import (
    DATABASE_ERRORS,
    KeyhouseError,
    ServiceUnavailableError,
    database_outage,
    render,
)
from app.http.security import Caller, read_caller
from app.store import order_routes, product_routes

PRODUCTS_PATH = "/v2/products"
PRODUCT_PREFIX = PRODUCTS_PATH + "/"
ORDERS_PATH = "/v2/orders"
CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

CallerOf = Callable[[Request], Awaitable[Caller]]
Answer = Callable[[Request, Caller], Awaitable[Response]]


def _route(endpoint: Callable[..., object]) -> APIRoute:
    """The FastAPI route of `endpoint`: what the metrics name a request after."""
    routers = (product_routes.router, order_routes.router)
    return next(
        route
        for router in routers
        for route in router.routes
        if isinstance(route, APIRoute) and route.endpoint is endpoint
    )


@dataclass(frozen=True, slots=True)
class _Served:
    route: APIRoute
    answer: Answer


class StoreReads:
    """ASGI middleware that answers the three busiest reads and passes everything else on."""

    def __init__(self, app: ASGIApp, *, caller_of: CallerOf = read_caller) -> None:
        self.app = app
        self.caller_of = caller_of  # the bench's unvalidated app swaps in a fixed caller
        self._products = _Served(
            _route(product_routes.list_products), product_routes.products_answer
        )
        self._orders = _Served(_route(order_routes.list_orders), order_routes.orders_answer)
        self._product = _route(product_routes.get_product)

    def _served(self, path: str) -> _Served | None:
        if path == PRODUCTS_PATH:
            return self._products
        if path == ORDERS_PATH:
            return self._orders
        product_id = path[len(PRODUCT_PREFIX) :] if path.startswith(PRODUCT_PREFIX) else ""
        if not CANONICAL_UUID.fullmatch(product_id):
            return None

        async def answer(request: Request, caller: Caller) -> Response:
            return await product_routes.product_answer(request, caller, uuid.UUID(product_id))

        return _Served(self._product, answer)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        served = None
        if scope["type"] == "http" and scope["method"] == "GET":
            served = self._served(scope["path"])
        if served is None:
            await self.app(scope, receive, send)
            return
        scope["route"] = served.route
        request = Request(scope, receive)
        try:
            response = await served.answer(request, await self.caller_of(request))
        except KeyhouseError as error:
            response = render(error)
        except DATABASE_ERRORS as error:
            # As the app's handler for these: an outage is a 503; anything else, a bug (500).
            if not database_outage(error, method="GET", path=scope["path"]):
                raise
            response = render(ServiceUnavailableError())
        await response(scope, receive, send)
