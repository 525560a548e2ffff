"""What operators watch: `/healthz`, `/readyz`, `/metrics`, and the layer that measures requests.

`/healthz` answers as long as the process serves (no database call: a liveness probe that
failed with the database would have every replica restarted by one database outage).
`/readyz` answers 503 while the database does not, so a load balancer sends no traffic to a
replica that could only fail. Neither needs a token, and neither is counted in the request
metrics, nor is `/metrics` itself: probes and scrapes would only drown the real traffic.
"""

import asyncio
import logging
import time
from typing import Any, Literal

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import Counter, Histogram
from pydantic import BaseModel, ConfigDict
from sqlalchemy import text
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import metrics
from app.db import Database
from app.errors import ServiceUnavailableError, error_responses
from app.oauth.revocation import RevocationList
from app.oauth.router import TOKEN_PATHS

logger = logging.getLogger("keyhouse.monitoring")

HEALTH_PATH = "/healthz"
READINESS_PATH = "/readyz"
METRICS_PATH = "/metrics"
UNMEASURED_PATHS = frozenset({HEALTH_PATH, READINESS_PATH, METRICS_PATH})
READINESS_TIMEOUT_SECONDS = 2.0
DATABASE_UNREACHABLE = "The database is unreachable; try again after the time in Retry-After."

router = APIRouter(tags=["monitoring"])


class HealthStatus(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: Literal["ok", "ready"]


STATUS_RESPONSES: dict[int | str, dict[str, Any]] = {200: {"model": HealthStatus}}
METRICS_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Prometheus text exposition, or OpenMetrics if the scraper asks for it.",
        "content": {
            "text/plain": {"schema": {"type": "string"}},
            "application/openmetrics-text": {"schema": {"type": "string"}},
        },
    }
}


def _json(body: dict[str, Any]) -> Response:
    return Response(orjson.dumps(body), media_type="application/json")


@router.get(HEALTH_PATH, summary="Liveness: the process serves", responses=STATUS_RESPONSES)
async def get_health() -> Response:
    return _json({"status": "ok"})


@router.get(
    READINESS_PATH,
    summary="Readiness: the database answers (503 if not)",
    responses={**STATUS_RESPONSES, **error_responses(503)},
)
async def get_readiness(request: Request) -> Response:
    database: Database = request.app.state.database
    try:
        async with asyncio.timeout(READINESS_TIMEOUT_SECONDS):
            async with database.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
    except Exception as error:  # whatever the driver raises, the answer is the same
        logger.warning("not ready: the database did not answer (%s)", type(error).__name__)
        raise ServiceUnavailableError(DATABASE_UNREACHABLE) from error
    return _json({"status": "ready"})


@router.get(METRICS_PATH, summary="Prometheus metrics of every worker", responses=METRICS_RESPONSES)
async def get_metrics(request: Request) -> Response:
    revocations: RevocationList = request.app.state.revocations
    body, content_type = metrics.exposition(
        request.headers.get("accept"), active_revocations=revocations.counts()
    )
    return Response(body, headers={"Content-Type": content_type})


UNMATCHED = "unmatched"
# The method is the client's to choose: any other is counted as "other", so that no request
# can add a series.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER_METHOD = "other"


class RequestMetrics:
    """Pure ASGI middleware: counts and times HTTP requests by route template, method, status.

    The route is the template FastAPI matched (`/v2/customers/{customer_id}`, never the raw
    path), the token endpoint's own path (it is served ahead of routing), or `unmatched`. It
    runs on every request, so it reads the clock twice and keeps the labelled children of each
    (route, method, status) it has seen; `bench/request_metrics.py` measures it.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in UNMEASURED_PATHS:
            await self.app(scope, receive, send)
            return
        status = 500  # what the server answers if the app raises before it starts a response

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        started = time.perf_counter()
        try:
            await self.app(scope, receive, send_with_status)
        finally:
            self._observe(scope, status, time.perf_counter() - started)

    def _observe(self, scope: Scope, status: int, seconds: float) -> None:
        route = scope.get("route")
        if route is not None:
            template = route.path
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
