"""Connections that take a worker's sockets and give nothing back: slowloris ones, which send a
request's headers a byte a second and never finish them, and idle ones, which never send a
byte. A probe of 4 clients asks for implicit tokens before and while they are held; its
latency then is compared with its latency before. Reported too: how many of the connections
the server closed, and when (a server without header or idle timeouts closes none).
"""

import asyncio
import contextlib
import tempfile
import time
from pathlib import Path
from typing import Any

from fault_load import Callers, Load, errors, latency_ms, outcomes
from fault_scenarios import served
from harness import HOST, log

PROBE_CLIENTS = 4
PROBE_SECONDS = 5.0
OPEN_BATCH = 100  # connections opened at once
REQUEST_HEAD = b"POST /oauth/access_token HTTP/1.1\r\nHost: keyhouse\r\n"
DRIP = b"X-Slow: 1\r\n"  # one byte of it a second


class Holder:
    """One connection held open: when (if ever) the server closed it."""

    def __init__(self) -> None:
        self.closed_after: float | None = None

    async def hold(self, port: int, slow: bool, until: float) -> None:
        opened = time.monotonic()
        try:
            reader, writer = await asyncio.open_connection(HOST, port)
        except OSError:
            self.closed_after = 0.0
            return
        try:
            if slow:
                writer.write(REQUEST_HEAD)
            drip = 0
            while time.monotonic() < until:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(1.0):
                        if await reader.read(1024) == b"":  # closed by the server
                            self.closed_after = time.monotonic() - opened
                            return
                if slow:
                    writer.write(DRIP[drip % len(DRIP) : drip % len(DRIP) + 1])
                    drip += 1
                    await writer.drain()
        except OSError:
            self.closed_after = time.monotonic() - opened
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


async def _probe(url: str, callers: Callers, seconds: float) -> Load:
    load = Load(url, callers, [("implicit",)] * PROBE_CLIENTS)
    async with load.running():
        await asyncio.sleep(seconds)
    return load


async def _held(port: int, callers: Callers, count: int, hold: float, slow: bool) -> dict[str, Any]:
    url = f"http://{HOST}:{port}"
    alone = await _probe(url, callers, PROBE_SECONDS)
    holders = [Holder() for _ in range(count)]
    until = time.monotonic() + hold + PROBE_SECONDS
    tasks = []
    for start in range(0, count, OPEN_BATCH):
        tasks += [
            asyncio.create_task(h.hold(port, slow, until))
            for h in holders[start : start + OPEN_BATCH]
        ]
        await asyncio.sleep(0.05)
    await asyncio.sleep(hold)
    during = await _probe(url, callers, PROBE_SECONDS)
    await asyncio.gather(*tasks)
    closed = sorted(h.closed_after for h in holders if h.closed_after is not None)
    answers = [*alone.answers, *during.answers]
    return {
        "requests": len(answers),
        "outcomes": {"alone": outcomes(alone.answers), "held": outcomes(during.answers)},
        "errors": errors(answers),
        "latency_ms": {"alone": latency_ms(alone.answers), "held": latency_ms(during.answers)},
        "closed_by_server": len(closed),
        "closed_after_seconds": {"first": closed[0], "last": closed[-1]} if closed else None,
    }


def hold_connections(workers: int, count: int, hold: float, *, slow: bool) -> dict[str, Any]:
    fault = "slowloris" if slow else "idle"
    with tempfile.TemporaryDirectory(prefix=f"keyhouse-{fault}-") as temporary:
        root = Path(temporary)
        database_url = f"sqlite+aiosqlite:///{root / 'keyhouse.db'}"
        with served(root, root, database_url, workers) as (server, callers):
            log(
                f"[{fault}] {count} connections held {hold:.0f} s beside a probe, {workers} workers"
            )
            result = asyncio.run(_held(server.port, callers, count, hold, slow))
            server.check_alive()
    report = {"fault": fault, "workers": workers, "connections": count, "hold_seconds": hold}
    report |= result
    p99 = {phase: result["latency_ms"][phase].get("p99") for phase in ("alone", "held")}
    log(f"[{fault}] probe p99 {p99} ms; {result['closed_by_server']} closed by the server")
    return report
