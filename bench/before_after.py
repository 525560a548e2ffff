"""Keyhouse against an earlier Keyhouse, in the same run: token issuance and protected reads.

The earlier one is an export of its `app/` (the migrations come from this checkout), served by
the same virtualenv with `PYTHONPATH` pointing at it; each Keyhouse has its own SQLite data
directory, client and product, and serves with one worker and no access log, as bench/run.py
serves it. wrk's rounds alternate between the two, so what the machine's other load does hits
both alike; medians of the rounds, and the CPU time the worker spent per request.

    git archive <commit> app | tar -x -C /tmp/keyhouse-before
    .venv/bin/python bench/before_after.py --before /tmp/keyhouse-before [--rounds 5] \
        [--duration 5] [--connections 32]

Exit status 0 when it ran, 1 when it could not.
"""

import argparse
import json
import statistics
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from harness import (
    REQUEST_LUA,
    BenchError,
    Client,
    Load,
    Server,
    WrkRun,
    create_client,
    database_url,
    free_port,
    issue_token,
    keyhouse,
    keyhouse_argv,
    keyhouse_env,
    log,
    request,
    run_wrk_balanced,
    token_form,
    token_load,
)

PRODUCT = {
    "data": {
        "type": "product",
        "name": "Kettle",
        "slug": "kettle",
        "sku": "KETTLE-1",
        "manage_stock": False,
        "price": [{"amount": 4999, "currency": "USD", "includes_tax": True}],
        "status": "live",
        "commodity_type": "physical",
    }
}


@dataclass(slots=True)
class Side:
    name: str
    server: Server
    client: Client
    loads: dict[str, Load]


def _expect_bytes(
    port: int, method: str, path: str, body: bytes | None, headers: dict[str, str]
) -> int:
    status, _, answer = request(port, method, path, body, headers=headers)
    if status != 200:
        raise BenchError(f"{method} {path} answered {status}: {answer[:200]!r}")
    return len(answer)


def _loads(port: int, client: Client, connections: int) -> dict[str, Load]:
    write = {"Authorization": f"Bearer {issue_token(port, 'client_credentials', client)}"}
    status, _, body = request(
        port,
        "POST",
        "/v2/products",
        json.dumps(PRODUCT).encode(),
        headers={**write, "Content-Type": "application/json"},
    )
    if status != 201:
        raise BenchError(f"could not create a product: {status} {body[:200]!r}")
    path = f"/v2/products/{json.loads(body)['data']['id']}"
    read = f"Bearer {issue_token(port, 'implicit', client)}"
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    loads = {
        grant: token_load(
            grant,
            client,
            _expect_bytes(port, "POST", "/oauth/access_token", token_form(grant, client), form),
            connections,
        )
        for grant in ("client_credentials", "implicit")
    }
    for name, target in (("product", path), ("products", "/v2/products?page[limit]=25")):
        env = {
            "BENCH_PATH": target,
            "BENCH_AUTHORIZATION": read,
            "BENCH_EXPECT_BYTES": str(
                _expect_bytes(port, "GET", target, None, {"Authorization": read})
            ),
        }
        loads[name] = Load(REQUEST_LUA, env, connections)
    return loads


def start(name: str, data_dir: Path, pythonpath: str | None, connections: int) -> Side:
    env = keyhouse_env(data_dir, database_url("sqlite", data_dir, ""))
    env.pop("PYTHONPATH", None)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    keyhouse(["db", "upgrade"], env)
    client = create_client(env)
    port = free_port()
    server = Server(name, keyhouse_argv(port, 1), env, port, data_dir / "keyhouse.log")
    server.start()
    server.wait_ready()
    return Side(name, server, client, _loads(port, client, connections))


def measure(
    sides: Sequence[Side], rounds: int, duration: int, warmup: int
) -> dict[str, dict[str, list[WrkRun]]]:
    runs: dict[str, dict[str, list[WrkRun]]] = {side.name: {} for side in sides}
    for load in sides[0].loads:
        for side in sides:
            run_wrk_balanced(side.server, side.loads[load], warmup, f"{side.name} {load} warm-up")
        for round_ in range(rounds):
            for side in sides if round_ % 2 == 0 else reversed(sides):
                run = run_wrk_balanced(
                    side.server, side.loads[load], duration, f"{side.name} {load}"
                )
                runs[side.name].setdefault(load, []).append(run)
                log(f"{side.name:6} {load:18} {run.describe()}  {run.cpu_us_per_request} µs CPU")
    return runs


def report(runs: dict[str, dict[str, list[WrkRun]]]) -> str:
    lines = [
        "| request | req/s before | req/s after | after/before | p99 ms before | p99 ms after "
        "| CPU µs before | CPU µs after |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for load in runs["before"]:
        before, after = runs["before"][load], runs["after"][load]

        def median(values: list[float]) -> float:
            return statistics.median(values)

        rps = (median([r.rps for r in before]), median([r.rps for r in after]))
        p99 = (median([r.p99_us / 1000 for r in before]), median([r.p99_us / 1000 for r in after]))
        cpu = (
            median([r.cpu_us_per_request or 0.0 for r in before]),
            median([r.cpu_us_per_request or 0.0 for r in after]),
        )
        lines.append(
            f"| {load} | {rps[0]:.0f} | {rps[1]:.0f} | {rps[1] / rps[0]:.2f} | {p99[0]:.1f} "
            f"| {p99[1]:.1f} | {cpu[0]:.0f} | {cpu[1]:.0f} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", type=Path, required=True, help="a directory holding app/")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args(argv)
    if not (args.before / "app" / "main.py").is_file():
        parser.error(f"{args.before} holds no app/main.py")
    with tempfile.TemporaryDirectory(prefix="keyhouse-ab-") as temporary:
        sides: list[Side] = []
        try:
            for name, pythonpath in (("before", str(args.before.resolve())), ("after", None)):
                data_dir = Path(temporary) / name
                data_dir.mkdir()
                sides.append(start(name, data_dir, pythonpath, args.connections))
            runs = measure(sides, args.rounds, args.duration, args.warmup)
        except BenchError as error:
            log(f"error: {error}")
            return 1
        finally:
            for side in sides:
                side.server.stop()
    print(report(runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
