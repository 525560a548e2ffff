"""A soak: mixed load (tokens of both grants, product writes and reads, a shopper's logins) for
`duration` seconds, the resident memory of every worker sampled every `sample` seconds.

Reported: requests, errors by class, acknowledged writes lost, and each worker's memory over
time, with its growth over the second half of the run (a leak keeps growing; a warmed-up
worker levels off).
"""

import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from fault_load import Load, errors, outcomes
from fault_scenarios import served, stored_skus
from harness import Server, log

PLAN = ("client_credentials", "implicit", "write", "read")


async def _soak(server: Server, load: Load, duration: float, sample: float) -> list[dict[str, Any]]:
    samples = []
    started = time.monotonic()
    async with load.running():
        while (elapsed := time.monotonic() - started) < duration:
            samples.append(
                {"seconds": round(elapsed, 1), "rss_mib": server.memory().per_worker_mib}
            )
            await asyncio.sleep(min(sample, max(0.0, duration - elapsed)))
    samples.append(
        {"seconds": round(time.monotonic() - started, 1), "rss_mib": server.memory().per_worker_mib}
    )
    return samples


def soak(workers: int, clients: int, duration: float, sample: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="keyhouse-soak-") as temporary:
        root = Path(temporary)
        database_url = f"sqlite+aiosqlite:///{root / 'keyhouse.db'}"
        with served(root, root, database_url, workers) as (server, callers):
            log(f"[soak] {duration:.0f} s, {workers} workers, {clients + 1} clients")
            load = Load(f"http://127.0.0.1:{server.port}", callers, [PLAN] * clients + [("login",)])
            samples = asyncio.run(_soak(server, load, duration, sample))
        stored = asyncio.run(stored_skus(database_url))
    half = [s for s in samples if s["seconds"] >= samples[-1]["seconds"] / 2]
    growth = [round(b - a, 1) for a, b in zip(half[0]["rss_mib"], half[-1]["rss_mib"], strict=True)]
    answers = load.answers
    report = {
        "fault": "soak",
        "workers": workers,
        "clients": clients + 1,
        "duration_seconds": duration,
        "requests": len(answers),
        "requests_per_second": round(len(answers) / duration, 1),
        "outcomes": outcomes(answers),
        "errors": errors(answers),
        "acknowledged_writes": len(load.acknowledged),
        "lost_writes": len(load.acknowledged - stored),
        "rss_mib_samples": samples,
        "rss_growth_second_half_mib": growth,
    }
    memory = f"{samples[0]['rss_mib']} -> {samples[-1]['rss_mib']} MiB"
    log(f"[soak] {len(answers)} requests, errors {report['errors'] or 'none'}, RSS {memory}")
    return report
