"""Scenario `sizing` (issue 23): what one CPU serves, row by row, and what a second worker adds.

For each database, on a fresh data directory, two layouts up side by side: one Keyhouse worker
pinned to CPU 0 (`taskset -c 0 keyhouse serve --workers 1`), its load from wrk pinned to CPU 1,
so that the worker has a core to itself and the load generator another; and two workers on both
CPUs (`keyhouse serve --workers 2`), wrk unpinned, sharing the cores with them. Each row in
turn, on each layout in turn, at a concurrency that keeps the workers busy (16 connections per
worker, 4 for logins, whose hashes queue for each worker's hash thread); the rounds interleave
the rows, so the machine's other load weighs on both layouts alike and the growth from one
worker to two is measured side by side.

The rows: `baseline` (the bare FastAPI app of bench/baseline.py answering client_credentials'
bytes, pinned alike: how fast this machine's CPU is in this run), `client_credentials` and
`implicit` (`POST /oauth/access_token`), `customer logins` (`POST /v2/customers/tokens`) and
`account logins` (`POST /v2/account-members/tokens`, mechanism `password`), both argon2id with
the parameters recorded from the stored hashes, `product` (`GET /v2/products/{id}`) and
`products` (a page of 25) with an implicit token, and `introspection` (`POST /oauth/introspect`
of a client_credentials token by its confidential client).

Beside req/s and p99 each run records the CPU time the server spent per request and the share
of its CPUs that other processes took meanwhile (bench/harness.py); on PostgreSQL, the most
connections to the database one worker held after a run (from /proc). Then, on a twin of the
pinned worker that counts what it asks of the database (bench/counted.py, idle until then), a
pass of a few seconds per row under the same load gives the statements, pool checkouts and
commits per request.

    .venv/bin/python bench/run.py --scenarios sizing [--databases sqlite,postgresql] \\
        [--sizing-duration 5] [--sizing-rounds 2] [--warmup 2] [--postgres-url ...]
"""

import dataclasses
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import issuance
import logins
import processes
from counted import COUNTS_PATH
from harness import (
    REQUEST_LUA,
    TOKEN_PATH,
    Config,
    Deployment,
    Load,
    Server,
    WrkRun,
    create_client,
    database_url,
    fail,
    free_port,
    get_json,
    issue_token,
    keyhouse,
    keyhouse_argv,
    keyhouse_env,
    log,
    one_length,
    pinned,
    request,
    run_wrk,
    run_wrk_balanced,
    token_load,
    uvicorn_argv,
)
from store_data import PRODUCTS_PATH, make_products

SCENARIO = "sizing"
COUNT_SECONDS = 2  # per row, in the counting pass
WORKER_CPU = 0  # the one pinned worker's
LOAD_CPU = 1  # wrk's, beside it
# Tokens name this issuer whichever server issued them, so every server of a database (its
# layouts, the counting twin) accepts the tokens made once.
ISSUER = "http://keyhouse-sizing.invalid"
COUNTED_APP = "bench.counted:create_counted_app"
INTROSPECT_PATH = "/oauth/introspect"
BASELINE = "baseline"
CUSTOMER_LOGINS = "customer logins"
ACCOUNT_LOGINS = "account logins"


@dataclass(frozen=True, slots=True)
class Layout:
    """Where the servers and wrk run."""

    name: str
    workers: int
    cpus: tuple[int, ...]  # the servers' (`taskset -c`); () for any
    load_cpus: tuple[int, ...]  # wrk's


PINNED = Layout(f"1 worker on CPU {WORKER_CPU}", 1, (WORKER_CPU,), (LOAD_CPU,))
BOTH = Layout("2 workers, both CPUs", 2, (), ())
LAYOUTS = (PINNED, BOTH)


@dataclass(frozen=True, slots=True)
class Target:
    """A row of the sizing table: what one request is, and how many wrk keeps in flight."""

    name: str
    what: str
    connections: int  # per worker
    login: str | None = None  # logins.CUSTOMER or logins.ACCOUNT: drained after each run


TARGETS = (
    Target(BASELINE, "bare FastAPI app (bench/baseline.py), client_credentials' bytes", 16),
    Target("client_credentials", f"POST {TOKEN_PATH}, client_secret_post", 16),
    Target("implicit", f"POST {TOKEN_PATH}, a public client", 16),
    Target(CUSTOMER_LOGINS, f"POST {logins.LOGIN_PATH}", 4, logins.CUSTOMER),
    Target(ACCOUNT_LOGINS, "POST /v2/account-members/tokens", 4, logins.ACCOUNT),
    Target("product", f"GET {PRODUCTS_PATH}/{{id}}, implicit token", 16),
    Target("products", f"GET {PRODUCTS_PATH}?page[limit]=25, implicit token", 16),
    Target("introspection", f"POST {INTROSPECT_PATH} of a client_credentials token", 16),
)


@dataclass(frozen=True, slots=True)
class SizingRow:
    """One target on one database and layout: the medians of its rounds, and what they say."""

    database: str
    layout: str
    workers: int
    target: str
    what: str
    connections: int
    rounds: list[WrkRun]
    rps: float
    p50_us: float
    p99_us: float
    cpu_us_per_request: float | None  # the server's CPU time per request (all its workers)
    others_cpu_share: float | None  # of the server's CPUs, taken by other processes
    vs_baseline: float | None = None  # req/s over the baseline's, same database and layout
    growth: float | None = None  # two workers' req/s over the pinned worker's
    # From the counting pass (pinned layout, Keyhouse's rows): per request.
    statements: float | None = None
    checkouts: float | None = None
    transactions: float | None = None


@dataclass(slots=True)
class DatabaseNotes:
    """What a database's runs depend on, beside the rows."""

    password_hash: str = ""  # scheme and parameters of every stored password hash
    # PostgreSQL: per layout, the most connections to the database one worker held after a run
    # (its request pool's, the background pool's, the change feed's LISTEN).
    connections: dict[str, int] = field(default_factory=dict)
    loadavg: list[float] = field(default_factory=list)  # 1-minute, before and after the rounds


@dataclass(frozen=True, slots=True)
class Prepared:
    """What every layout of a database sends: the logins and the requests of every row."""

    logins: dict[str, logins.Login]
    loads: dict[str, Load]  # per target, for one worker pinned; resized per layout


def _sent(port: int, load: Load) -> tuple[int, bytes]:
    """One request as bench/request.lua sends it from `load`'s settings."""
    env = load.env
    headers = {"Accept": "application/json"}
    names = {
        "BENCH_AUTHORIZATION": "Authorization",
        "BENCH_CUSTOMER_TOKEN": "X-Moltin-Customer-Token",
        "BENCH_ACCOUNT_TOKEN": "EP-Account-Management-Authentication-Token",
        "BENCH_CONTENT_TYPE": "Content-Type",
    }
    headers.update({header: env[name] for name, header in names.items() if env.get(name)})
    body = env["BENCH_BODY"].encode() if env.get("BENCH_BODY") else None
    status, _, answer = request(
        port, env.get("BENCH_METHOD", "GET"), env["BENCH_PATH"], body, headers=headers
    )
    return status, answer


def _answer(port: int, load: Load, check: Callable[[bytes], bool]) -> bytes:
    """An answer to `load`'s request: 200, and `check`ed."""
    status, body = _sent(port, load)
    if status != 200 or not check(body):
        fail(f"{load.env['BENCH_PATH']} answered {status}: {body[:300]!r}")
    return body


def _answer_length(port: int, load: Load, check: Callable[[bytes], bool]) -> int:
    """The one body length of three answers to `load`'s request."""
    return one_length(load.env["BENCH_PATH"], (_answer(port, load, check) for _ in range(3)))


def _read(path: str, bearer: str) -> Load:
    env = {"BENCH_PATH": path, "BENCH_AUTHORIZATION": bearer}
    return Load(REQUEST_LUA, env, connections=1)


def _introspection(deployment: Deployment, token: str) -> Load:
    client = deployment.client
    form = {"client_id": client.client_id, "client_secret": client.client_secret, "token": token}
    env = {
        "BENCH_PATH": INTROSPECT_PATH,
        "BENCH_METHOD": "POST",
        "BENCH_BODY": urlencode(form),
        "BENCH_CONTENT_TYPE": "application/x-www-form-urlencoded",
    }
    return Load(REQUEST_LUA, env, connections=1)


def _expecting(load: Load, length: int) -> Load:
    return dataclasses.replace(load, env={**load.env, "BENCH_EXPECT_BYTES": str(length)})


def prepare(deployment: Deployment) -> Prepared:
    """The data every row reads (products, a customer, an account member), made through
    Keyhouse's API and command line, and each row's request, checked against Keyhouse."""
    port, client = deployment.keyhouse.port, deployment.client
    backend = f"Bearer {issue_token(port, 'client_credentials', client)}"
    bearer = f"Bearer {issue_token(port, 'implicit', client)}"
    product_ids = make_products(port, backend)
    made = {
        logins.CUSTOMER: logins.customer_login(deployment, bearer),
        logins.ACCOUNT: logins.account_login(deployment, bearer),
    }
    lengths, _ = issuance.keyhouse_answers(port, client)
    loads = {
        grant: token_load(grant, client, lengths[grant], connections=1)
        for grant in ("client_credentials", "implicit")
    }
    loads[BASELINE] = loads["client_credentials"]
    for target in TARGETS:
        if target.login is not None:
            login = made[target.login]
            loads[target.name] = login.load(logins.check_login(deployment.keyhouse, login), 1)
    reads = {
        "product": (_read(f"{PRODUCTS_PATH}/{product_ids[0]}", bearer), b'"data":{'),
        "products": (_read(f"{PRODUCTS_PATH}?page[limit]=25", bearer), b'"data":['),
        "introspection": (
            _introspection(deployment, backend.removeprefix("Bearer ")),
            b'"active":true',
        ),
    }
    for name, (load, expected) in reads.items():
        length = _answer_length(port, load, lambda body, seen=expected: seen in body)
        loads[name] = _expecting(load, length)
    return Prepared(made, loads)


# --- servers ------------------------------------------------------------------------------


def _keyhouse(deployment_dir: Path, env: dict[str, str], layout: Layout) -> Server:
    port = free_port()
    argv = [*pinned(layout.cpus), *keyhouse_argv(port, layout.workers)]
    log_file = deployment_dir / f"keyhouse-{layout.workers}w.log"
    return Server("keyhouse", argv, env, port, log_file, workers=layout.workers)


def _counted(deployment: Deployment, config: Config) -> Server:
    """The counting twin of the pinned worker (bench/counted.py), on the same CPU."""
    port = free_port()
    argv = [*pinned(PINNED.cpus), *uvicorn_argv(COUNTED_APP, port, config, 1)]
    return Server("counted", argv, deployment.env, port, deployment.data_dir / "counted.log")


# --- measuring ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Side:
    """A layout's servers, Keyhouse and the baseline, up side by side with the other layout's."""

    layout: Layout
    keyhouse: Server
    baseline: Server

    def server(self, target: Target) -> Server:
        return self.baseline if target.name == BASELINE else self.keyhouse


def _resized(load: Load, target: Target, layout: Layout) -> Load:
    return dataclasses.replace(
        load, connections=target.connections * layout.workers, cpus=layout.load_cpus
    )


def _run(
    server: Server, load: Load, target: Target, prepared: Prepared, seconds: int, balanced: bool
) -> WrkRun:
    """One run of `target`; a login run is drained after (its worker's hash queue emptied)."""
    where = f"{server.name} {SCENARIO} {target.name}"
    result = (run_wrk_balanced if balanced else run_wrk)(server, load, seconds, where)
    if target.login is not None:
        logins.drain(server, prepared.logins[target.login])
    return result


def _held(side: Side, port: int) -> int:
    """The most connections to the database (on `port`) one of the side's workers holds."""
    return max(processes.connections_to(pid, port) for pid in side.keyhouse.worker_pids())


def _rounds(
    sides: Sequence[Side], prepared: Prepared, config: Config, database: str, notes: DatabaseNotes
) -> dict[tuple[str, str], list[WrkRun]]:
    """Warm-up, then rounds: every target in turn, on each layout in turn; on PostgreSQL, the
    connections each layout's workers hold after each run."""
    loads = {
        (side.layout.name, t.name): _resized(prepared.loads[t.name], t, side.layout)
        for side in sides
        for t in TARGETS
    }
    port = _database_port(config) if database == "postgresql" else None
    for target in TARGETS if config.warmup > 0 else ():
        for side in sides:
            load = loads[(side.layout.name, target.name)]
            _run(side.server(target), load, target, prepared, config.warmup, balanced=False)
    runs: dict[tuple[str, str], list[WrkRun]] = {key: [] for key in loads}
    for round_number in range(1, config.sizing_rounds + 1):
        for target in TARGETS:
            for side in sides:
                key = (side.layout.name, target.name)
                result = _run(
                    side.server(target), loads[key], target, prepared, config.sizing_duration, True
                )
                runs[key].append(result)
                if port is not None:
                    held = max(notes.connections.get(side.layout.name, 0), _held(side, port))
                    notes.connections[side.layout.name] = held
                log(
                    f"[{database}, {side.layout.name}] {SCENARIO} round {round_number} "
                    f"{target.name:<18} {result.describe()}  "
                    f"CPU {result.cpu_us_per_request or 0:7.0f} µs/req  "
                    f"others {result.others_cpu_share or 0:4.0%}"
                )
    return runs


def _median(values: Sequence[float | None]) -> float | None:
    known = [value for value in values if value is not None]
    return statistics.median(known) if known else None


def _rows(
    database: str, layout: Layout, runs: dict[tuple[str, str], list[WrkRun]]
) -> list[SizingRow]:
    rows: list[SizingRow] = []
    baseline_rps = statistics.median(run.rps for run in runs[(layout.name, BASELINE)])
    for target in TARGETS:
        rounds = runs[(layout.name, target.name)]
        rps = statistics.median(run.rps for run in rounds)
        rows.append(
            SizingRow(
                database=database,
                layout=layout.name,
                workers=layout.workers,
                target=target.name,
                what=target.what,
                connections=target.connections * layout.workers,
                rounds=rounds,
                rps=rps,
                p50_us=statistics.median(run.p50_us for run in rounds),
                p99_us=statistics.median(run.p99_us for run in rounds),
                cpu_us_per_request=_median([run.cpu_us_per_request for run in rounds]),
                others_cpu_share=_median([run.others_cpu_share for run in rounds]),
                vs_baseline=None if target.name == BASELINE else rps / baseline_rps,
            )
        )
    return rows


def _counts(counted: Server, prepared: Prepared, seconds: int) -> dict[str, dict[str, float]]:
    """Per Keyhouse target: statements, checkouts and commits per request, under its load, less
    what the twin sends when idle (its revocation polls: four a second on SQLite) over as long."""
    before, started = get_json(counted.port, COUNTS_PATH), time.monotonic()
    time.sleep(seconds)
    idle = get_json(counted.port, COUNTS_PATH)
    idle_rate = {name: (idle[name] - before[name]) / (time.monotonic() - started) for name in idle}
    log(f"[counted] idle: {', '.join(f'{n} {r:.2f}/s' for n, r in idle_rate.items())}")
    counts: dict[str, dict[str, float]] = {}
    for target in TARGETS:
        if target.name == BASELINE:
            continue
        load = _resized(prepared.loads[target.name], target, PINNED)
        before, started = get_json(counted.port, COUNTS_PATH), time.monotonic()
        result = _run(counted, load, target, prepared, seconds, balanced=False)
        after, elapsed = get_json(counted.port, COUNTS_PATH), time.monotonic() - started
        drained = 1 if target.login is not None else 0  # the login that drained the queue
        requests = result.requests + drained
        counts[target.name] = {
            name: round(
                max(0.0, after[name] - before[name] - idle_rate[name] * elapsed) / requests, 3
            )
            for name in after
        }
        log(f"[counted] {target.name:<18} {requests} requests: {counts[target.name]}")
    return counts


def _grown(rows: list[SizingRow]) -> list[SizingRow]:
    """Each two-worker row with its req/s over the pinned worker's (same database, target)."""
    pinned_rps = {(r.database, r.target): r.rps for r in rows if r.layout == PINNED.name}
    if not pinned_rps:
        return rows
    return [
        dataclasses.replace(row, growth=row.rps / pinned_rps[(row.database, row.target)])
        if row.layout != PINNED.name
        else row
        for row in rows
    ]


# --- a database ---------------------------------------------------------------------------


def _database_port(config: Config) -> int:
    from sqlalchemy.engine import make_url

    return make_url(config.postgres_url).port or 5432


def _sides(deployment: Deployment, config: Config, keyhouses: dict[Layout, Server]) -> list[Side]:
    """Each layout's baseline, started beside its Keyhouse and checked against it."""
    lengths, headers = issuance.keyhouse_answers(deployment.keyhouse.port, deployment.client)
    baselines = {
        layout: issuance.baseline_server(
            dataclasses.replace(deployment, keyhouse=server),
            config,
            lengths,
            headers,
            cpus=layout.cpus,
        )
        for layout, server in keyhouses.items()
    }
    deployment.start_all(*baselines.values())
    for baseline in baselines.values():
        issuance.check_baseline(baseline, deployment.client, lengths, headers)
    return [Side(layout, keyhouses[layout], baselines[layout]) for layout in keyhouses]


def _measure(
    deployment: Deployment,
    config: Config,
    keyhouses: dict[Layout, Server],
    count_seconds: int,
    notes: DatabaseNotes,
) -> list[SizingRow]:
    """With every server up (each layout's Keyhouse and baseline, and the counting twin): the
    data, the rounds, then the counting pass."""
    counted = _counted(deployment, config)
    deployment.start_all(*keyhouses.values(), counted)
    prepared = prepare(deployment)
    notes.password_hash = logins.password_hash_parameters(deployment)
    sides = _sides(deployment, config, keyhouses)
    before = os.getloadavg()[0]
    runs = _rounds(sides, prepared, config, deployment.database, notes)
    notes.loadavg = [before, os.getloadavg()[0]]
    counts = _counts(counted, prepared, count_seconds)
    rows = [row for layout in keyhouses for row in _rows(deployment.database, layout, runs)]
    return _grown(
        [
            dataclasses.replace(row, **counts[row.target])
            if row.layout == PINNED.name and row.target in counts
            else row
            for row in rows
        ]
    )


def run_database(
    database: str, config: Config, count_seconds: int, layouts: Sequence[Layout]
) -> tuple[list[SizingRow], DatabaseNotes]:
    """Every layout side by side on a fresh data directory (and database)."""
    notes = DatabaseNotes()
    with tempfile.TemporaryDirectory(prefix="keyhouse-sizing-") as temporary:
        data_dir = Path(temporary)
        env = keyhouse_env(data_dir, database_url(database, data_dir, config.postgres_url))
        env["KEYHOUSE_ISSUER"] = ISSUER
        log(f"[{database}] {SCENARIO}: keyhouse db upgrade; keyhouse clients create")
        keyhouse(["db", "upgrade"], env)
        client = create_client(env)
        keyhouses = {layout: _keyhouse(data_dir, env, layout) for layout in layouts}
        first = keyhouses[layouts[0]]  # the data is made through it
        deployment = Deployment(database, data_dir, env, client, first)
        try:
            rows = _measure(deployment, config, keyhouses, count_seconds, notes)
        finally:
            for started in deployment.servers:
                started.stop()
    return rows, notes


def run(
    config: Config, count_seconds: int = COUNT_SECONDS, layouts: Sequence[Layout] = LAYOUTS
) -> dict[str, Any]:
    """Every database in turn, each in every layout (the pinned one first): the rows, and what
    each database's runs depend on."""
    if not {WORKER_CPU, LOAD_CPU} <= os.sched_getaffinity(0):
        fail(f"sizing needs CPUs {WORKER_CPU} and {LOAD_CPU}: one for the worker, one for wrk")
    rows: list[SizingRow] = []
    notes: dict[str, DatabaseNotes] = {}
    for database in config.databases:
        measured, notes[database] = run_database(database, config, count_seconds, layouts)
        rows += measured
    return {
        "layouts": [dataclasses.asdict(layout) for layout in layouts],
        "rows": [dataclasses.asdict(row) for row in rows],
        "databases": {name: dataclasses.asdict(note) for name, note in notes.items()},
    }
