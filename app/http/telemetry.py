"""The outermost layer: every HTTP request's id, and its count and duration in the metrics.

One pure ASGI layer does both because it runs on every request, the token endpoint's included:
one wrapper around `send` instead of two (measured by `bench/request_telemetry.py`). It sits
outside Starlette's 500 handler, so the 500s it renders carry `X-Request-Id` and are counted.

- The id (`app/http/request_id.py`): an incoming `X-Request-Id` if it is a plain token, else a new
  one; sent back as `X-Request-Id` and kept in the context variable that log lines read.
- The metrics (`app/observability/metrics.py`): requests counted and timed by route template
  (the one FastAPI matched, `/v2/customers/{customer_id}`, never the raw path), the token
  endpoint's own path (it is served ahead of routing), or `unmatched`; by method; and by
  status. Probes and scrapes (`UNMEASURED_PATHS`) are not counted.
"""

import time

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.http.request_id import HEADER, current_request, request_id_from
from app.oauth.router import TOKEN_PATHS
from app.observability import metrics
from app.observability.monitoring import UNMEASURED_PATHS

UNMATCHED = "unmatched"
# The method is the client's to choose: any other is counted as "other", so that no request
# can add a series.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER_METHOD = "other"


class RequestTelemetry:
    """Pure ASGI middleware: gives each HTTP request its id, and counts and times it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # The labelled children of each (route, method, status) seen, so that a request costs
        # a dictionary lookup rather than prometheus_client's label resolution.
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_from(scope["headers"])
        token = current_request.set((request_id, time.time()))
        status = 500  # what the server answers if the app raises before it starts a response

        async def send_observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                # A new list: a response may send a list it keeps (and sends again).
                message["headers"] = [*message.get("headers", ()), (HEADER, request_id)]
            await send(message)

        started = time.perf_counter()
        try:
            await self.app(scope, receive, send_observed)
        finally:
            if scope["path"] not in UNMEASURED_PATHS:
                self._observe(scope, status, time.perf_counter() - started)
        # Only on success: when the app raises, the server logs the error after this layer
        # returns, in this same context, and that line should carry the id too. Servers run
        # each request in a task of its own, so the value goes no further.
        current_request.reset(token)

    def _observe(self, scope: Scope, status: int, seconds: float) -> None:
        route = scope.get("route")
        if route is not None:
            # The template as documented: `{customer_id}`, not its `{customer_id:customer_id}`.
            template = getattr(route, "path_format", route.path)
        elif scope["path"] in TOKEN_PATHS:
            template = scope["path"]
        else:
            template = UNMATCHED
        method = scope["method"]
        key = (template, method if method in METHODS else OTHER_METHOD, status)
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = _children(*key)
        count, duration = children
        count.inc()
        duration.observe(seconds)


def _children(template: str, method: str, status: int) -> tuple[Counter, Histogram]:
    return (
        metrics.http_requests.labels(template, method, str(status)),
        metrics.http_request_duration.labels(template, method),
    )
