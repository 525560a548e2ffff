"""Keyhouse under load: token issuance, protected reads and customer logins, by worker count.

Scenarios (`--scenarios`, default all), each on each database (`--databases`) at each number
of workers (`--workers`, default 1 and 2; Keyhouse and its reference app alike):

- `issuance` (bench/issuance.py): `POST /oauth/access_token` with `client_credentials` and
  `implicit` against the bare FastAPI app of bench/baseline.py, same Uvicorn, same bytes.
  Target: client_credentials at 0.85x the baseline's requests/s or better.
- `protected` (bench/protected.py): three reads with an implicit bearer token, a product, a
  page of 25 products and (with a customer token) a shopper's 25 orders, each against the same
  app with bearer validation bypassed (bench/unvalidated.py) and against a bare FastAPI app
  running the same SQL (bench/bare_reads.py). Targets: the product at 3,500 req/s and 0.7x the
  bare app, the page at 1,500 req/s, p99 under 25 ms, validation under 10%, RSS under 80 MiB.
- `logins` (bench/logins.py): `POST /v2/customers/tokens` and `POST /v2/account-members/tokens`
  per second per worker, and the p99 of an implicit-token probe alone and during each login
  flood. Target: p99 under 50 ms.
- `sizing` (bench/sizing.py): what one CPU serves, row by row (grants, logins, reads,
  introspection), with one worker pinned to CPU 0 and wrk to CPU 1, then with two workers; the
  statements each request sends. Its own servers and layouts, so `--workers` does not apply;
  `--sizing-duration` and `--sizing-rounds` size its runs.

The targets are for one worker. Requests come from `wrk` over loopback; targets alternate
round by round, so drift hits both alike, and the median of the rounds is reported, with the
resident memory of each server's workers after its rounds. Every server is stopped in every
case. The Markdown report (bench/report.py) is printed and written to bench/results/report.md.

    .venv/bin/python bench/run.py [--scenarios issuance,protected,logins,sizing] \
        [--duration 10] [--read-duration 5] [--connections 32] [--databases sqlite,postgresql] \
        [--workers 1,2] [--rounds 3] [--sizing-duration 5] [--sizing-rounds 2]
"""

import argparse
import contextlib
import importlib.metadata
import importlib.util
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import issuance
import logins
import protected
import report
import sizing
from harness import (
    POSTGRES_URL,
    RESULTS_FILE,
    ROOT,
    TARGET_WORKERS,
    BenchError,
    Config,
    Deployment,
    Row,
    Server,
    create_client,
    database_url,
    free_port,
    keyhouse,
    keyhouse_argv,
    keyhouse_env,
    log,
    wrk_binary,
)
from issuance import Summary as IssuanceSummary
from protected import ReadRow

DATABASES = ("sqlite", "postgresql")
SCENARIOS = ("issuance", "protected", "logins", "sizing")  # run in this order
DEPLOYED = frozenset(SCENARIOS) - {"sizing"}  # run on bench_deployment's servers
WORKERS = (1, 2)
BYPASS_MODES = ("resolved", "per-request")  # see bench/unvalidated.py
BUSY_LOADAVG = 0.5  # above this before the start, warn that the machine is not idle


@dataclass(slots=True)
class Results:
    issuance: list[IssuanceSummary] = field(default_factory=list)
    protected: list[ReadRow] = field(default_factory=list)
    logins: list[Row] = field(default_factory=list)
    sizing: dict[str, Any] | None = None  # bench/sizing.py's rows and notes

    def extend(self, other: "Results") -> None:
        self.issuance.extend(other.issuance)
        self.protected.extend(other.protected)
        self.logins.extend(other.logins)

    def misses(self) -> list[str]:
        return [
            *issuance.misses(self.issuance),
            *protected.misses(self.protected),
            *logins.misses(self.logins),
        ]


def bench_deployment(database: str, workers: int, config: Config) -> Results:
    """The chosen scenarios on a fresh database, Keyhouse serving with `workers` workers."""
    with tempfile.TemporaryDirectory(prefix="keyhouse-bench-") as temporary:
        data_dir = Path(temporary)
        env = keyhouse_env(data_dir, database_url(database, data_dir, config.postgres_url))
        log(f"[{database}] keyhouse db upgrade; keyhouse clients create; {workers} workers")
        keyhouse(["db", "upgrade"], env)
        client = create_client(env)
        port = free_port()
        server = Server(
            "keyhouse",
            keyhouse_argv(port, workers),
            env,
            port,
            data_dir / "keyhouse.log",
            workers=workers,
        )
        deployment = Deployment(database, data_dir, env, client, server)
        try:
            deployment.start(server)
            results = Results()
            if "issuance" in config.scenarios:
                results.issuance = issuance.run(deployment, config)
            if "protected" in config.scenarios:
                results.protected = protected.run(deployment, config)
            if "logins" in config.scenarios:
                results.logins = logins.run(deployment, config)
            return results
        finally:
            for started in deployment.servers:
                started.stop()


# --- results ------------------------------------------------------------------------------


def _versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in (
        "uvicorn",
        "fastapi",
        "starlette",
        "uvloop",
        "httptools",
        "pyjwt",
        "cryptography",
        "sqlalchemy",
        "aiosqlite",
        "asyncpg",
        "orjson",
        "argon2-cffi",
        "libpass",
    ):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[package] = importlib.metadata.version(package)
    wrk = subprocess.run([wrk_binary(), "-v"], capture_output=True, text=True, check=False)
    versions["wrk"] = next(iter((wrk.stdout + wrk.stderr).splitlines()), "")
    return versions


def _uvicorn_implementations() -> tuple[str, str]:
    """What `uvicorn.run(loop="auto", http="auto")` in `keyhouse serve` resolves to."""
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    return loop, http


def _git_state() -> dict[str, Any]:
    """The commit measured, and files changed since, so a result can be matched to code."""

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=30, check=False
        )
        return done.stdout.strip() if done.returncode == 0 else ""

    changed = git("status", "--porcelain", "--", "app", "migrations", "pyproject.toml")
    return {"commit": git("rev-parse", "HEAD"), "uncommitted": changed.splitlines()}


def results_document(results: Results, config: Config, loadavg: float) -> dict[str, Any]:
    """Everything measured and how: written to bench/results/latest.json, read by report.py."""
    return {
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "settings": asdict(config),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "loadavg_1min_before": loadavg,
            "loadavg_1min_after": os.getloadavg()[0],
        },
        "keyhouse": _git_state(),
        "versions": _versions(),
        "target": {"grant": issuance.TARGET_GRANT, "ratio": issuance.TARGET_RATIO},
        "targets": {
            "workers": TARGET_WORKERS,
            "issuance": {"grant": issuance.TARGET_GRANT, "min_ratio": issuance.TARGET_RATIO},
            "protected": protected.targets(),
            "logins": {"max_implicit_p99_ms_in_flood": logins.TARGET_P99_MS},
        },
        "results": [asdict(row) for row in results.issuance],  # the issuance scenario
        "protected": [asdict(row) for row in results.protected],
        "logins": [asdict(row) for row in results.logins],
        "sizing": results.sizing,
        "misses": results.misses(),
    }


def write_results(document: dict[str, Any]) -> Path:
    RESULTS_FILE.parent.mkdir(parents=True, exist_ok=True)
    RESULTS_FILE.write_text(json.dumps(document, indent=2) + "\n")
    return RESULTS_FILE


def _names(
    parser: argparse.ArgumentParser, option: str, value: str, known: Sequence[str]
) -> list[str]:
    names = [name.strip() for name in value.split(",") if name.strip()]
    unknown = sorted(set(names) - set(known))
    if unknown or not names:
        parser.error(f"{option} takes {','.join(known)}; got {value!r}")
    return names


def _counts(parser: argparse.ArgumentParser, option: str, value: str) -> tuple[int, ...]:
    try:
        counts = tuple(dict.fromkeys(int(count) for count in value.split(",") if count.strip()))
    except ValueError:
        counts = ()
    if not counts or min(counts) < 1:
        parser.error(f"{option} takes comma-separated counts of at least 1; got {value!r}")
    return counts


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--scenarios", default=",".join(SCENARIOS), help="comma-separated: " + ",".join(SCENARIOS)
    )
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument(
        "--read-duration",
        type=int,
        default=5,
        help="seconds per wrk run of the protected reads (3 reads x 3 servers per round)",
    )
    parser.add_argument("--warmup", type=int, default=2, help="seconds of warm-up per target")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per target")
    parser.add_argument(
        "--sizing-duration", type=int, default=5, help="seconds per wrk run of the sizing rows"
    )
    parser.add_argument("--sizing-rounds", type=int, default=2, help="rounds over the sizing rows")
    parser.add_argument(
        "--probe-connections",
        type=int,
        default=4,
        help="connections of the implicit probe in the logins scenario (wrk -t1)",
    )
    parser.add_argument(
        "--databases", default=",".join(DATABASES), help="comma-separated: sqlite,postgresql"
    )
    parser.add_argument(
        "--workers",
        default=",".join(map(str, WORKERS)),
        help="comma-separated worker counts, each in turn, for Keyhouse and its reference alike",
    )
    parser.add_argument("--postgres-url", default=POSTGRES_URL, help="dropped and recreated")
    parser.add_argument(
        "--bypass",
        choices=BYPASS_MODES,
        default="resolved",
        help="how bench/unvalidated.py applies its dependency override (protected scenario)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="after each scenario's rounds, record a py-spy flame graph of Keyhouse into "
        "bench/results/",
    )
    args = parser.parse_args(argv)
    args.databases = _names(parser, "--databases", args.databases, DATABASES)
    chosen = _names(parser, "--scenarios", args.scenarios, SCENARIOS)
    args.scenarios = tuple(name for name in SCENARIOS if name in chosen)
    args.workers = _counts(parser, "--workers", args.workers)
    numbers = ("duration", "read_duration", "warmup", "connections", "threads", "rounds")
    for name in (*numbers, "probe_connections", "sizing_duration", "sizing_rounds"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


@contextlib.contextmanager
def _signals_unwind() -> Iterator[None]:
    """SIGINT and SIGTERM raise KeyboardInterrupt, so the servers are stopped either way.

    SIGINT too, explicitly: a shell starting us in the background may have ignored it.
    """

    def handler(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    previous = {
        number: signal.signal(number, handler) for number in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        yield
    finally:
        for number, action in previous.items():
            signal.signal(number, action)


def main(argv: Sequence[str] | None = None) -> int:
    args = _arguments(argv)
    loop, http = _uvicorn_implementations()
    config = Config(
        duration=args.duration,
        read_duration=args.read_duration,
        warmup=args.warmup,
        connections=args.connections,
        threads=args.threads,
        rounds=args.rounds,
        postgres_url=args.postgres_url,
        loop=loop,
        http=http,
        profile=args.profile,
        scenarios=args.scenarios,
        probe_connections=args.probe_connections,
        bypass=args.bypass,
        workers=args.workers,
        databases=tuple(args.databases),
        sizing_duration=args.sizing_duration,
        sizing_rounds=args.sizing_rounds,
    )
    log(
        f"uvicorn loop={loop} http={http}; wrk -t{config.threads} -c{config.connections} "
        f"-d{config.duration}s x {config.rounds} rounds; databases {','.join(config.databases)}; "
        f"workers {','.join(map(str, config.workers))}; scenarios {','.join(config.scenarios)}"
    )
    loadavg = os.getloadavg()[0]
    if loadavg > BUSY_LOADAVG:
        log(f"warning: 1-minute load average is {loadavg:.2f}; other work will skew results")
    results = Results()
    try:
        with _signals_unwind():
            if DEPLOYED & set(config.scenarios):
                for database in config.databases:
                    for workers in config.workers:
                        results.extend(bench_deployment(database, workers, config))
            if "sizing" in config.scenarios:
                results.sizing = sizing.run(config)
    except BenchError as error:
        log(f"bench failed: {error}")
        return 1
    except KeyboardInterrupt:
        log("interrupted; servers stopped")
        return 130
    document = results_document(results, config, loadavg)
    written = write_results(document)
    print(report.render(document), end="")
    reported = report.write(document)
    log(f"results written to {written.relative_to(ROOT)} and {reported.relative_to(ROOT)}")
    for miss in results.misses():
        log(miss)
    return 0


if __name__ == "__main__":
    sys.exit(main())
