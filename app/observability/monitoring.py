"""What operators watch: `/healthz`, `/readyz` and `/metrics` (requests are measured by
`app/http/telemetry.py`).

`/healthz` answers as long as the process serves (no database call: a liveness probe that
failed with the database would have every replica restarted by one database outage).
`/readyz` answers 503 while the database does not, or while its storage refuses writes (a full
disk, a read-only one, I/O errors), so a load balancer sends no traffic to a replica that could
only fail. Neither needs a token, and neither is counted in the request
metrics, nor is `/metrics` itself: probes and scrapes would only drown the real traffic.
"""

import asyncio
import hmac
import logging
import uuid
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict
from sqlalchemy import delete, insert, text
from sqlalchemy.orm import Mapped, mapped_column

from app.http.errors import KeyhouseError, ServiceUnavailableError, error_responses, json_response
from app.oauth.revocation import RevocationList
from app.observability import metrics
from app.runtime.db import Base, Database, utcnow
from app.runtime.settings import Settings

logger = logging.getLogger("keyhouse.monitoring")

HEALTH_PATH = "/healthz"
READINESS_PATH = "/readyz"
METRICS_PATH = "/metrics"
UNMEASURED_PATHS = frozenset({HEALTH_PATH, READINESS_PATH, METRICS_PATH})
READINESS_TIMEOUT_SECONDS = 2.0
METRICS_REALM = 'Bearer realm="keyhouse-metrics"'
DATABASE_UNREACHABLE = "The database is unreachable; try again after the time in Retry-After."
DATABASE_REFUSES_WRITES = (
    "The database's storage refuses writes (full, read-only or failing); try again after the "
    "time in Retry-After."
)
# While writes fail, readiness writes a probe row at most this often per worker; the checks in
# between answer from the last probe, without touching the database.
WRITE_PROBE_SECONDS = 1.0

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


@router.get(HEALTH_PATH, summary="Liveness: the process serves", responses=STATUS_RESPONSES)
async def get_health() -> Response:
    return json_response({"status": "ok"})


@router.get(
    READINESS_PATH,
    summary="Readiness: the database answers (503 if not)",
    responses={**STATUS_RESPONSES, **error_responses(503)},
)
async def get_readiness(request: Request) -> Response:
    database: Database = request.app.state.database
    if database.writes.fault is not None:
        await _probe_writes(database)
        return json_response({"status": "ready"})
    try:
        async with asyncio.timeout(READINESS_TIMEOUT_SECONDS):
            async with database.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
    except Exception as error:  # whatever the driver raises, the answer is the same
        logger.warning("not ready: the database did not answer (%s)", type(error).__name__)
        raise ServiceUnavailableError(DATABASE_UNREACHABLE) from error
    return json_response({"status": "ready"})


class WriteProbe(Base):
    """A row that the readiness probe writes and deletes in one transaction: never kept."""

    __tablename__ = "write_probe"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    probed_at: Mapped[datetime] = mapped_column(default=utcnow)


async def _probe_writes(database: Database) -> None:
    """Since a write met a storage fault: one committed write, at most every
    `WRITE_PROBE_SECONDS`, decides whether writes succeed again (503 until one does)."""
    writes = database.writes
    if not writes.probe_due(WRITE_PROBE_SECONDS):
        raise ServiceUnavailableError(DATABASE_REFUSES_WRITES)
    probe = uuid.uuid4()
    try:
        async with asyncio.timeout(READINESS_TIMEOUT_SECONDS):
            async with database.engine.begin() as connection:  # committed, both or neither
                await connection.execute(insert(WriteProbe).values(id=probe, probed_at=utcnow()))
                await connection.execute(delete(WriteProbe).where(WriteProbe.id == probe))
    except Exception as error:
        logger.warning(
            "not ready: the write probe failed (%s)", writes.fault or type(error).__name__
        )
        raise ServiceUnavailableError(DATABASE_REFUSES_WRITES) from error
    writes.recovered()


class MetricsTokenError(KeyhouseError):
    """401: `KEYHOUSE_METRICS_TOKEN` is set, and the scrape did not send it as a bearer."""

    status_code = 401
    title = "Unauthorized"
    default_detail = "The metrics need the metrics token: Authorization: Bearer <token>."

    def response_headers(self) -> dict[str, str]:
        return {**self.headers, "WWW-Authenticate": METRICS_REALM}


def require_metrics_token(request: Request) -> None:
    """When a metrics token is configured, only a scrape that sends it may read the metrics
    (Prometheus: `authorization: {credentials: ...}` in the scrape config)."""
    settings: Settings = request.app.state.settings
    if settings.metrics_token is None:
        return
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    expected = settings.metrics_token.get_secret_value().encode()
    matches = hmac.compare_digest(credentials.strip().encode(), expected)  # constant time
    if scheme.lower() != "bearer" or not matches:
        raise MetricsTokenError()


@router.get(
    METRICS_PATH,
    summary="Prometheus metrics of every worker",
    description="Open to any caller unless `KEYHOUSE_METRICS_TOKEN` is set; then the scrape "
    "must send it as `Authorization: Bearer <token>`.",
    responses={**METRICS_RESPONSES, **error_responses(401)},
    dependencies=[Depends(require_metrics_token)],
)
async def get_metrics(request: Request) -> Response:
    revocations: RevocationList = request.app.state.revocations
    body, content_type = metrics.exposition(
        request.headers.get("accept"), active_revocations=revocations.counts()
    )
    return Response(body, headers={"Content-Type": content_type})
