"""Scenario `protected`: what bearer validation costs a protected read.

`GET /v2/products/{id}` with `Authorization: Bearer <implicit token>` for a live product,
on Keyhouse and on Keyhouse with validation bypassed (bench/unvalidated.py): the same app,
route, database, request bytes, Uvicorn settings and number of workers, interleaved rounds.
Target, with one worker: Keyhouse at 0.85x the bypassed app's requests/s or better (validation
costs less than 15% of the route's throughput).
"""

import dataclasses
import json

from harness import (
    REQUEST_LUA,
    ROOT,
    TARGET_WORKERS,
    Config,
    Deployment,
    Load,
    Row,
    Server,
    WrkRun,
    fail,
    free_port,
    get_json,
    issue_token,
    log,
    request,
    run_wrk,
    run_wrk_balanced,
    uvicorn_argv,
)
from profiling import flame_graph_path, profile

SCENARIO = "protected"
TARGET_RATIO = 0.85
PRODUCTS_PATH = "/v2/products"
UNVALIDATED_APP = "bench.unvalidated:create_unvalidated_app"
NOT_A_TOKEN = "Bearer not-a-token"  # noqa: S105 (deliberately invalid)
PRODUCT = {
    "type": "product",
    "name": "Benchmark kettle",
    "slug": "benchmark-kettle",
    "sku": "BENCH-KETTLE-1",
    "description": "A product for the protected-read benchmark.",
    "manage_stock": False,
    "price": [
        {"amount": 4999, "currency": "USD", "includes_tax": True},
        {"amount": 4599, "currency": "EUR", "includes_tax": True},
    ],
    "status": "live",  # an implicit (read-only) token sees live products only
    "commodity_type": "physical",
}


def _create_product(port: int, backend_token: str) -> str:
    status, _, body = request(
        port,
        "POST",
        PRODUCTS_PATH,
        json.dumps({"data": PRODUCT}).encode(),
        headers={"Authorization": f"Bearer {backend_token}", "Content-Type": "application/json"},
    )
    if status != 201:
        fail(f"Keyhouse answered {status} to POST {PRODUCTS_PATH}: {body[:300]!r}")
    product_id = json.loads(body)["data"]["id"]
    if not isinstance(product_id, str):
        fail(f"POST {PRODUCTS_PATH} gave no product id: {body[:300]!r}")
    return product_id


def _read(
    server: Server, path: str, authorization: str | None, expect_status: int
) -> tuple[dict[str, str], bytes]:
    headers = {"Accept": "application/json"}
    if authorization is not None:
        headers["Authorization"] = authorization
    status, response_headers, body = request(server.port, "GET", path, headers=headers)
    if status != expect_status:
        sent = "no Authorization" if authorization is None else f"{authorization[:20]}..."
        fail(
            f"{server.name} answered {status} to GET {path} with {sent}, "
            f"not {expect_status}: {body[:300]!r}"
        )
    return response_headers, body


def _check_keyhouse(keyhouse: Server, path: str, bearer: str, product_id: str) -> bytes:
    """The product, the same bytes every time; refused without a valid token."""
    bodies = {_read(keyhouse, path, bearer, 200)[1] for _ in range(3)}
    if len(bodies) != 1:
        fail(f"Keyhouse's GET {path} answers vary: {sorted(len(body) for body in bodies)} bytes")
    body = bodies.pop()
    if json.loads(body)["data"]["id"] != product_id:
        fail(f"Keyhouse's GET {path} is not the product created: {body[:300]!r}")
    _read(keyhouse, path, None, 401)
    _read(keyhouse, path, NOT_A_TOKEN, 401)
    return body


def _check_unvalidated(
    unvalidated: Server, keyhouse: Server, path: str, bearer: str, body: bytes
) -> None:
    """Keyhouse's bytes and headers with the token; and without one, and with a wrong one:
    the override took effect, nothing validates tokens there."""
    keyhouse_headers, _ = _read(keyhouse, path, bearer, 200)
    for authorization in (bearer, None, NOT_A_TOKEN):
        headers, answer = _read(unvalidated, path, authorization, 200)
        if answer != body:
            fail(f"unvalidated GET {path} differs from Keyhouse's: {answer[:300]!r}")
        # The request id differs on every response; both must send one.
        for name in {*headers, *keyhouse_headers} - {"date", "x-request-id"}:
            if headers.get(name) != keyhouse_headers.get(name):
                fail(
                    f"unvalidated {name}: {headers.get(name)!r}, "
                    f"Keyhouse: {keyhouse_headers.get(name)!r}"
                )


def run(deployment: Deployment, config: Config) -> list[Row]:
    where, client, keyhouse = deployment.label, deployment.client, deployment.keyhouse
    backend_token = issue_token(keyhouse.port, "client_credentials", client)
    implicit_token = issue_token(keyhouse.port, "implicit", client)
    product_id = _create_product(keyhouse.port, backend_token)
    path = f"{PRODUCTS_PATH}/{product_id}"
    bearer = f"Bearer {implicit_token}"
    body = _check_keyhouse(keyhouse, path, bearer, product_id)

    port = free_port()
    env = {
        **deployment.env,
        # The token's issuer and audience: Keyhouse's address, as `keyhouse serve` set it.
        "KEYHOUSE_ISSUER": get_json(keyhouse.port, "/.well-known/oauth-authorization-server")[
            "issuer"
        ],
        "BENCH_ACCESS_TOKEN": implicit_token,
        "BENCH_BYPASS": config.bypass,
    }
    unvalidated = deployment.start(
        Server(
            "unvalidated",
            uvicorn_argv(UNVALIDATED_APP, port, config, deployment.workers),
            env,
            port,
            deployment.data_dir / "unvalidated.log",
            workers=deployment.workers,
        )
    )
    _check_unvalidated(unvalidated, keyhouse, path, bearer, body)
    log(
        f"[{where}] protected: GET {path} ({len(body)} bytes); unvalidated pid "
        f"{unvalidated.pid} on :{port} (bypass {config.bypass}) answers 200 without a token"
    )

    load = Load(
        REQUEST_LUA,
        {"BENCH_PATH": path, "BENCH_AUTHORIZATION": bearer, "BENCH_EXPECT_BYTES": str(len(body))},
        config.connections,
        config.threads,
    )
    targets = (unvalidated, keyhouse)  # this order in every round
    for server in targets:
        run_wrk(server, load, config.warmup, f"{server.name} {SCENARIO}")
    runs: dict[str, list[WrkRun]] = {server.name: [] for server in targets}
    for round_number in range(1, config.rounds + 1):
        for server in targets:
            result = run_wrk_balanced(server, load, config.duration, f"{server.name} {SCENARIO}")
            runs[server.name].append(result)
            log(
                f"[{where}] {SCENARIO:<18} round {round_number} {server.name:<11} "
                f"{result.describe()}"
            )
    memory = {server.name: server.memory() for server in targets}
    if config.profile:
        output = flame_graph_path(deployment, SCENARIO)
        profile(
            keyhouse,
            output,
            config,
            lambda: run_wrk(keyhouse, load, config.duration, f"keyhouse {SCENARIO}"),
        )
        log(f"[{where}] flame graph of Keyhouse written to {output.relative_to(ROOT)}")

    reference, measured = (
        Row.of(deployment, SCENARIO, name, config.connections, runs[name], memory[name])
        for name in ("unvalidated", "keyhouse")
    )
    ratio = measured.rps / reference.rps
    targeted = deployment.workers == TARGET_WORKERS
    return [
        reference,
        dataclasses.replace(
            measured, ratio=ratio, meets_target=ratio >= TARGET_RATIO if targeted else None
        ),
    ]


def misses(rows: list[Row]) -> list[str]:
    return [
        f"{row.database}, {row.workers} worker: protected reads at {row.ratio:.2f}x "
        f"the unvalidated app, not {TARGET_RATIO}x"
        for row in rows
        if row.ratio is not None and row.meets_target is False
    ]
