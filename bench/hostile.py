"""Hostile input against `keyhouse serve`: what each shape of it costs a worker, and whether a
well-behaved client notices.

Each shape (`SHAPES`) is sent to each class of route (`ROUTES`): the token endpoint, a
protected /v2 read and list, a /v2 write, an unauthenticated document, and a path that does not
exist. Keyhouse serves with its access log on, as in production (the log's redaction was where
a path of `eyJ` took seconds). Three phases on one server:

1. a probe alone: token requests (`client_credentials`) one at a time on a kept-alive
   connection, for `--probe-seconds`; its p50 and p99;
2. the shapes alone, `--rounds` times each: per shape, the requests answered, the answers by
   status, the errors by class (reset, closed without an answer, timeout), and the worker's CPU
   time per request (from /proc, all its threads; the median round's);
3. the probe again while the shapes are sent in a loop: its p50 and p99 beside phase 1's.

Then one request with a 64 MiB header, as issue 20 sent it: its answer, and the worker's
resident memory before and after.

    .venv/bin/python bench/hostile.py [--rounds 5] [--probe-seconds 5] [--workers 1] \
        [--json results.json]

Exit status 0 when it ran (the figures say how it went), 1 when it could not run.
"""

import argparse
import http.client
import json
import select
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import processes
from harness import (
    HOST,
    TOKEN_PATH,
    BenchError,
    Client,
    Server,
    create_client,
    database_url,
    free_port,
    issue_token,
    keyhouse,
    keyhouse_env,
    log,
    request,
    token_form,
    venv_tool,
)

MIB = 1024 * 1024
TOKEN_LIKE = b"eyJ"  # base64url of `{"`: how every JWT starts
HUGE_HEADER_BYTES = 64 * MIB
REQUEST_TIMEOUT = 30.0  # a request that takes longer counts as a timeout


@dataclass(frozen=True, slots=True)
class Route:
    """A class of route, as a well-formed request to it."""

    name: str
    method: bytes
    path: bytes
    headers: tuple[tuple[bytes, bytes], ...] = ()
    body: bytes = b""


@dataclass(frozen=True, slots=True)
class Sent:
    method: bytes
    target: bytes
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes = b""

    def encoded(self) -> bytes:
        lines = [self.method + b" " + self.target + b" HTTP/1.1", b"Host: " + HOST.encode()]
        lines += [name + b": " + value for name, value in self.headers]
        lines.append(b"Content-Length: %d" % len(self.body))
        return b"\r\n".join([*lines, b"", self.body])


def _padded(prefix: bytes, piece: bytes, size: int) -> bytes:
    return prefix + piece * ((size - len(prefix)) // len(piece))


def _json(route: Route) -> tuple[tuple[bytes, bytes], ...]:
    kept = tuple(header for header in route.headers if header[0] != b"Content-Type")
    return (*kept, (b"Content-Type", b"application/json"))


# Each shape turns a well-formed request into a hostile one.
SHAPES: dict[str, Callable[[Route], Sent]] = {
    "token-like path, 8 KB": lambda r: Sent(
        r.method, _padded(r.path + b"/", TOKEN_LIKE, 8000), r.headers, r.body
    ),
    "token-like path, 64 KB": lambda r: Sent(
        r.method, _padded(r.path + b"/", TOKEN_LIKE, 65_000), r.headers, r.body
    ),
    "JWT-shaped query pairs, 8 KB": lambda r: Sent(
        r.method, _padded(r.path + b"?", b"access_token=eyJa.b.c&", 8000), r.headers, r.body
    ),
    "long header values, 24 KB": lambda r: Sent(
        r.method,
        r.path,
        (
            *r.headers,
            (b"X-Long", _padded(b"", TOKEN_LIKE, 20_000)),
            (b"Origin", _padded(b"https://", b"a", 2000)),
            (b"X-Request-Id", _padded(b"", b"eyJa.", 2000)),
        ),
        r.body,
    ),
    "one header of 64 KB": lambda r: Sent(
        r.method, r.path, (*r.headers, (b"X-Long", _padded(b"", TOKEN_LIKE, 65_000))), r.body
    ),
    "150 headers": lambda r: Sent(
        r.method, r.path, (*r.headers, *((b"X-H%d" % n, b"1") for n in range(150))), r.body
    ),
    "nested JSON, 2,000 levels": lambda r: Sent(r.method, r.path, _json(r), b"[" * 2000),
    "1,600 query parameters": lambda r: Sent(
        r.method, _padded(r.path + b"?", b"a=1&", 6400), r.headers, r.body
    ),
    "4,000 form fields": lambda r: Sent(
        r.method,
        r.path,
        (*r.headers, (b"Content-Type", b"application/x-www-form-urlencoded")),
        b"&".join([b"a=1"] * 4000),
    ),
}


@dataclass(slots=True)
class ShapeResult:
    shape: str
    requests: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    cpu_ms_per_request: float = 0.0
    slowest_ms: float = 0.0

    @property
    def answered(self) -> int:
        return sum(self.statuses.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "shape": self.shape,
            "requests": self.requests,
            "answered": self.answered,
            "statuses": dict(sorted(self.statuses.items())),
            "errors": dict(sorted(self.errors.items())),
            "worker_cpu_ms_per_request": round(self.cpu_ms_per_request, 2),
            "slowest_ms": round(self.slowest_ms, 1),
        }


def _status_of(answer: bytes) -> str | None:
    if not answer.startswith(b"HTTP/1.1 ") or b"\r\n" not in answer:
        return None
    return answer[9:12].decode("ascii", "replace")


def send(port: int, sent: Sent, timeout: float = REQUEST_TIMEOUT) -> str:
    """One request on a connection of its own: the status answered, or what went wrong
    (`reset`, `closed`: no answer, `timeout`). Sent in pieces, reading between them, so that an
    answer that comes before the request is all sent (a refusal) is read, not lost to a reset."""
    payload = sent.encoded()
    answer = b""
    deadline = time.monotonic() + timeout
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as connection:
            for start in range(0, len(payload), 256 * 1024):
                connection.sendall(payload[start : start + 256 * 1024])
                if select.select([connection], [], [], 0)[0]:
                    break  # answered already: the rest would only be dropped
            while (status := _status_of(answer)) is None:
                connection.settimeout(max(0.01, deadline - time.monotonic()))
                chunk = connection.recv(65_536)
                if not chunk:
                    return "closed"
                answer += chunk
            return status
    except (ConnectionResetError, BrokenPipeError):
        status = _status_of(answer)
        return status or "reset"
    except TimeoutError:
        return "timeout"


@dataclass(slots=True)
class Target:
    """The server under test and what the routes need: a product, and tokens."""

    server: Server
    client: Client
    routes: list[Route]

    @property
    def port(self) -> int:
        return self.server.port

    def cpu_seconds(self) -> float:
        return sum(self.server.cpu_ticks()) / processes.CLOCK_TICKS_PER_SECOND


def routes_for(port: int, client: Client) -> list[Route]:
    write_token = issue_token(port, "client_credentials", client)
    read_token = issue_token(port, "implicit", client)
    product = {
        "data": {
            "type": "product",
            "name": "Hostile kettle",
            "slug": "hostile-kettle",
            "sku": "HOSTILE-1",
            "manage_stock": False,
            "price": [{"amount": 100, "currency": "USD", "includes_tax": True}],
            "status": "live",
            "commodity_type": "physical",
        }
    }
    write = {"Authorization": f"Bearer {write_token}", "Content-Type": "application/json"}
    status, _, body = request(
        port, "POST", "/v2/products", json.dumps(product).encode(), headers=write
    )
    if status != 201:
        raise BenchError(f"could not create a product: {status} {body[:200]!r}")
    product_id = json.loads(body)["data"]["id"].encode()
    read = ((b"Authorization", b"Bearer " + read_token.encode()),)
    form = ((b"Content-Type", b"application/x-www-form-urlencoded"),)
    return [
        Route("token endpoint", b"POST", TOKEN_PATH.encode(), form, token_form("implicit", client)),
        Route("protected read", b"GET", b"/v2/products/" + product_id, read),
        Route("protected list", b"GET", b"/v2/products", read),
        Route(
            "/v2 write",
            b"POST",
            b"/v2/products",
            tuple((name.encode(), value.encode()) for name, value in write.items()),
            json.dumps(product).encode(),
        ),
        Route("unauthenticated", b"GET", b"/.well-known/jwks.json"),
        Route("no such path", b"GET", b"/nowhere"),
    ]


def run_shape(target: Target, shape: str, rounds: int) -> ShapeResult:
    """Each round sends the shape to every route; the CPU time per request is the median
    round's, so that the worker's own periodic work (the revocation purge, a garbage
    collection) landing in one round is not charged to the shape."""
    result = ShapeResult(shape)
    build = SHAPES[shape]
    per_request_ms = []
    for _ in range(rounds):
        before = target.cpu_seconds()
        for route in target.routes:
            started = time.perf_counter()
            answer = send(target.port, build(route))
            result.slowest_ms = max(result.slowest_ms, (time.perf_counter() - started) * 1000)
            result.requests += 1
            (result.statuses if answer.isdigit() else result.errors)[answer] += 1
        target.server.wait_idle(timeout=60)  # the work queued inside the worker is counted too
        per_request_ms.append((target.cpu_seconds() - before) * 1000 / len(target.routes))
    result.cpu_ms_per_request = statistics.median(per_request_ms)
    return result


@dataclass(slots=True)
class Probe:
    """Token requests, one at a time, on a kept-alive connection, until `stop` is set."""

    port: int
    body: bytes
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        connection = http.client.HTTPConnection(HOST, self.port, timeout=REQUEST_TIMEOUT)
        while not self.stop.is_set():
            started = time.perf_counter()
            try:
                connection.request("POST", TOKEN_PATH, body=self.body, headers=headers)
                response = connection.getresponse()
                response.read()
                ok = response.status == 200
            except (OSError, http.client.HTTPException):
                connection.close()
                ok = False
            if ok:
                self.latencies_ms.append((time.perf_counter() - started) * 1000)
            else:
                self.errors += 1
        connection.close()

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.latencies_ms) or [0.0]
        return {
            "requests": len(self.latencies_ms),
            "errors": self.errors,
            "p50_ms": round(statistics.median(ordered), 2),
            "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 2),
        }


def probe(
    target: Target, seconds: float, *, beside: Callable[[threading.Event], None] | None = None
) -> dict[str, Any]:
    """The probe for `seconds`; with `beside` running in another thread until it ends."""
    prober = Probe(target.port, token_form("client_credentials", target.client))
    threads = [threading.Thread(target=prober.run)]
    if beside is not None:
        threads.append(threading.Thread(target=beside, args=(prober.stop,)))
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    prober.stop.set()
    for thread in threads:
        thread.join(REQUEST_TIMEOUT * 2)
    return prober.summary()


def huge_header(target: Target) -> dict[str, Any]:
    """One request whose header is 64 MiB, as issue 20 sent: the answer, and how far the
    resident memory of the worker that read it rose above what it held before (its peak)."""
    pids = target.server.worker_pids()
    for pid in pids:
        processes.reset_peak_rss(pid)
    before = [processes.rss_kib(pid) for pid in pids]
    sent = Sent(b"GET", b"/healthz", ((b"X-Huge", b"a" * HUGE_HEADER_BYTES),))
    answer = send(target.port, sent)
    target.server.wait_idle(timeout=60)
    peaks = [processes.peak_rss_kib(pid) for pid in pids]
    growth = max(peak - then for peak, then in zip(peaks, before, strict=True)) / 1024
    return {"answer": answer, "peak_rss_growth_mib": round(growth, 1)}


def measure(
    target: Target, rounds: int, probe_seconds: float, shapes: Sequence[str]
) -> dict[str, Any]:
    workers_before = target.server.worker_pids()
    log("probe alone")
    alone = probe(target, probe_seconds)
    results = []
    for shape in shapes:
        log(f"shape: {shape}")
        results.append(run_shape(target, shape, rounds).as_dict())
    sent_during = Counter[str]()

    def hostile_loop(stop: threading.Event) -> None:
        while not stop.is_set():
            for shape in shapes:
                for route in target.routes:
                    if stop.is_set():
                        return
                    sent_during[send(target.port, SHAPES[shape](route))] += 1

    log("probe while the shapes are sent")
    during = probe(target, probe_seconds, beside=hostile_loop)
    return {
        "shapes": results,
        "probe": {"alone": alone, "during": during, "hostile_answers_during": dict(sent_during)},
        "huge_header": huge_header(target),
        # A worker blocked past Uvicorn's health check is killed and replaced (issue 20).
        "workers_replaced": len(set(workers_before) - set(target.server.worker_pids())),
    }


def run(
    *, rounds: int, probe_seconds: float, workers: int = 1, shapes: Sequence[str] = tuple(SHAPES)
) -> dict[str, Any]:
    """Starts Keyhouse (SQLite, access log on) in a temporary directory, measures, stops it."""
    with tempfile.TemporaryDirectory(prefix="keyhouse-hostile-") as temporary:
        data_dir = Path(temporary)
        env = keyhouse_env(data_dir, database_url("sqlite", data_dir, ""))
        keyhouse(["db", "upgrade"], env)
        client = create_client(env)
        port = free_port()
        argv = [venv_tool("keyhouse"), "serve", "--host", HOST, "--port", str(port)]
        argv += ["--workers", str(workers)]  # the access log on, as in production
        server = Server("keyhouse", argv, env, port, data_dir / "keyhouse.log", workers=workers)
        try:
            server.start()
            server.wait_ready()
            target = Target(server, client, routes_for(port, client))
            return measure(target, rounds, probe_seconds, shapes)
        finally:
            server.stop()


def report(results: dict[str, Any]) -> str:
    """The figures as Markdown."""
    lines = [
        "| shape | requests | answered | answers | errors | worker CPU ms/request | slowest ms |",
        "| --- | ---: | ---: | --- | --- | ---: | ---: |",
    ]
    for row in results["shapes"]:
        answers = ", ".join(f"{count} x {status}" for status, count in row["statuses"].items())
        errors = ", ".join(f"{count} x {kind}" for kind, count in row["errors"].items()) or "none"
        lines.append(
            f"| {row['shape']} | {row['requests']} | {row['answered']} | {answers} | {errors} "
            f"| {row['worker_cpu_ms_per_request']:.2f} | {row['slowest_ms']:.0f} |"
        )
    alone, during = results["probe"]["alone"], results["probe"]["during"]
    lines += [
        "",
        "| probe (token requests) | requests | errors | p50 ms | p99 ms |",
        "| --- | ---: | ---: | ---: | ---: |",
        *(
            f"| {name} | {p['requests']} | {p['errors']} | {p['p50_ms']:.1f} | {p['p99_ms']:.1f} |"
            for name, p in (("alone", alone), ("during the shapes", during))
        ),
        "",
        f"64 MiB header: answered {results['huge_header']['answer']}, worker's peak RSS "
        f"{results['huge_header']['peak_rss_growth_mib']:+.1f} MiB. "
        f"Workers replaced: {results['workers_replaced']}.",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="each shape to each route, times")
    parser.add_argument("--probe-seconds", type=float, default=5.0, help="each probe phase")
    parser.add_argument("--workers", type=int, default=1)
    # Names hold commas ("1,600 query parameters"): they are separated by semicolons.
    parser.add_argument("--shapes", help="names of SHAPES separated by ';' (default: all)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    shapes = [shape.strip() for shape in args.shapes.split(";")] if args.shapes else list(SHAPES)
    unknown = [shape for shape in shapes if shape not in SHAPES]
    if unknown:
        parser.error(f"unknown shapes: {unknown}; known: {list(SHAPES)}")
    try:
        results = run(
            rounds=args.rounds,
            probe_seconds=args.probe_seconds,
            workers=args.workers,
            shapes=shapes,
        )
    except BenchError as error:
        log(f"error: {error}")
        return 1
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    print(report(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
