"""Health and readiness (app/monitoring.py)."""

import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from app import monitoring
from app.db import Database

from .conftest import free_port

# Health and readiness


async def test_health_and_readiness_answer_without_a_token(http: httpx.AsyncClient) -> None:
    health = await http.get("/healthz")
    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    ready = await http.get("/readyz")
    assert (ready.status_code, ready.json()) == (200, {"status": "ready"})


@pytest.fixture
async def database_away(app: FastAPI, tmp_path: Path) -> AsyncIterator[FastAPI]:
    """The app, its database swapped for one whose SQLite directory does not exist."""
    served = app.state.database
    app.state.database = Database(f"sqlite+aiosqlite:///{tmp_path / 'missing' / 'keyhouse.db'}")
    yield app
    await app.state.database.dispose()
    app.state.database = served


def assert_unavailable(response: httpx.Response) -> None:
    """503 with `Retry-After`, in the JSON:API errors body."""
    assert response.status_code == 503, response.text
    assert int(response.headers["retry-after"]) > 0
    (error,) = response.json()["errors"]
    assert error["status"] == 503
    assert error["title"] == "Service Unavailable"
    assert error["detail"] == monitoring.DATABASE_UNREACHABLE


async def test_readiness_is_503_while_the_database_is_away_and_health_stays_200(
    database_away: FastAPI, http: httpx.AsyncClient
) -> None:
    assert_unavailable(await http.get("/readyz"))
    health = await http.get("/healthz")  # liveness never asks the database
    assert (health.status_code, health.json()) == (200, {"status": "ok"})


async def test_readiness_is_503_when_nothing_listens_at_the_database_port(
    app: FastAPI, http: httpx.AsyncClient
) -> None:
    served = app.state.database
    app.state.database = Database(f"postgresql+asyncpg://root@127.0.0.1:{free_port()}/keyhouse")
    try:
        assert_unavailable(await http.get("/readyz"))
    finally:
        await app.state.database.dispose()
        app.state.database = served


async def test_readiness_gives_up_on_a_database_that_never_answers(
    app: FastAPI, http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(monitoring, "READINESS_TIMEOUT_SECONDS", 0.3)
    served = app.state.database
    with socket.socket() as silent:  # accepts connections (in the kernel), never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        app.state.database = Database(f"postgresql+asyncpg://root@127.0.0.1:{port}/keyhouse")
        try:
            started = time.monotonic()
            assert_unavailable(await http.get("/readyz"))
            assert time.monotonic() - started < 2
        finally:
            await app.state.database.dispose()
            app.state.database = served
