"""Keyhouse under faults: one subcommand per fault, each printing one JSON report on stdout.

    .venv/bin/python bench/faults.py redis-kill      # Redis killed (SIGKILL), then restarted
    .venv/bin/python bench/faults.py redis-freeze    # Redis frozen (SIGSTOP), then SIGCONT
    .venv/bin/python bench/faults.py postgres-stop   # PostgreSQL stopped (-m fast), then started
    .venv/bin/python bench/faults.py disk-full       # SQLite's tmpfs filled, then freed
    .venv/bin/python bench/faults.py slowloris       # connections sending headers a byte at a time
    .venv/bin/python bench/faults.py idle            # connections that never send a byte
    .venv/bin/python bench/faults.py soak            # mixed load, memory per worker sampled
    .venv/bin/python bench/faults.py all             # each of the above in turn

Each report counts the requests answered and the errors by class (a status other than the one
expected, 503 and 429 aside, or `timeout`, or `dropped`), the acknowledged writes missing from the
database afterwards (`lost_writes`, which must be 0) and the recovery time. Every service broken
is the script's own (a private redis-server, a private PostgreSQL, a tmpfs); a fault this
machine cannot produce (no binary, mounting not permitted) is reported as skipped, with why.
Exit status 1 when any report has an error, a lost write or no recovery. Run as root for the
tmpfs; Linux only (/proc, mount).
"""

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from fault_connections import hold_connections
from fault_scenarios import Options, disk_full, postgres_stop, redis_fault
from fault_services import Unavailable
from fault_soak import soak
from harness import BenchError, log

FAULTS = ("redis-kill", "redis-freeze", "postgres-stop", "disk-full", "slowloris", "idle", "soak")


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("fault", choices=(*FAULTS, "all"))
    parser.add_argument("--workers", type=int, default=2, help="keyhouse serve --workers")
    parser.add_argument("--clients", type=int, default=8, help="load clients (and one login)")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of load first")
    parser.add_argument("--outage", type=float, default=5.0, help="seconds the service is away")
    parser.add_argument("--after", type=float, default=5.0, help="seconds of load after")
    parser.add_argument("--connections", type=int, default=500, help="slowloris or idle ones")
    parser.add_argument("--hold", type=float, default=10.0, help="seconds they are held")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of soak")
    parser.add_argument("--sample", type=float, default=5.0, help="seconds between samples")
    return parser.parse_args(argv)


def _runners(args: argparse.Namespace) -> dict[str, Callable[[], dict[str, Any]]]:
    options = Options(args.workers, args.clients, args.warmup, args.outage, args.after)
    return {
        "redis-kill": lambda: redis_fault(options, freeze=False),
        "redis-freeze": lambda: redis_fault(options, freeze=True),
        "postgres-stop": lambda: postgres_stop(options),
        "disk-full": lambda: disk_full(options),
        "slowloris": lambda: hold_connections(args.workers, args.connections, args.hold, slow=True),
        "idle": lambda: hold_connections(args.workers, args.connections, args.hold, slow=False),
        "soak": lambda: soak(args.workers, args.clients, args.duration, args.sample),
    }


def failures(report: dict[str, Any]) -> list[str]:
    """What in a report says the fault was not answered as a fault."""
    found = []
    if report.get("errors"):
        found.append(f"errors {report['errors']}")
    if report.get("lost_writes"):
        found.append(f"{report['lost_writes']} acknowledged writes lost")
    if any(value is None for value in report.get("recovery_seconds", {}).values()):
        found.append("no recovery")
    return found


def main(argv: Sequence[str] | None = None) -> int:
    args = _arguments(argv)
    runners = _runners(args)
    chosen = FAULTS if args.fault == "all" else (args.fault,)
    reports = []
    for fault in chosen:
        loadavg = round(os.getloadavg()[0], 2)  # the machine's other load, as the run began
        try:
            report = runners[fault]() | {"loadavg_at_start": loadavg}
        except Unavailable as reason:
            log(f"[{fault}] skipped: {reason}")
            report = {"fault": fault, "skipped": str(reason)}
        except BenchError as error:
            log(f"[{fault}] failed: {error}")
            return 1
        reports.append(report)
        print(json.dumps(report), flush=True)
    problems = {r["fault"]: failures(r) for r in reports if failures(r)}
    for fault, found in problems.items():
        log(f"[{fault}] NOT answered as a fault: {'; '.join(found)}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
