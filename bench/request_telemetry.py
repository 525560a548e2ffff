"""What the request-telemetry layer (`app/http/telemetry.py`: request id and request metrics) adds
to each request, measured in-process.

No server and no sockets: ASGI calls with a fake scope, receive and send, in a loop, with and
without the layer, alternating in rounds. On a shared machine other processes only ever add
time, so the best round of each is the better estimate; the median of paired rounds is shown
too.

1. Around an app that only answers (the layer's own cost, with little noise).
2. Around Keyhouse itself, an implicit grant at `POST /oauth/access_token` (the busiest path):
   the same difference, within the noise of a whole token request.

    .venv/bin/python bench/request_telemetry.py [--rounds 15] [--requests 20000] \
        [--token-requests 5000]

With several workers the metrics live in memory-mapped files (prometheus_client's multiprocess
mode), which costs more per update; to measure that, point the variable at an empty directory:

    PROMETHEUS_MULTIPROC_DIR=$(mktemp -d) .venv/bin/python bench/request_telemetry.py
"""

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from pydantic import SecretStr
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.http.telemetry import RequestTelemetry
from app.main import create_app
from app.oauth.clients import create_client
from app.oauth.stores import ensure_default_store
from app.observability.metrics import MULTIPROCESS
from app.runtime.db import Database
from app.runtime.models import Base
from app.runtime.passwords import ClientSecretHasher
from app.runtime.server_secret import load_server_keys
from app.runtime.settings import Settings

# What a backend's token request carries, more or less.
HEADERS = [
    (b"host", b"127.0.0.1:8000"),
    (b"user-agent", b"python-httpx/0.28.1"),
    (b"accept", b"*/*"),
    (b"accept-encoding", b"gzip, deflate"),
    (b"connection", b"keep-alive"),
    (b"content-type", b"application/x-www-form-urlencoded"),
]


def http_scope(path: str, body: bytes) -> Scope:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [*HEADERS, (b"content-length", str(len(body)).encode())],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


async def answer(scope: Scope, receive: Receive, send: Send) -> None:
    """The least an app can do: a 200 with a small body."""
    await send({"type": "http.response.start", "status": 200, "headers": [(b"a", b"b")]})
    await send({"type": "http.response.body", "body": b"{}"})


async def per_request_us(app: ASGIApp, scope: Scope, body: bytes, requests: int) -> float:
    async def receive() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    statuses: list[int] = []

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    started = time.perf_counter()
    for _ in range(requests):
        await app(dict(scope), receive, send)
    elapsed = time.perf_counter() - started
    assert set(statuses) == {200}, set(statuses)
    return elapsed / requests * 1e6


async def compare(
    name: str,
    bare: ASGIApp,
    scope: Scope,
    body: bytes,
    rounds: int,
    requests: int,
) -> None:
    wrapped = RequestTelemetry(bare)
    await per_request_us(wrapped, scope, body, requests // 10)  # warm up both
    await per_request_us(bare, scope, body, requests // 10)
    without, with_ = [], []
    for _ in range(rounds):
        without.append(await per_request_us(bare, scope, body, requests))
        with_.append(await per_request_us(wrapped, scope, body, requests))
    paired = statistics.median(
        layered - plain for plain, layered in zip(without, with_, strict=True)
    )
    print(
        f"{name}: best round {min(without):.2f} µs/request without the layer, "
        f"{min(with_):.2f} with: {min(with_) - min(without):+.2f} µs "
        f"(median of paired rounds {paired:+.2f} µs)"
    )


async def keyhouse_app(data_dir: Path) -> tuple[FastAPI, Callable[[], Awaitable[None]], str]:
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{data_dir / 'keyhouse.db'}",
        data_dir=data_dir,
        issuer="http://127.0.0.1:8000",
        server_secret=SecretStr("bench-server-secret-" + "x" * 32),
        # One address sends every request here: still counted, never refused.
        token_rate_limit_per_address="100000000/minute",  # noqa: S106 (a limit)
    )
    database = Database(settings.database_url)
    async with database.engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)
    async with database.sessions() as session:
        store = await ensure_default_store(session)
        hasher = ClientSecretHasher(load_server_keys(settings).client_secret_hmac)
        created = await create_client(session, hasher=hasher, name="bench", store_id=store.id)
    await database.dispose()
    app = create_app(settings)
    lifespan = app.router.lifespan_context(app)
    await lifespan.__aenter__()

    async def close() -> None:
        await lifespan.__aexit__(None, None, None)

    return app, close, created.client.id


async def main(rounds: int, requests: int, token_requests: int) -> None:
    """The layer around an app that only answers, then around Keyhouse's implicit grant."""
    await compare("bare ASGI app", answer, http_scope("/", b""), b"", rounds, requests)
    with tempfile.TemporaryDirectory() as directory:
        app, close, client_id = await keyhouse_app(Path(directory))
        try:
            # Keyhouse's own stack minus its outer layers: what FastAPI builds by itself.
            inner = FastAPI.build_middleware_stack(app)
            body = f"grant_type=implicit&client_id={client_id}".encode()
            scope: dict[str, Any] = dict(http_scope("/oauth/access_token", body))
            scope["app"] = app
            await compare("Keyhouse implicit token", inner, scope, body, rounds, token_requests)
        finally:
            await close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--requests", type=int, default=20_000, help="per round, bare app")
    parser.add_argument("--token-requests", type=int, default=5_000, help="per round, Keyhouse")
    arguments = parser.parse_args()
    print(f"metrics in {'memory-mapped files' if MULTIPROCESS else 'memory'}")
    asyncio.run(main(arguments.rounds, arguments.requests, arguments.token_requests))
