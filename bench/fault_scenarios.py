"""The outages: Redis killed, Redis frozen, PostgreSQL stopped, the disk full. One timeline each:
load for `warmup` seconds, break the service, `outage` seconds, mend it, `after` seconds more.

Keyhouse serves with `keyhouse serve --workers N` (no access log), its rate limits too high to
reach. The load is `clients` clients looping over client_credentials, implicit and a product
write, and one more logging a shopper in; a readiness poller asks `/readyz` every 100 ms.
"""

import asyncio
import contextlib
import json
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fault_load import (
    Answer,
    Callers,
    Load,
    between,
    errors,
    failed_after,
    latency_ms,
    outcomes,
    recovery_seconds,
    sign_up_shopper,
)
from fault_services import PrivatePostgres, PrivateRedis, Tmpfs
from harness import Server, create_client, free_port, keyhouse, keyhouse_argv, keyhouse_env, log
from sqlalchemy import select

from app.runtime.db import Database
from app.store.products import Product

SLOW_SECONDS = 0.45  # an answer this slow during an outage was held up (a Redis timeout is 0.5 s)
# Held-up answers are counted apart from this long after the break: the requests in flight when
# the service broke, and those sent before the first failure told a worker so, are behind it.
SETTLED_SECONDS = 1.0
DISK_BYTES = 64 * 1024 * 1024
READINESS_POLL_SECONDS = 0.1


@dataclass(frozen=True, slots=True)
class Options:
    workers: int = 2
    clients: int = 8
    warmup: float = 3.0
    outage: float = 5.0
    after: float = 5.0


@dataclass(frozen=True, slots=True)
class Timeline:
    breaking: float
    broken: float
    mending: float
    mended: float


@contextlib.contextmanager
def served(
    data_dir: Path, logs: Path, database_url: str, workers: int, **env: str
) -> Iterator[tuple[Server, Callers]]:
    """Keyhouse migrated and serving on `database_url`, with a backend client, a public one and a
    shopper to act as; its log in `logs`, which a full disk does not hold."""
    environment = keyhouse_env(data_dir, database_url) | env
    keyhouse(["db", "upgrade"], environment)
    backend = create_client(environment)
    public = keyhouse(["clients", "create", "--name", "shop", "--public", "--json"], environment)
    port = free_port()
    argv = keyhouse_argv(port, workers)
    server = Server("keyhouse", argv, environment, port, logs / "keyhouse.log", workers=workers)
    try:
        server.start()
        server.wait_ready()
        public_id = json.loads(public)["client_id"]
        email = sign_up_shopper(f"http://127.0.0.1:{port}", public_id)
        yield server, Callers(backend, public_id, email)
    finally:
        server.stop()


class Readiness:
    """`/readyz` asked every 100 ms on a fresh connection: when it said what."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.answers: list[tuple[float, int]] = []

    @contextlib.asynccontextmanager
    async def polling(self) -> AsyncIterator[None]:
        task = asyncio.create_task(self._poll())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _poll(self) -> None:
        async with httpx.AsyncClient(base_url=self.url, timeout=3) as http:
            while True:
                with contextlib.suppress(httpx.TransportError):
                    answered = (
                        await http.get("/readyz", headers={"Connection": "close"})
                    ).status_code
                    self.answers.append((time.monotonic(), answered))
                await asyncio.sleep(READINESS_POLL_SECONDS)

    def first(self, status: int, after: float) -> float | None:
        """Seconds from `after` to the first answer `status` after it."""
        times = [at for at, answered in self.answers if at >= after and answered == status]
        return round(min(times) - after, 3) if times else None


async def outage(
    server: Server,
    callers: Callers,
    options: Options,
    break_: Callable[[], None],
    mend: Callable[[], None],
) -> tuple[Load, Readiness, Timeline]:
    url = f"http://127.0.0.1:{server.port}"
    plans = [("client_credentials", "implicit", "write")] * options.clients + [("login",)]
    load = Load(url, callers, plans)
    readiness = Readiness(url)
    async with load.running(), readiness.polling():
        await asyncio.sleep(options.warmup)
        breaking = time.monotonic()
        await asyncio.to_thread(break_)
        broken = time.monotonic()
        await asyncio.sleep(options.outage)
        mending = time.monotonic()
        await asyncio.to_thread(mend)
        mended = time.monotonic()
        await asyncio.sleep(options.after)
    return load, readiness, Timeline(breaking, broken, mending, mended)


async def stored_skus(database_url: str) -> set[str]:
    database = Database(database_url)
    try:
        async with database.sessions() as session:
            return set(await session.scalars(select(Product.sku)))
    finally:
        await database.dispose()


def report(
    fault: str,
    load: Load,
    readiness: Readiness,
    timeline: Timeline,
    options: Options,
    stored: set[str],
) -> dict[str, Any]:
    answers = load.answers
    start = min(a.sent for a in answers)
    end = max(a.sent for a in answers)
    phases = {
        "before": between(answers, start, timeline.breaking),
        "during": between(answers, timeline.breaking, timeline.mended),
        "after": between(answers, timeline.mended, end + 1),
    }
    recovered = {
        kind: recovery_seconds(answers, kind, timeline.mended) for kind in ("write", "login")
    }
    settled = timeline.mended + max((r for r in recovered.values() if r is not None), default=0.0)
    held = [a for a in phases["during"] if a.took > SLOW_SECONDS]
    return {
        "fault": fault,
        "workers": options.workers,
        "clients": options.clients + 1,
        "outage_seconds": round(timeline.mending - timeline.broken, 2),
        "break_took_seconds": round(timeline.broken - timeline.breaking, 3),
        "mend_took_seconds": round(timeline.mended - timeline.mending, 3),
        "requests": len(answers),
        "requests_per_second": round(len(answers) / (end - start), 1),
        "outcomes": {phase: outcomes(phased) for phase, phased in phases.items()},
        "errors": errors(answers),
        "acknowledged_writes": len(load.acknowledged),
        "lost_writes": len(load.acknowledged - stored),
        "recovery_seconds": recovered,
        "failed_after_recovery": failed_after(answers, settled),
        "not_ready_after_break_seconds": readiness.first(503, timeline.breaking),
        "ready_after_mend_seconds": readiness.first(200, timeline.mended),
        "latency_ms": {phase: latency_by_kind(phased) for phase, phased in phases.items()},
        "held_up_during": {
            "answers_over_450ms": len(held),
            "of_them_sent_1s_after_the_break": sum(
                a.sent >= timeline.broken + SETTLED_SECONDS for a in held
            ),
            "by_kind": outcomes(held),
        },
    }


def latency_by_kind(answers: list[Answer]) -> dict[str, dict[str, float]]:
    kinds = sorted({a.kind for a in answers})
    return {kind: latency_ms([a for a in answers if a.kind == kind]) for kind in kinds}


def _run_outage(
    fault: str,
    options: Options,
    service: tuple[Callable[[], None], Callable[[], None]],
    data_dir: Path,
    logs: Path,
    database_url: str,
    **env: str,
) -> dict[str, Any]:
    with served(data_dir, logs, database_url, options.workers, **env) as (server, callers):
        before = server.worker_pids()
        log(f"[{fault}] {options.workers} workers, {options.clients + 1} clients")
        load, readiness, timeline = asyncio.run(outage(server, callers, options, *service))
        replaced = set(before) - set(server.worker_pids())
    stored = asyncio.run(stored_skus(database_url))
    result = report(fault, load, readiness, timeline, options, stored)
    result["workers_replaced"] = len(replaced)
    log(f"[{fault}] {summary(result)}")
    return result


def summary(result: dict[str, Any]) -> str:
    return (
        f"{result['requests']} requests, errors {result['errors'] or 'none'}, "
        f"{result['lost_writes']} of {result['acknowledged_writes']} acknowledged writes lost, "
        f"recovery {result['recovery_seconds']}"
    )


def _sqlite(data_dir: Path) -> str:
    return f"sqlite+aiosqlite:///{data_dir / 'keyhouse.db'}"


def redis_fault(options: Options, *, freeze: bool) -> dict[str, Any]:
    fault = "redis-freeze" if freeze else "redis-kill"
    with tempfile.TemporaryDirectory(prefix=f"keyhouse-{fault}-") as temporary:
        root = Path(temporary)
        redis = PrivateRedis(root)
        redis.start()
        try:
            service: tuple[Callable[[], None], Callable[[], None]] = (redis.kill, redis.start)
            if freeze:
                service = (
                    redis.freeze,
                    redis.thaw,
                )
            redis_url = {"KEYHOUSE_REDIS_URL": redis.url}
            return _run_outage(fault, options, service, root, root, _sqlite(root), **redis_url)
        finally:
            redis.stop()


def postgres_stop(options: Options) -> dict[str, Any]:
    postgres = PrivatePostgres()
    try:
        postgres.init()
        postgres.start()
        with tempfile.TemporaryDirectory(prefix="keyhouse-postgres-stop-") as temporary:
            root = Path(temporary)
            service = (postgres.stop, postgres.start)
            return _run_outage("postgres-stop", options, service, root, root, postgres.url)
    finally:
        postgres.remove()


def disk_full(options: Options) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="keyhouse-disk-full-") as temporary:
        root = Path(temporary)
        disk = Tmpfs(root / "disk", DISK_BYTES)
        try:
            service = (disk.fill, disk.free)
            return _run_outage("disk-full", options, service, disk.path, root, _sqlite(disk.path))
        finally:
            disk.unmount()
