"""Scenario `logins`: customer and account logins per second per worker, and token latency
beside them.

`POST /v2/customers/tokens` (email and password of a real customer) and
`POST /v2/account-members/tokens` (username and password of an account member, mechanism
`password`), both argon2id with the same parameters and both with an implicit bearer token,
from `wrk -c<connections>` on Keyhouse; and the implicit `POST /oauth/access_token` from a
small probe (`wrk -t1 -c<probe-connections>`), alone and while the logins flood the server.
Each round: probe alone; customer logins alone, then with the probe inside; account logins
alone, then with the probe inside. Target, with one worker: the probe's p99 under either
flood below 50 ms (issue 22 holds account logins to the customers' targets).

Password hashes queue (FIFO) for a bounded thread pool in each worker, and wrk stops with
requests still queued; after each login run one more login is sent and awaited, and every
worker must go idle, so the next run starts once the server has worked off the backlog.
"""

import asyncio
import dataclasses
import json
import secrets
import time
from typing import Any

import processes
from account_data import ACCOUNT_LOGIN_PATH, make_account_member
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
    one_length,
    request,
    run_wrk,
    token_form,
    token_load,
)
from processes import Memory
from profiling import flame_graph_path, profile

SCENARIO = "logins"
LOGIN_PATH = "/v2/customers/tokens"
CUSTOMER_EMAIL = "bench-shopper@example.com"
MEMBER_USERNAME = "bench-member@example.com"
TARGET_P99_MS = 50.0
LOGIN_WRK_TIMEOUT_SECONDS = 15  # 32 logins queued for one ~40 ms hash thread: over 1 s each
DRAIN_SECONDS = 120.0  # the most one login may wait behind the backlog left by a run
FLOOD_LEAD_SECONDS = 1  # the flood starts this long before the probe and ends after it
CUSTOMER = "customer"
ACCOUNT = "account"
# Row labels: for each kind of login, the flood alone, the flood with the probe inside it, and
# the probe inside that flood; and the probe alone (in the table after the first flood).
IMPLICIT_ALONE = "implicit"
LOGINS_ALONE = "logins"
LOGINS_FLOOD = "logins+probe"
IMPLICIT_FLOOD = "implicit+flood"
ACCOUNT_LOGINS_ALONE = "account logins"
ACCOUNT_LOGINS_FLOOD = "account logins+probe"
IMPLICIT_ACCOUNT_FLOOD = "implicit+account flood"
RUNS = {
    CUSTOMER: (LOGINS_ALONE, LOGINS_FLOOD, IMPLICIT_FLOOD),
    ACCOUNT: (ACCOUNT_LOGINS_ALONE, ACCOUNT_LOGINS_FLOOD, IMPLICIT_ACCOUNT_FLOOD),
}
LOGIN_RUNS = frozenset({LOGINS_ALONE, LOGINS_FLOOD, ACCOUNT_LOGINS_ALONE, ACCOUNT_LOGINS_FLOOD})
PROBES_IN_FLOODS = frozenset({IMPLICIT_FLOOD, IMPLICIT_ACCOUNT_FLOOD})


@dataclasses.dataclass(frozen=True, slots=True)
class Login:
    """One kind of login as wrk sends it, and the token its answer must hold."""

    kind: str  # CUSTOMER or ACCOUNT
    path: str
    body: bytes
    bearer: str
    subject: str  # the customer's or the account member's id: the token's `sub`
    token_type: str  # the token's JWT `typ`
    status: int  # of a successful login: 200 for customers, 201 for account members

    def token(self, document: Any) -> object:
        """The one token of a login's answer, if the answer names this login's subject."""
        if self.kind == CUSTOMER:
            data = document.get("data") or {}
            return data.get("token") if data.get("customer_id") == self.subject else None
        tokens = document.get("data") or []
        named = (document.get("meta") or {}).get("account_member_id") == self.subject
        return tokens[0].get("token") if named and len(tokens) == 1 else None

    def load(self, expect_bytes: int, connections: int, threads: int = 1) -> Load:
        """This login from bench/request.lua, every answer of `expect_bytes`."""
        env = {
            "BENCH_METHOD": "POST",
            "BENCH_PATH": self.path,
            "BENCH_AUTHORIZATION": self.bearer,
            "BENCH_CONTENT_TYPE": "application/json",
            "BENCH_BODY": self.body.decode(),
            "BENCH_EXPECT_STATUS": str(self.status),
            "BENCH_EXPECT_BYTES": str(expect_bytes),
        }
        return Load(
            REQUEST_LUA, env, connections, threads, timeout_seconds=LOGIN_WRK_TIMEOUT_SECONDS
        )


def customer_login(deployment: Deployment, bearer: str) -> Login:
    """A customer made with `keyhouse customers create`, logging in beside `bearer`."""
    password = secrets.token_urlsafe(18)
    output = keyhouse(
        ["customers", "create", "--email", CUSTOMER_EMAIL, "--password-stdin", "--json"],
        deployment.env,
        stdin=password + "\n",
    )
    customer_id = json.loads(output).get("id")
    if not isinstance(customer_id, str):
        fail(f"`keyhouse customers create` gave no id: {output}")
    body = {"data": {"type": "token", "email": CUSTOMER_EMAIL, "password": password}}
    return Login(
        CUSTOMER, LOGIN_PATH, json.dumps(body).encode(), bearer, customer_id, "customer+jwt", 200
    )


def account_login(deployment: Deployment, bearer: str) -> Login:
    """An account member made through the API by a backend, logging in beside `bearer`."""
    port = deployment.keyhouse.port
    backend = f"Bearer {issue_token(port, 'client_credentials', deployment.client)}"
    member = make_account_member(port, backend, MEMBER_USERNAME)
    return Login(
        ACCOUNT,
        ACCOUNT_LOGIN_PATH,
        member.login_body(),
        bearer,
        member.member_id,
        "account+jwt",
        201,
    )


async def _stored_hashes(url: str) -> list[str]:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                text(
                    "SELECT password_hash FROM customer "
                    "UNION ALL SELECT password_hash FROM account_member_password"
                )
            )
            return [row[0] for row in rows]
    finally:
        await engine.dispose()


def password_hash_parameters(deployment: Deployment) -> str:
    """The scheme and parameters of every stored customer and account-member password hash
    (`argon2id$v=19$m=32768,t=2,p=1`), or `fail` unless they are all the same."""
    hashes = asyncio.run(_stored_hashes(deployment.env["KEYHOUSE_DATABASE_URL"]))
    parameters = {"$".join(stored.split("$")[1:4]) for stored in hashes}
    if len(parameters) != 1:
        fail(f"the stored password hashes differ in scheme or parameters: {sorted(parameters)}")
    return parameters.pop()


def post_login(server: Server, login: Login, timeout: float) -> bytes:
    headers = {
        "Authorization": login.bearer,
        "Content-Type": "application/json",
        "Accept": "application/json",
    }
    status, _, body = request(
        server.port, "POST", login.path, login.body, headers=headers, timeout=timeout
    )
    if status != login.status:
        fail(f"{server.name} answered {status} to POST {login.path}: {body[:300]!r}")
    return body


def _checked_login(server: Server, login: Login, published: PublishedKeys) -> bytes:
    """A login's answer, holding a real token of this customer or member."""
    body = post_login(server, login, timeout=30.0)
    token = login.token(json.loads(body))
    if not isinstance(token, str):
        fail(f"POST {login.path} gave no token of {login.subject}: {body[:300]!r}")
    header, claims = published.verify(
        token, require=["exp", "iat", "jti", "sub"], what=f"the {login.kind} token"
    )
    if header.get("typ") != login.token_type or claims["sub"] != login.subject:
        fail(f"the {login.kind} token is not {login.subject}'s: {header} {claims}")
    return body


def check_login(server: Server, login: Login) -> int:
    """Three logins give real tokens of this customer or member, all of one length."""
    published = PublishedKeys(server.port)
    answers = (_checked_login(server, login, published) for _ in range(3))
    return one_length(f"POST {login.path}", answers)


def _implicit(server: Server, deployment: Deployment) -> bytes:
    form = token_form("implicit", deployment.client)
    status, _, body = request(server.port, "POST", TOKEN_PATH, form)
    if status != 200:
        fail(f"{server.name} answered {status} to implicit: {body[:300]!r}")
    return body


def _implicit_length(server: Server, deployment: Deployment) -> int:
    return one_length("implicit token", (_implicit(server, deployment) for _ in range(3)))


def drain(server: Server, login: Login) -> None:
    """One more login, answered once its worker's backlog is gone; then every worker idle
    (with several, that login may have found a worker with none)."""
    post_login(server, login, timeout=DRAIN_SECONDS)
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
    drain(server, login)
    return flooded, probed


def _logins_alone(server: Server, flood: Load, seconds: int, login: Login) -> WrkRun:
    """The flood alone, with the CPU time the server spent per login from its start until it
    was drained: the logins wrk completed, those still queued when it stopped (one per
    connection) and the drain's."""
    before = sum(server.cpu_ticks())
    result = run_wrk(server, flood, seconds, f"{server.name} {login.kind} {SCENARIO}")
    drain(server, login)
    spent = (sum(server.cpu_ticks()) - before) / processes.CLOCK_TICKS_PER_SECOND
    cpu_us = spent * 1e6 / (result.requests + flood.connections + 1)
    return dataclasses.replace(result, cpu_us_per_request=round(cpu_us, 1))


def _rows(
    deployment: Deployment, config: Config, runs: dict[str, list[WrkRun]], memory: Memory
) -> list[Row]:
    """In table order, with the probe's verdicts in the floods (one worker) and each account
    row's req/s over its customer twin's (`ratio`)."""
    rows: dict[str, Row] = {}
    for name in (LOGINS_ALONE, IMPLICIT_ALONE, *RUNS[CUSTOMER][1:], *RUNS[ACCOUNT]):
        probe = name == IMPLICIT_ALONE or name in PROBES_IN_FLOODS
        connections = config.probe_connections if probe else config.connections
        row = Row.of(deployment, SCENARIO, name, connections, runs[name], memory)
        if name in PROBES_IN_FLOODS and deployment.workers == TARGET_WORKERS:
            row = dataclasses.replace(row, meets_target=row.p99_us / 1000 < TARGET_P99_MS)
        rows[name] = row
    for customer, account in zip(RUNS[CUSTOMER][:2], RUNS[ACCOUNT][:2], strict=True):
        ratio = rows[account].rps / rows[customer].rps
        rows[account] = dataclasses.replace(rows[account], ratio=ratio)
    return list(rows.values())


def run(deployment: Deployment, config: Config) -> list[Row]:
    where, server = deployment.label, deployment.keyhouse
    bearer = f"Bearer {issue_token(server.port, 'implicit', deployment.client)}"
    logins = (customer_login(deployment, bearer), account_login(deployment, bearer))
    lengths = {login.kind: check_login(server, login) for login in logins}
    implicit_length = _implicit_length(server, deployment)
    log(
        f"[{where}] logins: customer {logins[0].subject}, account member {logins[1].subject}, "
        f"password hashes {password_hash_parameters(deployment)}; login bodies {lengths} "
        f"bytes, implicit {implicit_length}"
    )
    floods = {
        login.kind: login.load(lengths[login.kind], config.connections, config.threads)
        for login in logins
    }
    probe = token_load("implicit", deployment.client, implicit_length, config.probe_connections)

    run_wrk(server, probe, config.warmup, f"{server.name} implicit probe")
    for login in logins:
        _logins_alone(server, floods[login.kind], config.warmup, login)
    log(f"[{where}] warmed up ({config.warmup}s of probe and of each kind of login)")
    runs: dict[str, list[WrkRun]] = {IMPLICIT_ALONE: []}
    runs.update({name: [] for names in RUNS.values() for name in names})
    for round_number in range(1, config.rounds + 1):
        results = {IMPLICIT_ALONE: run_wrk(server, probe, config.duration, "implicit probe")}
        for login in logins:
            alone, flooded, probed = RUNS[login.kind]
            flood = floods[login.kind]
            results[alone] = _logins_alone(server, flood, config.duration, login)
            results[flooded], results[probed] = _flood_and_probe(
                server, flood, probe, config.duration, login
            )
        for name, result in results.items():
            runs[name].append(result)
            log(f"[{where}] {SCENARIO:<18} round {round_number} {name:<22} {result.describe()}")
    memory = server.memory()
    if config.profile:
        output = flame_graph_path(deployment, SCENARIO)
        profile(
            server,
            output,
            config,
            lambda: _flood_and_probe(server, floods[CUSTOMER], probe, config.duration, logins[0]),
            threads=True,
        )
        log(f"[{where}] flame graph of Keyhouse, per thread: {output.relative_to(ROOT)}")
    return _rows(deployment, config, runs, memory)


def misses(rows: list[Row]) -> list[str]:
    return [
        f"{row.database}, {row.workers} worker: implicit p99 {row.p99_us / 1000:.1f} ms "
        f"in the {'account ' if row.target == IMPLICIT_ACCOUNT_FLOOD else ''}login flood, "
        f"not under {TARGET_P99_MS:.0f} ms"
        for row in rows
        if row.meets_target is False
    ]
