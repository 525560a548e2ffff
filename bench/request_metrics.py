"""What the request-metrics layer (`RequestMetrics`, app/monitoring.py) adds to each request.

Measured in-process as `bench/request_id.py` measures the request-id layer (and with its
helpers): ASGI calls with a fake scope, with and without the layer, alternating in rounds; the
best round of each, and the median of paired rounds.

1. Around an app that only answers: the layer's own cost.
2. Around Keyhouse, an implicit grant at `POST /oauth/access_token` (the busiest path).

With several workers the metrics live in memory-mapped files (prometheus_client's multiprocess
mode), which costs more per update; to measure that, point the variable at an empty directory:

    .venv/bin/python bench/request_metrics.py [--rounds 15] [--requests 20000]
    PROMETHEUS_MULTIPROC_DIR=$(mktemp -d) .venv/bin/python bench/request_metrics.py
"""

import argparse
import asyncio
import statistics
import tempfile
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from request_id import answer, http_scope, keyhouse_app, per_request_us
from starlette.types import ASGIApp, Scope

from app.metrics import MULTIPROCESS
from app.monitoring import RequestMetrics


async def compare(
    name: str, bare: ASGIApp, scope: Scope, body: bytes, rounds: int, requests: int
) -> None:
    wrapped = RequestMetrics(bare)
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


async def main(rounds: int, requests: int, token_requests: int) -> None:
    print(f"metrics in {'memory-mapped files' if MULTIPROCESS else 'memory'}")
    await compare("bare ASGI app", answer, http_scope("/", b""), b"", rounds, requests)
    with tempfile.TemporaryDirectory() as directory:
        app, close, client_id = await keyhouse_app(Path(directory))
        try:
            # Keyhouse's own stack minus its outer layers: what FastAPI builds by itself.
            inner = FastAPI.build_middleware_stack(app)
            body = f"grant_type=implicit&client_id={client_id}".encode()
            scope: dict[str, Any] = http_scope("/oauth/access_token", body)
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
    asyncio.run(main(arguments.rounds, arguments.requests, arguments.token_requests))
