"""Scenario `issuance`: token requests, Keyhouse against the bare app of bench/baseline.py.

`POST /oauth/access_token` with `client_credentials` (client_secret_post) and `implicit`;
target: client_credentials at 0.8x the baseline's requests/s or better.
"""

import json
import os
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from harness import (
    HOST,
    RESULTS_DIR,
    ROOT,
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
    request,
    run_wrk,
    token_form,
    token_load,
)
from profiling import profile

GRANTS = ("client_credentials", "implicit")
TARGET_RATIO = 0.8
TARGET_GRANT = "client_credentials"
# Written by Uvicorn and Starlette for both apps; Keyhouse's other headers are copied to the
# baseline (BENCH_HEADERS), so both send the same bytes.
SERVER_HEADERS = frozenset({"date", "server", "content-length", "content-type"})
# Different on every response: the baseline sends a constant of the same length.
PER_REQUEST_HEADERS = frozenset({"x-request-id"})


@dataclass(frozen=True, slots=True)
class Summary:
    """The rounds of one target and grant on one database, and their medians."""

    database: str
    grant: str
    target: str
    rounds: list[WrkRun]
    rps: float
    p50_us: float
    p99_us: float
    ratio: float | None  # Keyhouse rps / baseline rps; None on the baseline's rows


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


def _summaries(database: str, runs: dict[tuple[str, str], list[WrkRun]]) -> list[Summary]:
    rows: list[Summary] = []
    for grant in GRANTS:
        baseline_rps = statistics.median(run.rps for run in runs[("baseline", grant)])
        for target in ("baseline", "keyhouse"):
            rounds = runs[(target, grant)]
            rps = statistics.median(run.rps for run in rounds)
            rows.append(
                Summary(
                    database=database,
                    grant=grant,
                    target=target,
                    rounds=rounds,
                    rps=rps,
                    p50_us=statistics.median(run.p50_us for run in rounds),
                    p99_us=statistics.median(run.p99_us for run in rounds),
                    ratio=rps / baseline_rps if target == "keyhouse" else None,
                )
            )
    return rows


def run(deployment: Deployment, config: Config) -> list[Summary]:
    """Starts the baseline beside Keyhouse, checks both, then the interleaved rounds."""
    database, client, keyhouse = deployment.database, deployment.client, deployment.keyhouse
    lengths: dict[str, int] = {}
    keyhouse_headers: dict[str, dict[str, str]] = {}
    for grant in GRANTS:
        lengths[grant], keyhouse_headers[grant] = _verify_keyhouse_token(
            keyhouse.port, grant, client
        )
    log(f"[{database}] keyhouse pid {keyhouse.pid} on :{keyhouse.port}; token bodies {lengths}")

    baseline_port = free_port()
    baseline_env = {
        name: value for name, value in os.environ.items() if not name.startswith("KEYHOUSE_")
    }
    baseline_env["BENCH_BODY_BYTES"] = json.dumps(lengths)
    extra_headers = [_app_headers(headers) for headers in keyhouse_headers.values()]
    if any(headers != extra_headers[0] for headers in extra_headers):
        fail(f"Keyhouse's headers differ between grants: {keyhouse_headers}")
    baseline_env["BENCH_HEADERS"] = json.dumps(extra_headers[0])
    uvicorn_argv = [sys.executable, "-m", "uvicorn", "bench.baseline:app", "--host", HOST]
    baseline = deployment.start(
        Server(
            "baseline",
            [
                *uvicorn_argv,
                *("--port", str(baseline_port), "--workers", "1", "--no-access-log"),
                *("--loop", config.loop, "--http", config.http, "--proxy-headers"),
            ],
            baseline_env,
            baseline_port,
            deployment.data_dir / "baseline.log",
        )
    )
    for grant in GRANTS:
        _verify_baseline(baseline_port, grant, client, lengths[grant], keyhouse_headers[grant])
    log(f"[{database}] baseline pid {baseline.pid} on :{baseline_port}; checks passed")

    targets = (baseline, keyhouse)  # this order in every round
    for grant in GRANTS:
        load = token_load(grant, client, lengths[grant], config.connections, config.threads)
        for server in targets:
            run_wrk(server, load, config.warmup, f"{server.name} {grant}")
    log(f"[{database}] warmed up ({config.warmup}s per target and grant)")

    runs: dict[tuple[str, str], list[WrkRun]] = {
        (server.name, grant): [] for server in targets for grant in GRANTS
    }
    for grant in GRANTS:
        load = token_load(grant, client, lengths[grant], config.connections, config.threads)
        for round_number in range(1, config.rounds + 1):
            for server in targets:
                result = run_wrk(server, load, config.duration, f"{server.name} {grant}")
                runs[(server.name, grant)].append(result)
                log(
                    f"[{database}] {grant:<18} round {round_number} {server.name:<8} "
                    f"{result.rps:9.1f} req/s  p50 {result.p50_us / 1000:6.2f} ms  "
                    f"p99 {result.p99_us / 1000:6.2f} ms"
                )
    if config.profile:
        profiled = token_load(
            TARGET_GRANT, client, lengths[TARGET_GRANT], config.connections, config.threads
        )
        output = RESULTS_DIR / f"keyhouse-{database}-{TARGET_GRANT}.svg"
        profile(
            keyhouse,
            output,
            config,
            lambda: run_wrk(keyhouse, profiled, config.duration, f"keyhouse {TARGET_GRANT}"),
        )
        log(f"[{database}] flame graph of Keyhouse written to {output.relative_to(ROOT)}")
    return _summaries(database, runs)


# --- report -------------------------------------------------------------------------------


def format_table(rows: Sequence[Summary]) -> str:
    header = (
        f"{'database':<11} {'grant':<19} {'target':<9} {'req/s':>9} "
        f"{'p50 ms':>7} {'p99 ms':>7} {'ratio':>6}"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        ratio = ""
        if row.ratio is not None:
            ratio = f"{row.ratio:6.2f}"
            if row.grant == TARGET_GRANT:
                ratio += "  ok" if row.ratio >= TARGET_RATIO else f"  below {TARGET_RATIO}"
        lines.append(
            f"{row.database:<11} {row.grant:<19} {row.target:<9} {row.rps:9.1f} "
            f"{row.p50_us / 1000:7.2f} {row.p99_us / 1000:7.2f} {ratio:>6}"
        )
    return "\n".join(lines)


def misses(rows: Sequence[Summary]) -> list[str]:
    return [
        f"{row.database}: {row.grant} at {row.ratio:.2f}x the baseline, not {TARGET_RATIO}x"
        for row in rows
        if row.grant == TARGET_GRANT and row.ratio is not None and row.ratio < TARGET_RATIO
    ]
