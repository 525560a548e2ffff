"""Scenario `issuance`: token requests, Keyhouse against the bare app of bench/baseline.py.

`POST /oauth/access_token` with `client_credentials` (client_secret_post) and `implicit`,
both servers with the same number of workers; target, with one worker: client_credentials at
0.85x the baseline's requests/s or better (issue 12: no regression below it).
"""

import json
import os
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from harness import (
    ROOT,
    TARGET_WORKERS,
    TOKEN_PATH,
    Client,
    Config,
    Deployment,
    PublishedKeys,
    Server,
    WrkRun,
    fail,
    free_port,
    log,
    pinned,
    request,
    run_wrk,
    run_wrk_balanced,
    token_form,
    token_load,
    uvicorn_argv,
)
from processes import Memory
from profiling import flame_graph_path, profile

GRANTS = ("client_credentials", "implicit")
TARGET_RATIO = 0.85
TARGET_GRANT = "client_credentials"
# Written by Uvicorn and Starlette for both apps; Keyhouse's other headers are copied to the
# baseline (BENCH_HEADERS), so both send the same bytes.
SERVER_HEADERS = frozenset({"date", "server", "content-length", "content-type"})
# Different on every response: the baseline sends a constant of the same length.
PER_REQUEST_HEADERS = frozenset({"x-request-id"})


@dataclass(frozen=True, slots=True)
class Summary:
    """The rounds of one target and grant on one deployment, and their medians."""

    database: str
    workers: int
    grant: str
    target: str
    rounds: list[WrkRun]
    rps: float
    p50_us: float
    p99_us: float
    rss: Memory  # the target's workers, after the rounds of both grants
    ratio: float | None  # Keyhouse rps / baseline rps; None on the baseline's rows
    meets_target: bool | None  # None: no target applies (the baseline, implicit, 2+ workers)


# --- checks before load -------------------------------------------------------------------


def _post_token(port: int, grant: str, client: Client) -> tuple[int, dict[str, str], bytes]:
    return request(port, "POST", TOKEN_PATH, token_form(grant, client))


def _verify_keyhouse_token(port: int, grant: str, client: Client) -> tuple[int, dict[str, str]]:
    """A real token, signed by a published key, for each request; the body length and headers."""
    published = PublishedKeys(port)
    lengths: set[int] = set()
    headers: dict[str, str] = {}
    for _ in range(3):
        status, headers, body = _post_token(port, grant, client)
        if status != 200:
            fail(f"Keyhouse answered {status} to {grant}: {body[:300]!r}")
        document = json.loads(body)
        token = document.get("access_token")
        if not isinstance(token, str) or document.get("identifier") != grant:
            fail(f"Keyhouse {grant} response has no token: {document}")
        _, claims = published.verify(
            token, require=["aud", "exp", "iat", "jti"], what=f"Keyhouse {grant} token"
        )
        if claims.get("client_id") != client.client_id or claims.get("grant_type") != grant:
            fail(f"Keyhouse {grant} token has unexpected claims: {claims}")
        lengths.add(len(body))
    if len(lengths) != 1:
        fail(f"Keyhouse {grant} bodies vary in length ({sorted(lengths)}); cannot match them")
    return lengths.pop(), headers


def _app_headers(headers: dict[str, str]) -> dict[str, str]:
    return {
        name: "0" * len(value) if name in PER_REQUEST_HEADERS else value
        for name, value in headers.items()
        if name not in SERVER_HEADERS
    }


def _verify_baseline(
    port: int, grant: str, client: Client, length: int, keyhouse_headers: dict[str, str]
) -> None:
    status, headers, body = _post_token(port, grant, client)
    if status != 200:
        fail(f"baseline answered {status} to {grant}: {body[:300]!r}")
    if len(body) != length:
        fail(f"baseline {grant} body is {len(body)} bytes, Keyhouse's {length}")
    for name in {*headers, *keyhouse_headers} - {"date"}:
        if name in PER_REQUEST_HEADERS:
            if len(headers.get(name, "")) != len(keyhouse_headers.get(name, "")):
                fail(f"baseline {name} differs in length from Keyhouse's")
        elif headers.get(name) != keyhouse_headers.get(name):
            fail(
                f"baseline {name}: {headers.get(name)!r}, Keyhouse: {keyhouse_headers.get(name)!r}"
            )


# --- load ---------------------------------------------------------------------------------


def _summaries(
    deployment: Deployment,
    runs: dict[tuple[str, str], list[WrkRun]],
    memory: dict[str, Memory],
) -> list[Summary]:
    rows: list[Summary] = []
    for grant in GRANTS:
        baseline_rps = statistics.median(run.rps for run in runs[("baseline", grant)])
        for target in ("baseline", "keyhouse"):
            rounds = runs[(target, grant)]
            rps = statistics.median(run.rps for run in rounds)
            ratio = rps / baseline_rps if target == "keyhouse" else None
            targeted = grant == TARGET_GRANT and deployment.workers == TARGET_WORKERS
            rows.append(
                Summary(
                    database=deployment.database,
                    workers=deployment.workers,
                    grant=grant,
                    target=target,
                    rounds=rounds,
                    rps=rps,
                    p50_us=statistics.median(run.p50_us for run in rounds),
                    p99_us=statistics.median(run.p99_us for run in rounds),
                    rss=memory[target],
                    ratio=ratio,
                    meets_target=ratio >= TARGET_RATIO if ratio is not None and targeted else None,
                )
            )
    return rows


def keyhouse_answers(port: int, client: Client) -> tuple[dict[str, int], dict[str, Any]]:
    """Each grant's body length and headers, from real tokens that verify."""
    lengths: dict[str, int] = {}
    headers: dict[str, dict[str, str]] = {}
    for grant in GRANTS:
        lengths[grant], headers[grant] = _verify_keyhouse_token(port, grant, client)
    return lengths, headers


def baseline_server(
    deployment: Deployment,
    config: Config,
    lengths: dict[str, int],
    keyhouse_headers: dict[str, Any],
    *,
    cpus: tuple[int, ...] = (),
) -> Server:
    """bench/baseline.py for beside Keyhouse, with its workers (on `cpus` only, if given), to
    answer each grant with Keyhouse's body length and headers; not yet started."""
    port = free_port()
    env = {name: value for name, value in os.environ.items() if not name.startswith("KEYHOUSE_")}
    env["BENCH_BODY_BYTES"] = json.dumps(lengths)
    extra_headers = [_app_headers(headers) for headers in keyhouse_headers.values()]
    if any(headers != extra_headers[0] for headers in extra_headers):
        fail(f"Keyhouse's headers differ between grants: {keyhouse_headers}")
    env["BENCH_HEADERS"] = json.dumps(extra_headers[0])
    argv = uvicorn_argv("bench.baseline:app", port, config, deployment.workers, factory=False)
    log_file = deployment.data_dir / f"baseline-{deployment.workers}w.log"
    return Server(
        "baseline", [*pinned(cpus), *argv], env, port, log_file, workers=deployment.workers
    )


def check_baseline(
    baseline: Server, client: Client, lengths: dict[str, int], keyhouse_headers: dict[str, Any]
) -> None:
    """The started baseline answers each grant with Keyhouse's body length and headers."""
    for grant in GRANTS:
        _verify_baseline(baseline.port, grant, client, lengths[grant], keyhouse_headers[grant])


def run(deployment: Deployment, config: Config) -> list[Summary]:
    """Starts the baseline beside Keyhouse, checks both, then the interleaved rounds."""
    where, client, keyhouse = deployment.label, deployment.client, deployment.keyhouse
    lengths, keyhouse_headers = keyhouse_answers(keyhouse.port, client)
    log(f"[{where}] keyhouse pid {keyhouse.pid} on :{keyhouse.port}; token bodies {lengths}")
    baseline = deployment.start(baseline_server(deployment, config, lengths, keyhouse_headers))
    check_baseline(baseline, client, lengths, keyhouse_headers)
    log(f"[{where}] baseline pid {baseline.pid} on :{baseline.port}; checks passed")

    targets = (baseline, keyhouse)  # this order in every round
    for grant in GRANTS:
        load = token_load(grant, client, lengths[grant], config.connections, config.threads)
        for server in targets:
            run_wrk(server, load, config.warmup, f"{server.name} {grant}")
    log(f"[{where}] warmed up ({config.warmup}s per target and grant)")

    runs: dict[tuple[str, str], list[WrkRun]] = {
        (server.name, grant): [] for server in targets for grant in GRANTS
    }
    for grant in GRANTS:
        load = token_load(grant, client, lengths[grant], config.connections, config.threads)
        for round_number in range(1, config.rounds + 1):
            for server in targets:
                result = run_wrk_balanced(server, load, config.duration, f"{server.name} {grant}")
                runs[(server.name, grant)].append(result)
                log(
                    f"[{where}] {grant:<18} round {round_number} {server.name:<8} "
                    f"{result.rps:9.1f} req/s  p50 {result.p50_us / 1000:6.2f} ms  "
                    f"p99 {result.p99_us / 1000:6.2f} ms"
                )
    memory = {server.name: server.memory() for server in targets}
    if config.profile:
        profiled = token_load(
            TARGET_GRANT, client, lengths[TARGET_GRANT], config.connections, config.threads
        )
        output = flame_graph_path(deployment, TARGET_GRANT)
        profile(
            keyhouse,
            output,
            config,
            lambda: run_wrk(keyhouse, profiled, config.duration, f"keyhouse {TARGET_GRANT}"),
        )
        log(f"[{where}] flame graph of Keyhouse written to {output.relative_to(ROOT)}")
    return _summaries(deployment, runs, memory)


# --- targets ------------------------------------------------------------------------------


def misses(rows: Sequence[Summary]) -> list[str]:
    return [
        f"{row.database}, {row.workers} worker: {row.grant} at {row.ratio:.2f}x the baseline, "
        f"not {TARGET_RATIO}x"
        for row in rows
        if row.meets_target is False
    ]
