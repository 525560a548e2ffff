"""Scenario `logins`: customer logins per second per worker, and token latency beside them.

`POST /v2/customers/tokens` (email and password of a real customer, argon2id, with an
implicit bearer token) from `wrk -c<connections>` on Keyhouse; and the implicit
`POST /oauth/access_token` from a small probe (`wrk -t1 -c<probe-connections>`), alone and
while the logins flood the server. Each round: probe alone, logins alone, logins and probe
together. Target, with one worker: the probe's p99 under the flood below 50 ms.

Password hashes queue (FIFO) for a bounded thread pool in each worker, and wrk stops with
requests still queued; after each login run one more login is sent and awaited, and every
worker must go idle, so the next run starts once the server has worked off the backlog.
"""

import dataclasses
import json
import secrets
import time

from harness import (
    REQUEST_LUA,
    ROOT,
    TARGET_WORKERS,
    TOKEN_PATH,
    Config,
    Deployment,
    Load,
    PublishedKeys,
    Row,
    Server,
    Wrk,
    WrkRun,
    fail,
    issue_token,
    keyhouse,
    log,
    request,
    run_wrk,
    token_form,
    token_load,
)
from profiling import flame_graph_path, profile

SCENARIO = "logins"
LOGIN_PATH = "/v2/customers/tokens"
CUSTOMER_EMAIL = "bench-shopper@example.com"
CUSTOMER_TOKEN_TYPE = "customer+jwt"  # noqa: S105 (a JWT `typ`)
TARGET_P99_MS = 50.0
LOGIN_WRK_TIMEOUT_SECONDS = 15  # 32 logins queued for one ~40 ms hash thread: over 1 s each
DRAIN_SECONDS = 120.0  # the most one login may wait behind the backlog left by a run
FLOOD_LEAD_SECONDS = 1  # the flood starts this long before the probe and ends after it
# Row labels, in table order.
LOGINS_ALONE = "logins"
IMPLICIT_ALONE = "implicit"
LOGINS_FLOOD = "logins+probe"
IMPLICIT_FLOOD = "implicit+flood"


@dataclasses.dataclass(frozen=True, slots=True)
class Login:
    body: bytes
    bearer: str
    customer_id: str


def _create_customer(deployment: Deployment) -> tuple[str, str]:
    """A customer made with `keyhouse customers create`; its id and password."""
    password = secrets.token_urlsafe(18)
    output = keyhouse(
        ["customers", "create", "--email", CUSTOMER_EMAIL, "--password-stdin", "--json"],
        deployment.env,
        stdin=password + "\n",
    )
    customer_id = json.loads(output).get("id")
    if not isinstance(customer_id, str):
        fail(f"`keyhouse customers create` gave no id: {output}")
    return customer_id, password


def _post_login(server: Server, login: Login, timeout: float) -> bytes:
    headers = {
        "Authorization": login.bearer,
        "Content-Type": "application/json",
        "Accept": "application/json",
    }
    status, _, body = request(
        server.port, "POST", LOGIN_PATH, login.body, headers=headers, timeout=timeout
    )
    if status != 200:
        fail(f"{server.name} answered {status} to POST {LOGIN_PATH}: {body[:300]!r}")
    return body


def _check_login(server: Server, login: Login) -> int:
    """Three logins give real customer tokens for this customer, all of one length."""
    published = PublishedKeys(server.port)
    lengths: set[int] = set()
    for _ in range(3):
        body = _post_login(server, login, timeout=30.0)
        data = json.loads(body).get("data", {})
        token = data.get("token")
        if not isinstance(token, str) or data.get("customer_id") != login.customer_id:
            fail(f"POST {LOGIN_PATH} gave no customer token: {body[:300]!r}")
        header, claims = published.verify(
            token, require=["exp", "iat", "jti", "sub"], what="the customer token"
        )
        if header.get("typ") != CUSTOMER_TOKEN_TYPE or claims["sub"] != login.customer_id:
            fail(f"the customer token is not this customer's: {header} {claims}")
        lengths.add(len(body))
    if len(lengths) != 1:
        fail(f"POST {LOGIN_PATH} bodies vary in length ({sorted(lengths)})")
    return lengths.pop()


def _implicit_length(server: Server, deployment: Deployment) -> int:
    lengths: set[int] = set()
    for _ in range(3):
        status, _, body = request(
            server.port, "POST", TOKEN_PATH, token_form("implicit", deployment.client)
        )
        if status != 200:
            fail(f"{server.name} answered {status} to implicit: {body[:300]!r}")
        lengths.add(len(body))
    if len(lengths) != 1:
        fail(f"implicit token bodies vary in length ({sorted(lengths)})")
    return lengths.pop()


def _drain(server: Server, login: Login) -> None:
    """One more login, answered once its worker's backlog is gone; then every worker idle
    (with several, that login may have found a worker with none)."""
    _post_login(server, login, timeout=DRAIN_SECONDS)
    server.wait_idle(DRAIN_SECONDS)


def _flood_and_probe(
    server: Server, flood: Load, probe: Load, seconds: int, login: Login
) -> tuple[WrkRun, WrkRun]:
    """The flood for `seconds` + 2 leads, the probe for `seconds` inside it; then drained."""
    flooding = Wrk(server, flood, seconds + 2 * FLOOD_LEAD_SECONDS, f"{server.name} {SCENARIO}")
    try:
        time.sleep(FLOOD_LEAD_SECONDS)
        probed = run_wrk(server, probe, seconds, f"{server.name} implicit probe in the flood")
        flooded = flooding.result()
    finally:
        flooding.kill()
    _drain(server, login)
    return flooded, probed


def _logins_alone(server: Server, flood: Load, seconds: int, login: Login) -> WrkRun:
    result = run_wrk(server, flood, seconds, f"{server.name} {SCENARIO}")
    _drain(server, login)
    return result


def run(deployment: Deployment, config: Config) -> list[Row]:
    where, server = deployment.label, deployment.keyhouse
    implicit_token = issue_token(server.port, "implicit", deployment.client)
    customer_id, password = _create_customer(deployment)
    login = Login(
        body=json.dumps(
            {"data": {"type": "token", "email": CUSTOMER_EMAIL, "password": password}}
        ).encode(),
        bearer=f"Bearer {implicit_token}",
        customer_id=customer_id,
    )
    login_length = _check_login(server, login)
    implicit_length = _implicit_length(server, deployment)
    log(
        f"[{where}] logins: customer {customer_id}; login bodies {login_length} bytes, "
        f"implicit {implicit_length}"
    )
    flood = Load(
        REQUEST_LUA,
        {
            "BENCH_METHOD": "POST",
            "BENCH_PATH": LOGIN_PATH,
            "BENCH_AUTHORIZATION": login.bearer,
            "BENCH_CONTENT_TYPE": "application/json",
            "BENCH_BODY": login.body.decode(),
            "BENCH_EXPECT_BYTES": str(login_length),
        },
        config.connections,
        config.threads,
        timeout_seconds=LOGIN_WRK_TIMEOUT_SECONDS,
    )
    probe = token_load("implicit", deployment.client, implicit_length, config.probe_connections)

    run_wrk(server, probe, config.warmup, f"{server.name} implicit probe")
    _logins_alone(server, flood, config.warmup, login)
    log(f"[{where}] warmed up ({config.warmup}s of probe and of logins)")
    runs: dict[str, list[WrkRun]] = {
        name: [] for name in (LOGINS_ALONE, IMPLICIT_ALONE, LOGINS_FLOOD, IMPLICIT_FLOOD)
    }
    for round_number in range(1, config.rounds + 1):
        results = {IMPLICIT_ALONE: run_wrk(server, probe, config.duration, "implicit probe")}
        results[LOGINS_ALONE] = _logins_alone(server, flood, config.duration, login)
        results[LOGINS_FLOOD], results[IMPLICIT_FLOOD] = _flood_and_probe(
            server, flood, probe, config.duration, login
        )
        for name, result in results.items():
            runs[name].append(result)
            log(f"[{where}] {SCENARIO:<18} round {round_number} {name:<15} {result.describe()}")
    memory = server.memory()
    if config.profile:
        output = flame_graph_path(deployment, SCENARIO)
        profile(
            server,
            output,
            config,
            lambda: _flood_and_probe(server, flood, probe, config.duration, login),
            threads=True,
        )
        log(f"[{where}] flame graph of Keyhouse, per thread: {output.relative_to(ROOT)}")

    rows: list[Row] = []
    for name, connections in (
        (LOGINS_ALONE, config.connections),
        (IMPLICIT_ALONE, config.probe_connections),
        (LOGINS_FLOOD, config.connections),
        (IMPLICIT_FLOOD, config.probe_connections),
    ):
        row = Row.of(deployment, SCENARIO, name, connections, runs[name], memory)
        if name == IMPLICIT_FLOOD and deployment.workers == TARGET_WORKERS:
            row = dataclasses.replace(row, meets_target=row.p99_us / 1000 < TARGET_P99_MS)
        rows.append(row)
    return rows


def misses(rows: list[Row]) -> list[str]:
    return [
        f"{row.database}, {row.workers} worker: implicit p99 {row.p99_us / 1000:.1f} ms "
        f"in the login flood, not under {TARGET_P99_MS:.0f} ms"
        for row in rows
        if row.meets_target is False
    ]
