"""Scenario `protected`: the store API's reads, against the same reads without our layers.

Four reads a storefront makes, each with an implicit bearer token (`read`):

- `product`: `GET /v2/products/{id}`, one live product;
- `products`: `GET /v2/products?page[limit]=25`, a page of 25 live products;
- `orders`: `GET /v2/orders` with the shopper's customer token beside the bearer token, a
  page of their 25 orders (two items each);
- `account-orders`: `GET /v2/orders` with an account member's account token beside it, a page
  of the account's 25 orders (two items each): the account-scoped twin of `orders` (issue 22),
  with `orders`' targets, and its req/s over `orders`' reported (`vs_customer`).

Each on three servers with the same workers, database and request bytes, in interleaved rounds:
`keyhouse`; `unvalidated`, Keyhouse with bearer validation bypassed (bench/unvalidated.py),
which prices validation; and `bare`, a bare FastAPI app that runs the same SQL and renders the
same bytes with none of Keyhouse's layers (bench/bare_reads.py), which prices everything else.

Targets, with one worker (issue 12): the product at 3,500 req/s or more and at least 0.7x the
bare app; the page of products at 1,500 req/s or more; both with a p99 under 25 ms; every read
at 0.9x its unvalidated twin or better (validation costs under 10%); each worker's resident
memory under 80 MiB after the load.
"""

import dataclasses
import json
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import layers
from account_data import ACCOUNT_TOKEN_HEADER
from harness import (
    REQUEST_LUA,
    TARGET_WORKERS,
    Config,
    Deployment,
    Load,
    Server,
    WrkRun,
    fail,
    free_port,
    get_json,
    log,
    request,
    run_wrk,
    run_wrk_balanced,
    uvicorn_argv,
)
from processes import Memory
from profiling import flame_graph_path, profile
from store_data import PRODUCTS_PATH, StoreData, make_store_data

SCENARIO = "protected"
UNVALIDATED_APP = "bench.unvalidated:create_unvalidated_app"
BARE_APP = "bench.bare_reads:create_bare_app"
NOT_A_TOKEN = "Bearer not-a-token"  # noqa: S105 (deliberately invalid)
CUSTOMER_TOKEN_HEADER = "X-Moltin-Customer-Token"  # noqa: S105 (a header name)
TARGETS = ("bare", "unvalidated", "keyhouse")  # this order in every round
MIN_VS_UNVALIDATED = 0.9
MAX_RSS_MIB = 80.0
# Different on every response (the date, the request id); each server sends its own.
PER_RESPONSE_HEADERS = frozenset({"date", "x-request-id"})


@dataclass(frozen=True, slots=True)
class Read:
    """One read of the scenario, and the targets Keyhouse's one-worker row is held to."""

    name: str
    path: str  # `{product_id}` is filled in
    with_customer: bool = False  # the shopper's customer token goes beside the bearer token
    with_account: bool = False  # or the account member's account token
    min_rps: float | None = None
    min_vs_bare: float | None = None
    max_p99_ms: float | None = None


READS = (
    Read("product", PRODUCTS_PATH + "/{product_id}", min_rps=3500, min_vs_bare=0.7, max_p99_ms=25),
    Read("products", PRODUCTS_PATH + "?page[limit]=25", min_rps=1500, max_p99_ms=25),
    Read("orders", "/v2/orders", with_customer=True),
    Read("account-orders", "/v2/orders", with_account=True),
)
ACCOUNT_TWINS = {"account-orders": "orders"}  # an account-token read, and its customer twin


@dataclass(frozen=True, slots=True)
class ReadRow:
    """The rounds of one read on one target and deployment, their medians and verdicts."""

    database: str
    workers: int
    read: str
    target: str
    connections: int
    rounds: list[WrkRun]
    rps: float
    p50_us: float
    p99_us: float
    rss: Memory  # the server's workers, after the rounds of every read
    vs_bare: float | None = None  # req/s over the bare app's (Keyhouse, unvalidated)
    vs_unvalidated: float | None = None  # req/s over the unvalidated app's (Keyhouse)
    vs_customer: float | None = None  # an account read's req/s over its customer twin's
    meets_target: bool | None = None  # None: no target applies (references, 2+ workers)
    misses: list[str] = field(default_factory=list)  # the targets this row missed


@dataclass(frozen=True, slots=True)
class SentRead:
    """A read as sent: its path and headers, the same bytes to every server."""

    read: Read
    path: str
    headers: dict[str, str]

    def with_authorization(self, authorization: str | None) -> dict[str, str]:
        """These headers with another Authorization, or none."""
        headers = {k: v for k, v in self.headers.items() if k != "Authorization"}
        return headers if authorization is None else {**headers, "Authorization": authorization}

    def load(self, expect_bytes: int, config: Config) -> Load:
        env = {
            "BENCH_PATH": self.path,
            "BENCH_AUTHORIZATION": self.headers["Authorization"],
            "BENCH_CUSTOMER_TOKEN": self.headers.get(CUSTOMER_TOKEN_HEADER, ""),
            "BENCH_ACCOUNT_TOKEN": self.headers.get(ACCOUNT_TOKEN_HEADER, ""),
            "BENCH_EXPECT_BYTES": str(expect_bytes),
        }
        return Load(REQUEST_LUA, env, config.connections, config.threads)


def _sent_reads(data: StoreData) -> list[SentRead]:
    bearer = {"Authorization": f"Bearer {data.implicit_token}", "Accept": "application/json"}
    shopper = {**bearer, CUSTOMER_TOKEN_HEADER: data.customer_token}
    buyer = {**bearer, ACCOUNT_TOKEN_HEADER: data.account_token}
    return [
        SentRead(
            read,
            read.path.format(product_id=data.product_ids[0]),
            shopper if read.with_customer else buyer if read.with_account else bearer,
        )
        for read in READS
    ]


def _get(
    server: Server, path: str, headers: dict[str, str], expect_status: int
) -> tuple[dict[str, str], bytes]:
    status, answer_headers, body = request(server.port, "GET", path, headers=headers)
    if status != expect_status:
        sent = headers.get("Authorization", "no Authorization")[:20]
        fail(f"{server.name} answered {status} to GET {path} ({sent}…), not {expect_status}")
    return answer_headers, body


def _check_keyhouse(keyhouse: Server, sent: SentRead) -> bytes:
    """The same bytes three times, what the bench made; refused without a valid token."""
    bodies = {_get(keyhouse, sent.path, sent.headers, 200)[1] for _ in range(3)}
    if len(bodies) != 1:
        fail(f"Keyhouse's GET {sent.path} answers vary: {sorted(map(len, bodies))} bytes")
    body = bodies.pop()
    data = json.loads(body)["data"]
    if not data or (isinstance(data, list) and len(data) != 25):
        fail(f"Keyhouse's GET {sent.path} is not what the bench made: {body[:300]!r}")
    _get(keyhouse, sent.path, sent.with_authorization(None), 401)
    _get(keyhouse, sent.path, sent.with_authorization(NOT_A_TOKEN), 401)
    return body


def _check_references(servers: dict[str, Server], sent: SentRead, body: bytes) -> None:
    """Unvalidated: Keyhouse's bytes and headers with the token, without one and with a wrong
    one (nothing validates there). Bare: Keyhouse's bytes and content type (it checks no
    token at all)."""
    expected, _ = _get(servers["keyhouse"], sent.path, sent.headers, 200)
    for authorization in (sent.headers["Authorization"], None, NOT_A_TOKEN):
        headers, answer = _get(
            servers["unvalidated"], sent.path, sent.with_authorization(authorization), 200
        )
        if answer != body:
            fail(f"unvalidated GET {sent.path} differs from Keyhouse's: {answer[:300]!r}")
        for name in {*headers, *expected} - PER_RESPONSE_HEADERS:
            if headers.get(name) != expected.get(name):
                fail(f"unvalidated {name}: {headers.get(name)!r}, Keyhouse: {expected.get(name)!r}")
    headers, answer = _get(servers["bare"], sent.path, sent.headers, 200)
    if answer != body or headers.get("content-type") != expected.get("content-type"):
        fail(f"bare GET {sent.path} differs from Keyhouse's:\n{answer[:400]!r}\n{body[:400]!r}")


def _start_references(deployment: Deployment, config: Config, data: StoreData) -> dict[str, Server]:
    """The unvalidated and bare apps beside Keyhouse, on its data, with its workers."""
    issuer = get_json(deployment.keyhouse.port, "/.well-known/oauth-authorization-server")
    env = {
        **deployment.env,
        # The tokens' issuer and audience: Keyhouse's address, as `keyhouse serve` set it.
        "KEYHOUSE_ISSUER": issuer["issuer"],
        "BENCH_ACCESS_TOKEN": data.implicit_token,
        "BENCH_CUSTOMER_TOKEN": data.customer_token,
        "BENCH_ACCOUNT_TOKEN": data.account_token,
        "BENCH_BYPASS": config.bypass,
        "BENCH_STORE_ID": data.store_id,
        "BENCH_CUSTOMER_ID": data.customer_id,
        "BENCH_ACCOUNT_ID": data.account_id,
    }
    servers = {"keyhouse": deployment.keyhouse}
    for name, app in (("unvalidated", UNVALIDATED_APP), ("bare", BARE_APP)):
        port = free_port()
        argv = uvicorn_argv(app, port, config, deployment.workers)
        log_file = deployment.data_dir / f"{name}.log"
        server = Server(name, argv, env, port, log_file, workers=deployment.workers)
        servers[name] = deployment.start(server)
    return servers


def _measure(
    servers: dict[str, Server], loads: dict[str, Load], config: Config, where: str
) -> dict[tuple[str, str], list[WrkRun]]:
    """Warm-up, then rounds: each read in turn, on each server in turn."""
    for name, load in loads.items():
        for target in TARGETS:
            run_wrk(servers[target], load, config.warmup, f"{target} {SCENARIO} {name}")
    runs: dict[tuple[str, str], list[WrkRun]] = {(r.name, t): [] for r in READS for t in TARGETS}
    for round_number in range(1, config.rounds + 1):
        for read in READS:
            for target in TARGETS:
                result = run_wrk_balanced(
                    servers[target],
                    loads[read.name],
                    config.read_duration,
                    f"{target} {SCENARIO} {read.name}",
                )
                runs[(read.name, target)].append(result)
                log(
                    f"[{where}] {SCENARIO} round {round_number} {read.name:<8} {target:<11} "
                    f"{result.describe()}"
                )
    return runs


def _missed(row: ReadRow, read: Read, vs_bare: float, vs_unvalidated: float) -> list[str]:
    """The targets of `read` that Keyhouse's row misses, each in words."""
    missed = []
    if read.min_rps is not None and row.rps < read.min_rps:
        missed.append(f"{row.rps:.0f} req/s, not {read.min_rps:.0f} or more")
    if read.min_vs_bare is not None and vs_bare < read.min_vs_bare:
        missed.append(f"{vs_bare:.2f}x the bare app, not {read.min_vs_bare}x or more")
    if vs_unvalidated < MIN_VS_UNVALIDATED:
        missed.append(f"{vs_unvalidated:.2f}x unvalidated, not {MIN_VS_UNVALIDATED}x or more")
    if read.max_p99_ms is not None and row.p99_us / 1000 >= read.max_p99_ms:
        missed.append(f"p99 {row.p99_us / 1000:.1f} ms, not under {read.max_p99_ms:.0f} ms")
    if row.rss.max_mib >= MAX_RSS_MIB:
        missed.append(f"{row.rss.max_mib:.1f} MiB per worker, not under {MAX_RSS_MIB:.0f} MiB")
    where = f"{row.database}, {row.workers} worker: {read.name}"
    return [f"{where} at {miss}" for miss in missed]


def _judged(row: ReadRow, read: Read, bare: ReadRow, unvalidated: ReadRow) -> ReadRow:
    """Keyhouse's row with its ratios and, with one worker, the targets it missed."""
    vs_bare, vs_unvalidated = row.rps / bare.rps, row.rps / unvalidated.rps
    targeted = row.workers == TARGET_WORKERS
    missed = _missed(row, read, vs_bare, vs_unvalidated) if targeted else []
    return dataclasses.replace(
        row,
        vs_bare=vs_bare,
        vs_unvalidated=vs_unvalidated,
        meets_target=not missed if targeted else None,
        misses=missed,
    )


def _rows(
    deployment: Deployment,
    config: Config,
    runs: dict[tuple[str, str], list[WrkRun]],
    memory: dict[str, Memory],
) -> list[ReadRow]:
    rows: list[ReadRow] = []
    for read in READS:
        bare, unvalidated, keyhouse = (
            ReadRow(
                database=deployment.database,
                workers=deployment.workers,
                read=read.name,
                target=target,
                connections=config.connections,
                rounds=runs[(read.name, target)],
                rps=statistics.median(run.rps for run in runs[(read.name, target)]),
                p50_us=statistics.median(run.p50_us for run in runs[(read.name, target)]),
                p99_us=statistics.median(run.p99_us for run in runs[(read.name, target)]),
                rss=memory[target],
            )
            for target in TARGETS
        )
        unvalidated = dataclasses.replace(unvalidated, vs_bare=unvalidated.rps / bare.rps)
        rows += [bare, unvalidated, _judged(keyhouse, read, bare, unvalidated)]
    return _beside_customers(rows)


def _beside_customers(rows: list[ReadRow]) -> list[ReadRow]:
    """Keyhouse's account-token rows with their req/s over their customer twin's."""
    keyhouse = {row.read: row for row in rows if row.target == "keyhouse"}
    return [
        dataclasses.replace(row, vs_customer=row.rps / keyhouse[ACCOUNT_TWINS[row.read]].rps)
        if row.target == "keyhouse" and row.read in ACCOUNT_TWINS
        else row
        for row in rows
    ]


def run(deployment: Deployment, config: Config) -> list[ReadRow]:
    where, keyhouse = deployment.label, deployment.keyhouse
    data = make_store_data(deployment)
    sent = _sent_reads(data)
    bodies = {s.read.name: _check_keyhouse(keyhouse, s) for s in sent}
    servers = _start_references(deployment, config, data)
    for s in sent:
        _check_references(servers, s, bodies[s.read.name])
        log(f"[{where}] {SCENARIO}: GET {s.path}, {len(bodies[s.read.name])} bytes from all three")
    loads = {s.read.name: s.load(len(bodies[s.read.name]), config) for s in sent}
    runs = _measure(servers, loads, config, where)
    memory = {target: servers[target].memory() for target in TARGETS}
    rows = _rows(deployment, config, runs, memory)
    if config.profile:
        for name, load in loads.items():
            _profile(deployment, config, name, load, runs[(name, "keyhouse")])
    return rows


def _profile(
    deployment: Deployment, config: Config, name: str, load: Load, runs: list[WrkRun]
) -> None:
    """Keyhouse's Python time on one read, by layer (bench/layers.py), in µs per request from
    the CPU time the measured rounds took."""
    output = flame_graph_path(deployment, f"{SCENARIO}-{name}", ".txt")
    keyhouse = deployment.keyhouse
    profile(
        keyhouse,
        output,
        config,
        lambda: run_wrk(keyhouse, load, config.duration, f"keyhouse {name}"),
        raw=True,
    )
    cpu = [run.cpu_us_per_request for run in runs if run.cpu_us_per_request]
    with output.open() as recording:
        table = layers.render(layers.breakdown(recording), statistics.median(cpu) if cpu else None)
    log(f"[{deployment.label}] {name}: Keyhouse's Python time by layer ({output.name})\n{table}")


def targets() -> dict[str, Any]:
    """The targets, as the results document records them for the report."""
    reads = {
        read.name: {
            "path": read.path,
            "min_rps": read.min_rps,
            "min_vs_bare": read.min_vs_bare,
            "max_p99_ms": read.max_p99_ms,
        }
        for read in READS
    }
    return {"min_vs_unvalidated": MIN_VS_UNVALIDATED, "max_rss_mib": MAX_RSS_MIB, "reads": reads}


def misses(rows: Sequence[ReadRow]) -> list[str]:
    return [miss for row in rows for miss in row.misses]
