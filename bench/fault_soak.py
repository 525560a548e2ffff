"""A soak: mixed load (tokens of both grants, product writes and reads, a shopper's logins) for
`duration` seconds, the resident memory of every worker sampled every `sample` seconds.

Reported: requests, errors by class, acknowledged writes lost, and each worker's memory over
time, with its floor in each quarter of the run: the least of the quarter's samples, which
leaves out the memory of a password hash in progress (argon2id takes tens of MiB for a moment).
A leak keeps raising the floor; a warmed-up worker's floor levels off.
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


def quarter_floors(samples: list[dict[str, Any]]) -> list[list[float]]:
    """Per quarter of the run, each worker's least resident memory sampled in it."""
    end = samples[-1]["seconds"]
    quarters: list[list[list[float]]] = [[], [], [], []]
    for sample in samples:
        quarters[min(3, int(4 * sample["seconds"] / end))].append(sample["rss_mib"])
    return [
        [min(column) for column in zip(*quarter, strict=True)] for quarter in quarters if quarter
    ]


def soak(workers: int, clients: int, duration: float, sample: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="keyhouse-soak-") as temporary:
        root = Path(temporary)
        database_url = f"sqlite+aiosqlite:///{root / 'keyhouse.db'}"
        with served(root, root, database_url, workers) as (server, callers):
            log(f"[soak] {duration:.0f} s, {workers} workers, {clients + 1} clients")
            load = Load(f"http://127.0.0.1:{server.port}", callers, [PLAN] * clients + [("login",)])
            samples = asyncio.run(_soak(server, load, duration, sample))
        stored = asyncio.run(stored_skus(database_url))
    floors = quarter_floors(samples)
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
        "rss_floor_mib_by_quarter": floors,
    }
    memory = f"{samples[0]['rss_mib']} -> {samples[-1]['rss_mib']} MiB"
    log(f"[soak] {len(answers)} requests, errors {report['errors'] or 'none'}, RSS {memory}")
    return report
