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

from request_id import main

from app.metrics import MULTIPROCESS
from app.monitoring import RequestMetrics

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--requests", type=int, default=20_000, help="per round, bare app")
    parser.add_argument("--token-requests", type=int, default=5_000, help="per round, Keyhouse")
    arguments = parser.parse_args()
    print(f"metrics in {'memory-mapped files' if MULTIPROCESS else 'memory'}")
    asyncio.run(
        main(arguments.rounds, arguments.requests, arguments.token_requests, RequestMetrics)
    )
