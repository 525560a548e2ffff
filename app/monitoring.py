"""What operators watch: `/healthz` and `/readyz`.

`/healthz` answers as long as the process serves (no database call: a liveness probe that
failed with the database would have every replica restarted by one database outage).
`/readyz` answers 503 while the database does not, so a load balancer sends no traffic to a
replica that could only fail. Neither needs a token.
"""

import asyncio
import logging
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import text

from app.db import Database
from app.errors import ServiceUnavailableError

logger = logging.getLogger("keyhouse.monitoring")

HEALTH_PATH = "/healthz"
READINESS_PATH = "/readyz"
READINESS_TIMEOUT_SECONDS = 2.0
DATABASE_UNREACHABLE = "The database is unreachable; try again after the time in Retry-After."

router = APIRouter(tags=["monitoring"])


def _json(body: dict[str, Any]) -> Response:
    return Response(orjson.dumps(body), media_type="application/json")


@router.get(HEALTH_PATH, summary="Liveness: the process serves")
async def get_health() -> Response:
    return _json({"status": "ok"})


@router.get(READINESS_PATH, summary="Readiness: the database answers (503 if not)")
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
