"""What every scenario of the benchmark shares: servers, Keyhouse setup, wrk runs, medians.

Imported by `bench/run.py` and the scenario modules beside it (`issuance.py`, `protected.py`,
`logins.py`) as a sibling module: `python bench/run.py` puts `bench/` first on `sys.path`.
"""

import asyncio
import contextlib
import dataclasses
import http.client
import json
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlencode

import jwt
import processes
from processes import Memory

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
REQUEST_LUA = BENCH / "request.lua"
RESULTS_DIR = BENCH / "results"
RESULTS_FILE = RESULTS_DIR / "latest.json"
HOST = "127.0.0.1"  # loopback only
TOKEN_PATH = "/oauth/access_token"  # noqa: S105 (a path)
POSTGRES_URL = "postgresql+asyncpg://root@127.0.0.1:5432/keyhouse_bench"
# The only PostgreSQL databases this script will drop: `keyhouse_bench`, or a name starting so
# (`keyhouse_bench_b`), for a second run beside the first. A plain identifier: it is quoted
# into DROP and CREATE.
BENCH_DATABASE = re.compile(r"keyhouse_bench[a-z0-9_]*")
STARTUP_SECONDS = 60.0
STOP_SECONDS = 10.0
WRK_TIMEOUT_SECONDS = 5  # wrk's own per-request timeout (`--timeout`); a timeout fails a run
WRK_GRACE_SECONDS = 30  # beyond its duration, how long a wrk process may take before we kill it
TARGET_WORKERS = 1  # every target is defined for one worker; with more, the ratios are reported


class BenchError(Exception):
    """The benchmark cannot go on, or its results cannot be trusted."""


def fail(message: str) -> NoReturn:
    raise BenchError(message)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass(frozen=True, slots=True)
class Client:
    client_id: str
    client_secret: str


@dataclass(frozen=True, slots=True)
class Config:
    """How to load, and what to run: from the command line."""

    duration: int
    warmup: int
    read_duration: int  # seconds per measured run of the protected reads (9 targets each round)
    connections: int
    threads: int
    rounds: int
    postgres_url: str
    loop: str  # Uvicorn's event loop and HTTP implementation, the same for every server
    http: str
    profile: bool
    scenarios: tuple[str, ...] = ("issuance", "protected", "logins")
    probe_connections: int = 4  # the implicit probe of the logins scenario (`wrk -c`)
    bypass: str = "resolved"  # how bench/unvalidated.py applies its override (see there)
    workers: tuple[int, ...] = (1,)  # worker counts, each in turn, the same for every server
    databases: tuple[str, ...] = ("sqlite",)  # each in turn, at each worker count
    sizing_duration: int = 5  # seconds per measured run of the sizing scenario's rows
    sizing_rounds: int = 2  # its rounds over every row


# --- wrk ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WrkRun:
    """One wrk run, from the `BENCH_RESULT` line of request.lua."""

    requests: int
    seconds: float
    rps: float
    p50_us: int
    p90_us: int
    p99_us: int
    max_us: int
    # With several workers: the share of the server's CPU time that its busiest worker spent
    # during the run (0.5 is an even split between two); None with one worker.
    busiest_worker_share: float | None = None
    # The CPU time (user and system) all of the server's workers spent during the run, per
    # request completed, in µs: what the machine's other load does not inflate much.
    cpu_us_per_request: float | None = None
    # The share of the time of the CPUs the server may run on that other processes than the
    # server (and wrk, where it shares them) spent during the run: the machine's other load.
    others_cpu_share: float | None = None

    @classmethod
    def parse(cls, output: str, *, where: str) -> "WrkRun":
        lines = [line for line in output.splitlines() if line.startswith("BENCH_RESULT ")]
        if len(lines) != 1:
            fail(f"{where}: no BENCH_RESULT line from wrk:\n{output}")
        data: dict[str, Any] = json.loads(lines[0].removeprefix("BENCH_RESULT "))
        errors: dict[str, int] = data["errors"]
        problems = [f"{name} errors: {count}" for name, count in errors.items() if count]
        if data.get("unexpected_status"):
            problems.append(
                f"{data['unexpected_status']} responses not {data['expect_status']} "
                f"(first: {data['first_bad_status']})"
            )
        if data["wrong_length"]:
            problems.append(f"{data['wrong_length']} responses with an unexpected body length")
        if data["requests"] == 0:
            problems.append("no requests completed")
        if problems:
            fail(f"{where}: " + "; ".join(problems))
        latency: dict[str, float] = data["latency_us"]
        return cls(
            requests=data["requests"],
            seconds=data["seconds"],
            rps=data["rps"],
            p50_us=int(latency["p50"]),
            p90_us=int(latency["p90"]),
            p99_us=int(latency["p99"]),
            max_us=int(latency["max"]),
        )

    def describe(self) -> str:
        return (
            f"{self.rps:9.1f} req/s  p50 {self.p50_us / 1000:7.2f} ms  "
            f"p99 {self.p99_us / 1000:7.2f} ms"
        )


@dataclass(frozen=True, slots=True)
class Load:
    """What one wrk process sends: its Lua script, the script's settings, connections."""

    script: Path
    env: Mapping[str, str]
    connections: int
    threads: int = 1
    timeout_seconds: int = WRK_TIMEOUT_SECONDS
    cpus: tuple[int, ...] = ()  # the CPUs wrk may run on (`taskset -c`); () for any


def pinned(cpus: Sequence[int]) -> list[str]:
    """The prefix that runs a command on the CPUs `cpus` only (`taskset -c`), none for any."""
    if not cpus:
        return []
    found = shutil.which("taskset")
    if found is None:
        fail("taskset (util-linux) is not installed")
    return [found, "-c", ",".join(map(str, cpus))]


def wrk_binary() -> str:
    found = shutil.which("wrk")
    if found is None:
        fail("wrk is not installed")
    return found


class Wrk:
    """One wrk process, started now and collected with `result()`; always bounded in time."""

    def __init__(self, server: "Server", load: Load, seconds: int, where: str) -> None:
        self.server = server
        self.seconds = seconds
        self.where = where
        argv = [
            *pinned(load.cpus),
            wrk_binary(),
            f"-t{load.threads}",
            f"-c{load.connections}",
            f"-d{seconds}s",
            "--timeout",
            f"{load.timeout_seconds}s",
            "-s",
            str(load.script),
            f"http://{HOST}:{server.port}",
        ]
        self.process = subprocess.Popen(
            argv,
            env={**os.environ, **load.env},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def result(self) -> WrkRun:
        try:
            stdout, stderr = self.process.communicate(timeout=self.seconds + WRK_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            self.kill()
            fail(f"{self.where}: wrk did not finish within {self.seconds + WRK_GRACE_SECONDS}s")
        if self.process.returncode != 0:
            fail(f"{self.where}: wrk exited {self.process.returncode}:\n{stdout}\n{stderr}")
        self.server.check_alive()
        return WrkRun.parse(stdout, where=self.where)

    def kill(self) -> None:
        """Stops this wrk process (ours, by its pid) if it still runs."""
        if self.process.poll() is None:
            self.process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.communicate(timeout=STOP_SECONDS)


def run_wrk(server: "Server", load: Load, seconds: int, where: str) -> WrkRun:
    wrk = Wrk(server, load, seconds, where)
    try:
        return wrk.result()
    finally:
        wrk.kill()


# Uvicorn's workers share one listening socket, and the worker whose event loop wakes first
# accepts every connection pending (uvloop, like asyncio, accepts in a loop): so one worker may
# get most or all of wrk's 32 keep-alive connections, and the run then measures one busy worker
# beside an idle one (seen here: the same baseline at 12,800 and 18,900 req/s). So a run whose
# busiest worker spent more than this share of the server's CPU is measured again, and the most
# even of the attempts is kept. (wrk shares a core with one of two workers: 60/40 is normal.)
MAX_BUSIEST_SHARE = 0.7
BALANCE_ATTEMPTS = 4


def run_wrk_balanced(server: "Server", load: Load, seconds: int, where: str) -> WrkRun:
    """`run_wrk`, with the CPU time the server's workers spent per request; with several
    workers, again while one worker did most of the work (at most `BALANCE_ATTEMPTS` runs, the
    most even one kept), with the busiest worker's share recorded."""
    attempts: list[WrkRun] = []
    cpus = os.sched_getaffinity(server.pid)
    wrk_beside = not load.cpus or not cpus.isdisjoint(load.cpus)  # wrk on the server's CPUs
    for _ in range(BALANCE_ATTEMPTS):
        before, cores, children = server.cpu_ticks(), processes.core_ticks_of(cpus), _reaped()
        result = run_wrk(server, load, seconds, where)
        spent = [after - then for then, after in zip(before, server.cpu_ticks(), strict=True)]
        ours = sum(spent) + (_reaped() - children if wrk_beside else 0)
        others = processes.others_share(cores, processes.core_ticks_of(cpus), ours)
        cpu_us = sum(spent) / processes.CLOCK_TICKS_PER_SECOND * 1e6 / result.requests
        result = dataclasses.replace(
            result, cpu_us_per_request=round(cpu_us, 1), others_cpu_share=round(others, 3)
        )
        if server.workers == 1:
            return result
        share = processes.busiest_share(spent)
        attempts.append(dataclasses.replace(result, busiest_worker_share=round(share, 2)))
        if share <= MAX_BUSIEST_SHARE:
            break
        log(f"{where}: one worker did {share:.0%} of the work; measuring again")
    return min(attempts, key=lambda attempt: attempt.busiest_worker_share or 0.0)


def _reaped() -> float:
    """The CPU time of the child processes this one has waited for (wrk runs), in ticks."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (usage.ru_utime + usage.ru_stime) * processes.CLOCK_TICKS_PER_SECOND


# --- servers ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def request(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    *,
    headers: Mapping[str, str] | None = None,
    timeout: float = 5.0,
) -> tuple[int, dict[str, str], bytes]:
    """One HTTP request over loopback: status, lower-cased headers, body."""
    sent = dict(headers or {})
    if body is not None and not any(name.lower() == "content-type" for name in sent):
        sent["Content-Type"] = "application/x-www-form-urlencoded"
    connection = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers=sent)
        response = connection.getresponse()
        payload = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, payload
    finally:
        connection.close()


def send_json(port: int, method: str, path: str, body: Any, headers: Mapping[str, str]) -> Any:
    """A JSON request as a client of the API sends it; its JSON answer, or `fail` unless 200
    or 201."""
    sent = {**headers, "Content-Type": "application/json", "Accept": "application/json"}
    status, _, answer = request(port, method, path, json.dumps(body).encode(), headers=sent)
    if status not in (200, 201):
        fail(f"Keyhouse answered {status} to {method} {path}: {answer[:300]!r}")
    return json.loads(answer)


def one_length(what: str, bodies: Iterable[bytes]) -> int:
    """The one length of `bodies` (answers to the same request, each checked), or `fail`: wrk
    checks every answer of a run against it."""
    lengths = {len(body) for body in bodies}
    if len(lengths) != 1:
        fail(f"{what} bodies vary in length ({sorted(lengths)})")
    return lengths.pop()


def get_json(port: int, path: str) -> Any:
    status, _, body = request(port, "GET", path)
    if status != 200:
        fail(f"answered {status} to GET {path}")
    return json.loads(body)


class PublishedKeys:
    """Keyhouse's issuer and JWKS, read once, to check that a token really is Keyhouse's."""

    def __init__(self, port: int) -> None:
        self.issuer: str = get_json(port, "/.well-known/oauth-authorization-server")["issuer"]
        self._keys = jwt.PyJWKSet.from_dict(get_json(port, "/.well-known/jwks.json"))

    def verify(self, token: str, *, require: list[str], what: str) -> tuple[dict[str, Any], Any]:
        """The token's header and claims, or `fail` naming `what` did not verify."""
        try:
            header = jwt.get_unverified_header(token)
            claims = jwt.decode(
                token,
                self._keys[header["kid"]].key,
                algorithms=[header["alg"]],
                issuer=self.issuer,
                options={"verify_aud": False, "require": require},
            )
        except (jwt.PyJWTError, KeyError) as error:
            fail(f"{what} does not verify: {error!r}")
        return header, claims


class Server:
    """A server process in its own session, so a Ctrl-C reaches us first and we stop it.

    `workers` is how many worker processes its command line asks for.
    """

    def __init__(
        self,
        name: str,
        argv: list[str],
        env: dict[str, str],
        port: int,
        log: Path,
        *,
        workers: int = 1,
    ):
        self.name = name
        self.argv = argv
        self.env = env
        self.port = port
        self.log = log
        self.workers = workers
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> None:
        with self.log.open("wb") as log_file:
            self.process = subprocess.Popen(
                self.argv,
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_ready(self) -> None:
        """Until the server answers HTTP at all (any status), or fail with its log."""
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                fail(f"{self.name} exited during startup:\n{self.log_tail()}")
            with contextlib.suppress(OSError):
                request(self.port, "GET", "/", timeout=1.0)
                return
            time.sleep(0.1)
        fail(f"{self.name} did not answer within {STARTUP_SECONDS:.0f}s:\n{self.log_tail()}")

    def check_alive(self) -> None:
        if self.process is None or self.process.poll() is not None:
            fail(f"{self.name} has exited:\n{self.log_tail()}")

    def worker_pids(self) -> list[int]:
        self.check_alive()
        pids = processes.worker_pids(self.pid, self.workers)
        if len(pids) != self.workers:
            fail(f"{self.name} runs {len(pids)} worker processes, not {self.workers}: {pids}")
        return pids

    def cpu_ticks(self) -> list[int]:
        """Each worker's CPU time so far, in clock ticks."""
        try:
            return [processes.cpu_ticks_of(pid) for pid in self.worker_pids()]
        except (OSError, ValueError) as error:
            fail(f"{self.name}: cannot read its workers' CPU time: {error}")

    def memory(self) -> Memory:
        """The resident memory of each worker now."""
        try:
            return Memory.of([processes.rss_kib(pid) for pid in self.worker_pids()])
        except (OSError, ValueError) as error:
            fail(f"{self.name}: cannot read its workers' memory: {error}")

    def wait_idle(self, timeout: float) -> None:
        """Until every worker is idle (work queued inside it done), or fail after `timeout`."""
        try:
            idle = processes.wait_idle(self.worker_pids(), timeout)
        except OSError as error:
            fail(f"{self.name}: cannot read its workers' CPU time: {error}")
        if not idle:
            fail(f"{self.name}: its workers were still busy {timeout:.0f}s after the load")

    def log_tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return "(no log)"

    def stop(self) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        # The group is the one start_new_session made for this server (its pid).
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(STOP_SECONDS)


def venv_tool(name: str) -> str:
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        fail(f"{name} not found beside {sys.executable} or on PATH")
    return found


def uvicorn_argv(
    app: str, port: int, config: Config, workers: int, *, factory: bool = True
) -> list[str]:
    """A bench app on the Uvicorn settings `keyhouse serve --workers N --no-access-log` uses."""
    return [
        *(sys.executable, "-m", "uvicorn", app, *(["--factory"] if factory else [])),
        *("--host", HOST, "--port", str(port), "--workers", str(workers), "--no-access-log"),
        *("--loop", config.loop, "--http", config.http, "--proxy-headers"),
    ]


def keyhouse_argv(port: int, workers: int) -> list[str]:
    return [
        *(venv_tool("keyhouse"), "serve", "--host", HOST, "--port", str(port)),
        *("--workers", str(workers), "--no-access-log"),
    ]


# --- Keyhouse setup -----------------------------------------------------------------------


def keyhouse_env(data_dir: Path, database_url: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("KEYHOUSE_")}
    env["KEYHOUSE_DATA_DIR"] = str(data_dir)
    env["KEYHOUSE_DATABASE_URL"] = database_url
    # wrk sends everything from one address and one client: limits too high to reach, so the
    # limiter still counts every request (its cost is measured) but never refuses one.
    for limit in ("TOKEN", "LOGIN"):
        for per in ("ADDRESS", "CLIENT"):
            env[f"KEYHOUSE_{limit}_RATE_LIMIT_PER_{per}"] = "1000000000/minute"
    # The logins scenario keeps 32 logins of one shopper in flight; the lockout counts each
    # before its hash and would refuse all but 5 of them.
    env["KEYHOUSE_LOCKOUT_PAIR_FAILURES"] = "1000000000"
    return env


def keyhouse(args: Sequence[str], env: dict[str, str], stdin: str | None = None) -> str:
    argv = [venv_tool("keyhouse"), *args]
    done = subprocess.run(
        argv, cwd=ROOT, env=env, input=stdin, capture_output=True, text=True, timeout=120
    )
    if done.returncode != 0:
        fail(f"`keyhouse {' '.join(args)}` failed ({done.returncode}):\n{done.stderr}")
    return done.stdout


async def _recreate_postgres_database(url: str) -> None:
    import asyncpg  # type: ignore[import-untyped]
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    name = parsed.database or ""
    if not BENCH_DATABASE.fullmatch(name):
        fail(f"refusing to drop {name!r}: only keyhouse_bench and keyhouse_bench_* are the bench's")
    connection = await asyncpg.connect(
        host=parsed.host,
        port=parsed.port or 5432,
        user=parsed.username,
        password=parsed.password,
        database="postgres",
    )
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()


def database_url(database: str, data_dir: Path, postgres_url: str) -> str:
    if database == "sqlite":
        return f"sqlite+aiosqlite:///{data_dir / 'keyhouse.db'}"
    asyncio.run(_recreate_postgres_database(postgres_url))
    return postgres_url


def create_client(env: dict[str, str]) -> Client:
    document = json.loads(keyhouse(["clients", "create", "--name", "bench", "--json"], env))
    if not document.get("client_secret"):
        fail(f"`keyhouse clients create` gave no secret: {document}")
    return Client(client_id=document["client_id"], client_secret=document["client_secret"])


@dataclass(slots=True)
class Deployment:
    """One database's Keyhouse with some number of workers: its data, its client, its server,
    and every bench server started beside it (all stopped when the deployment is done)."""

    database: str
    data_dir: Path
    env: dict[str, str]
    client: Client
    keyhouse: Server
    servers: list[Server] = field(default_factory=list)

    @property
    def workers(self) -> int:
        return self.keyhouse.workers

    @property
    def label(self) -> str:
        """For log lines: `sqlite, 2 workers`."""
        return f"{self.database}, {self.workers} worker{'s' if self.workers > 1 else ''}"

    def start(self, server: Server) -> Server:
        """Registers `server` for stopping, then starts it and waits until it answers."""
        self.start_all(server)
        return server

    def start_all(self, *servers: Server) -> None:
        """Registers `servers` for stopping, starts them side by side, waits until each
        answers."""
        self.servers.extend(servers)
        for server in servers:
            server.start()
        for server in servers:
            server.wait_ready()


def token_form(grant: str, client: Client) -> bytes:
    params = {"grant_type": grant, "client_id": client.client_id}
    if grant == "client_credentials":
        params["client_secret"] = client.client_secret
    return urlencode(params).encode()


def issue_token(port: int, grant: str, client: Client) -> str:
    """A fresh access token from Keyhouse's token endpoint."""
    status, _, body = request(port, "POST", TOKEN_PATH, token_form(grant, client))
    if status != 200:
        fail(f"Keyhouse answered {status} to {grant}: {body[:300]!r}")
    token = json.loads(body).get("access_token")
    if not isinstance(token, str):
        fail(f"Keyhouse {grant} response has no access_token: {body[:300]!r}")
    return token


def token_load(
    grant: str, client: Client, expect_bytes: int, connections: int, threads: int = 1
) -> Load:
    """Token requests (client_secret_post for client_credentials) with bench/request.lua."""
    env = {
        "BENCH_PATH": TOKEN_PATH,
        "BENCH_METHOD": "POST",
        "BENCH_BODY": token_form(grant, client).decode(),
        "BENCH_CONTENT_TYPE": "application/x-www-form-urlencoded",
        "BENCH_EXPECT_BYTES": str(expect_bytes),
    }
    return Load(REQUEST_LUA, env, connections, threads)


# --- results ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Row:
    """The rounds of one target of a scenario on one deployment, and their medians."""

    database: str
    workers: int
    scenario: str
    target: str
    connections: int
    rounds: list[WrkRun]
    rps: float
    p50_us: float
    p99_us: float
    rss: Memory | None = None  # the server's workers, after the scenario's rounds
    ratio: float | None = None  # against the scenario's reference row, where it has one
    meets_target: bool | None = None  # None: no target applies to this row

    @classmethod
    def of(
        cls,
        deployment: Deployment,
        scenario: str,
        target: str,
        connections: int,
        rounds: list[WrkRun],
        rss: Memory,
    ) -> "Row":
        return cls(
            database=deployment.database,
            workers=deployment.workers,
            scenario=scenario,
            target=target,
            connections=connections,
            rounds=rounds,
            rss=rss,
            rps=statistics.median(run.rps for run in rounds),
            p50_us=statistics.median(run.p50_us for run in rounds),
            p99_us=statistics.median(run.p99_us for run in rounds),
        )
