"""Token issuance throughput: Keyhouse against a bare FastAPI app, one Uvicorn worker each.

What is measured: requests/s and latency (p50, p99) of `POST /oauth/access_token` with
`client_credentials` (client_secret_post) and `implicit`, from `wrk` over loopback, for
Keyhouse on SQLite and on PostgreSQL, and the ratio of Keyhouse's requests/s to the baseline's.
The target is 0.8 or better for client_credentials.

Why the baseline is fair: `bench/baseline.py` runs on the same Uvicorn with the same event loop
and HTTP parser (uvloop and httptools when installed, which is what `keyhouse serve` picks),
one worker, no access log; it reads and parses the same form the same way and answers with the
same headers and a body of exactly the same length (measured from Keyhouse first, then checked
on every response during load). So the difference is what Keyhouse does beyond HTTP and form
handling: client lookup and authentication, scope checks, signing a JWT, its middleware.
Runs alternate baseline, Keyhouse, baseline, Keyhouse, ... so drift hits both alike, and the
median of the rounds is reported.

    .venv/bin/python bench/run.py [--duration 10] [--connections 32] \
        [--databases sqlite,postgresql] [--rounds 3]
"""

import argparse
import asyncio
import contextlib
import http.client
import importlib.metadata
import importlib.util
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
TOKEN_LUA = BENCH / "token.lua"
RESULTS_DIR = BENCH / "results"
RESULTS_FILE = RESULTS_DIR / "latest.json"
HOST = "127.0.0.1"  # loopback only
TOKEN_PATH = "/oauth/access_token"  # noqa: S105 (a path)
GRANTS = ("client_credentials", "implicit")
DATABASES = ("sqlite", "postgresql")
POSTGRES_URL = "postgresql+asyncpg://root@127.0.0.1:5432/keyhouse_bench"
BENCH_DATABASE = "keyhouse_bench"  # the only PostgreSQL database this script will drop
TARGET_RATIO = 0.8
TARGET_GRANT = "client_credentials"
STARTUP_SECONDS = 60.0
STOP_SECONDS = 10.0
# Written by Uvicorn and Starlette for both apps; Keyhouse's other headers are copied to the
# baseline (BENCH_HEADERS), so both send the same bytes.
SERVER_HEADERS = frozenset({"date", "server", "content-length", "content-type"})
BUSY_LOADAVG = 0.5  # above this before the start, warn that the machine is not idle


class BenchError(Exception):
    """The benchmark cannot go on, or its results cannot be trusted."""


@dataclass(frozen=True, slots=True)
class Client:
    client_id: str
    client_secret: str


@dataclass(frozen=True, slots=True)
class WrkRun:
    """One wrk run, from token.lua's `BENCH_RESULT` line."""

    requests: int
    seconds: float
    rps: float
    p50_us: int
    p90_us: int
    p99_us: int
    max_us: int

    @classmethod
    def parse(cls, output: str, *, where: str) -> "WrkRun":
        lines = [line for line in output.splitlines() if line.startswith("BENCH_RESULT ")]
        if len(lines) != 1:
            raise BenchError(f"{where}: no BENCH_RESULT line from wrk:\n{output}")
        data: dict[str, Any] = json.loads(lines[0].removeprefix("BENCH_RESULT "))
        errors: dict[str, int] = data["errors"]
        problems = [f"{name} errors: {count}" for name, count in errors.items() if count]
        if data["non_2xx"]:
            problems.append(
                f"{data['non_2xx']} non-2xx responses (first: {data['first_bad_status']})"
            )
        if data["wrong_length"]:
            problems.append(f"{data['wrong_length']} responses with an unexpected body length")
        if data["requests"] == 0:
            problems.append("no requests completed")
        if problems:
            raise BenchError(f"{where}: " + "; ".join(problems))
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


def _fail(message: str) -> NoReturn:
    raise BenchError(message)


# --- servers ------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _request(
    port: int, method: str, path: str, body: bytes | None = None, timeout: float = 5.0
) -> tuple[int, dict[str, str], bytes]:
    headers = {"Content-Type": "application/x-www-form-urlencoded"} if body is not None else {}
    connection = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        payload = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, payload
    finally:
        connection.close()


class Server:
    """A server process in its own session, so a Ctrl-C reaches us first and we stop it."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], port: int, log: Path):
        self.name = name
        self.argv = argv
        self.env = env
        self.port = port
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> None:
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                self.argv,
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_ready(self) -> None:
        """Until the server answers HTTP at all (any status), or fail with its log."""
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                _fail(f"{self.name} exited during startup:\n{self.log_tail()}")
            with contextlib.suppress(OSError):
                _request(self.port, "GET", "/", timeout=1.0)
                return
            time.sleep(0.1)
        _fail(f"{self.name} did not answer within {STARTUP_SECONDS:.0f}s:\n{self.log_tail()}")

    def check_alive(self) -> None:
        if self.process is None or self.process.poll() is not None:
            _fail(f"{self.name} has exited:\n{self.log_tail()}")

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


# --- Keyhouse setup -----------------------------------------------------------------------


def _venv_tool(name: str) -> str:
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        _fail(f"{name} not found beside {sys.executable} or on PATH")
    return found


def _keyhouse_env(data_dir: Path, database_url: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("KEYHOUSE_")}
    env["KEYHOUSE_DATA_DIR"] = str(data_dir)
    env["KEYHOUSE_DATABASE_URL"] = database_url
    return env


def _keyhouse(args: Sequence[str], env: dict[str, str]) -> str:
    argv = [_venv_tool("keyhouse"), *args]
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        _fail(f"`keyhouse {' '.join(args)}` failed ({done.returncode}):\n{done.stderr}")
    return done.stdout


async def _recreate_postgres_database(url: str) -> None:
    import asyncpg  # type: ignore[import-untyped]
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.database != BENCH_DATABASE:
        _fail(f"refusing to drop {parsed.database!r}: only {BENCH_DATABASE!r} is the bench's")
    connection = await asyncpg.connect(
        host=parsed.host,
        port=parsed.port or 5432,
        user=parsed.username,
        password=parsed.password,
        database="postgres",
    )
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{BENCH_DATABASE}" WITH (FORCE)')
        await connection.execute(f'CREATE DATABASE "{BENCH_DATABASE}"')
    finally:
        await connection.close()


def _database_url(database: str, data_dir: Path, postgres_url: str) -> str:
    if database == "sqlite":
        return f"sqlite+aiosqlite:///{data_dir / 'keyhouse.db'}"
    asyncio.run(_recreate_postgres_database(postgres_url))
    return postgres_url


def _create_client(env: dict[str, str]) -> Client:
    document = json.loads(_keyhouse(["clients", "create", "--name", "bench", "--json"], env))
    if not document.get("client_secret"):
        _fail(f"`keyhouse clients create` gave no secret: {document}")
    return Client(client_id=document["client_id"], client_secret=document["client_secret"])


# --- checks before load -------------------------------------------------------------------


def _form(grant: str, client: Client) -> bytes:
    params = {"grant_type": grant, "client_id": client.client_id}
    if grant == "client_credentials":
        params["client_secret"] = client.client_secret
    return urlencode(params).encode()


def _post_token(port: int, grant: str, client: Client) -> tuple[int, dict[str, str], bytes]:
    return _request(port, "POST", TOKEN_PATH, _form(grant, client))


def _verify_keyhouse_token(port: int, grant: str, client: Client) -> tuple[int, dict[str, str]]:
    """A real token, signed by a published key, for each request; the body length and headers."""
    import jwt

    metadata = _get_json(port, "/.well-known/oauth-authorization-server")
    keys = jwt.PyJWKSet.from_dict(_get_json(port, "/.well-known/jwks.json"))
    lengths: set[int] = set()
    headers: dict[str, str] = {}
    for _ in range(3):
        status, headers, body = _post_token(port, grant, client)
        if status != 200:
            _fail(f"Keyhouse answered {status} to {grant}: {body[:300]!r}")
        document = json.loads(body)
        token = document.get("access_token")
        if not isinstance(token, str) or document.get("identifier") != grant:
            _fail(f"Keyhouse {grant} response has no token: {document}")
        try:
            header = jwt.get_unverified_header(token)
            claims = jwt.decode(
                token,
                keys[header["kid"]].key,
                algorithms=[header["alg"]],
                issuer=metadata["issuer"],
                options={"verify_aud": False, "require": ["aud", "exp", "iat", "jti"]},
            )
        except (jwt.PyJWTError, KeyError) as error:
            _fail(f"Keyhouse {grant} token does not verify: {error!r}")
        if claims.get("client_id") != client.client_id or claims.get("grant_type") != grant:
            _fail(f"Keyhouse {grant} token has unexpected claims: {claims}")
        lengths.add(len(body))
    if len(lengths) != 1:
        _fail(f"Keyhouse {grant} bodies vary in length ({sorted(lengths)}); cannot match them")
    return lengths.pop(), headers


def _get_json(port: int, path: str) -> Any:
    status, _, body = _request(port, "GET", path)
    if status != 200:
        _fail(f"Keyhouse answered {status} to GET {path}")
    return json.loads(body)


def _app_headers(headers: dict[str, str]) -> dict[str, str]:
    return {name: value for name, value in headers.items() if name not in SERVER_HEADERS}


def _verify_baseline(
    port: int, grant: str, client: Client, length: int, keyhouse_headers: dict[str, str]
) -> None:
    status, headers, body = _post_token(port, grant, client)
    if status != 200:
        _fail(f"baseline answered {status} to {grant}: {body[:300]!r}")
    if len(body) != length:
        _fail(f"baseline {grant} body is {len(body)} bytes, Keyhouse's {length}")
    for name in {*headers, *keyhouse_headers} - {"date"}:
        if headers.get(name) != keyhouse_headers.get(name):
            _fail(
                f"baseline {name}: {headers.get(name)!r}, Keyhouse: {keyhouse_headers.get(name)!r}"
            )


# --- load ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Config:
    """How to load, and what to run: from the command line."""

    duration: int
    warmup: int
    connections: int
    threads: int
    rounds: int
    postgres_url: str
    loop: str  # Uvicorn's event loop and HTTP implementation, the same for both servers
    http: str
    profile: bool


def _wrk(
    server: Server, grant: str, client: Client, expect_bytes: int, seconds: int, config: Config
) -> WrkRun:
    env = {
        **os.environ,
        "BENCH_GRANT": grant,
        "BENCH_CLIENT_ID": client.client_id,
        "BENCH_CLIENT_SECRET": client.client_secret,
        "BENCH_EXPECT_BYTES": str(expect_bytes),
    }
    argv = [
        _wrk_binary(),
        f"-t{config.threads}",
        f"-c{config.connections}",
        f"-d{seconds}s",
        "--timeout",
        "5s",
        "-s",
        str(TOKEN_LUA),
        f"http://{HOST}:{server.port}",
    ]
    where = f"{server.name} {grant}"
    try:
        done = subprocess.run(
            argv, env=env, capture_output=True, text=True, timeout=seconds + 30, check=False
        )
    except subprocess.TimeoutExpired:
        _fail(f"{where}: wrk did not finish within {seconds + 30}s")
    if done.returncode != 0:
        _fail(f"{where}: wrk exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    server.check_alive()
    return WrkRun.parse(done.stdout, where=where)


def _wrk_binary() -> str:
    found = shutil.which("wrk")
    if found is None:
        _fail("wrk is not installed")
    return found


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


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def bench_database(database: str, config: Config) -> list[Summary]:
    with tempfile.TemporaryDirectory(prefix="keyhouse-bench-") as temporary:
        servers: list[Server] = []
        try:
            return _bench_in(Path(temporary), servers, database, config)
        finally:
            for server in servers:
                server.stop()


def _bench_in(
    data_dir: Path, servers: list[Server], database: str, config: Config
) -> list[Summary]:
    """Sets up, checks and loads both servers; each is put in `servers` before it starts."""
    env = _keyhouse_env(data_dir, _database_url(database, data_dir, config.postgres_url))
    _log(f"[{database}] keyhouse db upgrade; keyhouse clients create")
    _keyhouse(["db", "upgrade"], env)
    client = _create_client(env)

    keyhouse_port = _free_port()
    keyhouse_argv = [_venv_tool("keyhouse"), "serve", "--host", HOST, "--port", str(keyhouse_port)]
    keyhouse = Server(
        "keyhouse",
        [*keyhouse_argv, "--workers", "1", "--no-access-log"],
        env,
        keyhouse_port,
        data_dir / "keyhouse.log",
    )
    servers.append(keyhouse)
    keyhouse.start()
    keyhouse.wait_ready()
    lengths: dict[str, int] = {}
    keyhouse_headers: dict[str, dict[str, str]] = {}
    for grant in GRANTS:
        lengths[grant], keyhouse_headers[grant] = _verify_keyhouse_token(
            keyhouse_port, grant, client
        )
    _log(f"[{database}] keyhouse pid {keyhouse.pid} on :{keyhouse_port}; token bodies {lengths}")

    baseline_port = _free_port()
    baseline_env = {
        name: value for name, value in os.environ.items() if not name.startswith("KEYHOUSE_")
    }
    baseline_env["BENCH_BODY_BYTES"] = json.dumps(lengths)
    extra_headers = [_app_headers(headers) for headers in keyhouse_headers.values()]
    if any(headers != extra_headers[0] for headers in extra_headers):
        _fail(f"Keyhouse's headers differ between grants: {keyhouse_headers}")
    baseline_env["BENCH_HEADERS"] = json.dumps(extra_headers[0])
    uvicorn_argv = [sys.executable, "-m", "uvicorn", "bench.baseline:app", "--host", HOST]
    baseline = Server(
        "baseline",
        [
            *uvicorn_argv,
            *("--port", str(baseline_port), "--workers", "1", "--no-access-log"),
            *("--loop", config.loop, "--http", config.http, "--proxy-headers"),
        ],
        baseline_env,
        baseline_port,
        data_dir / "baseline.log",
    )
    servers.append(baseline)
    baseline.start()
    baseline.wait_ready()
    for grant in GRANTS:
        _verify_baseline(baseline_port, grant, client, lengths[grant], keyhouse_headers[grant])
    _log(f"[{database}] baseline pid {baseline.pid} on :{baseline_port}; checks passed")

    targets = (baseline, keyhouse)  # this order in every round
    for grant in GRANTS:
        for server in targets:
            _wrk(server, grant, client, lengths[grant], config.warmup, config)
    _log(f"[{database}] warmed up ({config.warmup}s per target and grant)")

    runs: dict[tuple[str, str], list[WrkRun]] = {
        (server.name, grant): [] for server in targets for grant in GRANTS
    }
    for grant in GRANTS:
        for round_number in range(1, config.rounds + 1):
            for server in targets:
                run = _wrk(server, grant, client, lengths[grant], config.duration, config)
                runs[(server.name, grant)].append(run)
                _log(
                    f"[{database}] {grant:<18} round {round_number} {server.name:<8} "
                    f"{run.rps:9.1f} req/s  p50 {run.p50_us / 1000:6.2f} ms  "
                    f"p99 {run.p99_us / 1000:6.2f} ms"
                )
    if config.profile:
        _profile(keyhouse, database, client, lengths[TARGET_GRANT], config)
    return _summaries(database, runs)


def _profile(keyhouse: Server, database: str, client: Client, length: int, config: Config) -> None:
    """A py-spy flame graph of Keyhouse under one more client_credentials run (not measured)."""
    output = RESULTS_DIR / f"keyhouse-{database}-{TARGET_GRANT}.svg"
    output.parent.mkdir(parents=True, exist_ok=True)
    seconds = max(config.duration - 2, 1)
    argv = [_venv_tool("py-spy"), "record", "--pid", str(keyhouse.pid), "--gil"]
    argv += ["--duration", str(seconds), "--output", str(output)]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as spy:
        _wrk(keyhouse, TARGET_GRANT, client, length, config.duration, config)
        try:
            spy_output, _ = spy.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            spy.kill()
            _fail("py-spy did not finish")
    if spy.returncode != 0:
        _fail(f"py-spy failed (it needs ptrace rights):\n{spy_output.decode(errors='replace')}")
    _log(f"[{database}] flame graph of Keyhouse written to {output.relative_to(ROOT)}")


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


def _versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in (
        "uvicorn",
        "fastapi",
        "starlette",
        "uvloop",
        "httptools",
        "pyjwt",
        "cryptography",
        "sqlalchemy",
        "aiosqlite",
        "asyncpg",
        "orjson",
    ):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[package] = importlib.metadata.version(package)
    wrk = subprocess.run([_wrk_binary(), "-v"], capture_output=True, text=True, check=False)
    versions["wrk"] = next(iter((wrk.stdout + wrk.stderr).splitlines()), "")
    return versions


def _uvicorn_implementations() -> tuple[str, str]:
    """What `uvicorn.run(loop="auto", http="auto")` in `keyhouse serve` resolves to."""
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    return loop, http


def _git_state() -> dict[str, Any]:
    """The commit measured, and files changed since, so a result can be matched to code."""

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=30, check=False
        )
        return done.stdout.strip() if done.returncode == 0 else ""

    changed = git("status", "--porcelain", "--", "app", "migrations", "pyproject.toml")
    return {"commit": git("rev-parse", "HEAD"), "uncommitted": changed.splitlines()}


def write_results(rows: Sequence[Summary], config: Config, loadavg: float) -> Path:
    document = {
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "settings": {**asdict(config), "workers": 1},
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "loadavg_1min_before": loadavg,
            "loadavg_1min_after": os.getloadavg()[0],
        },
        "keyhouse": _git_state(),
        "versions": _versions(),
        "target": {"grant": TARGET_GRANT, "ratio": TARGET_RATIO},
        "results": [asdict(row) for row in rows],
    }
    RESULTS_FILE.parent.mkdir(parents=True, exist_ok=True)
    RESULTS_FILE.write_text(json.dumps(document, indent=2) + "\n")
    return RESULTS_FILE


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of warm-up per target")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per target")
    parser.add_argument(
        "--databases", default=",".join(DATABASES), help="comma-separated: sqlite,postgresql"
    )
    parser.add_argument("--postgres-url", default=POSTGRES_URL, help="dropped and recreated")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="after the rounds, record a py-spy flame graph of Keyhouse into bench/results/",
    )
    args = parser.parse_args(argv)
    databases = [name.strip() for name in args.databases.split(",") if name.strip()]
    unknown = sorted(set(databases) - set(DATABASES))
    if unknown or not databases:
        parser.error(f"--databases takes {','.join(DATABASES)}; got {args.databases!r}")
    args.databases = databases
    for name in ("duration", "warmup", "connections", "threads", "rounds"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    return args


@contextlib.contextmanager
def _signals_unwind() -> Iterator[None]:
    """SIGINT and SIGTERM raise KeyboardInterrupt, so the servers are stopped either way.

    SIGINT too, explicitly: a shell starting us in the background may have ignored it.
    """

    def handler(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    previous = {
        number: signal.signal(number, handler) for number in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        yield
    finally:
        for number, action in previous.items():
            signal.signal(number, action)


def main(argv: Sequence[str] | None = None) -> int:
    args = _arguments(argv)
    loop, http = _uvicorn_implementations()
    config = Config(
        duration=args.duration,
        warmup=args.warmup,
        connections=args.connections,
        threads=args.threads,
        rounds=args.rounds,
        postgres_url=args.postgres_url,
        loop=loop,
        http=http,
        profile=args.profile,
    )
    _log(
        f"uvicorn loop={loop} http={http}; wrk -t{config.threads} -c{config.connections} "
        f"-d{config.duration}s x {config.rounds} rounds; databases {','.join(args.databases)}"
    )
    loadavg = os.getloadavg()[0]
    if loadavg > BUSY_LOADAVG:
        _log(f"warning: 1-minute load average is {loadavg:.2f}; other work will skew results")
    rows: list[Summary] = []
    try:
        with _signals_unwind():
            for database in args.databases:
                rows.extend(bench_database(database, config))
    except BenchError as error:
        _log(f"bench failed: {error}")
        return 1
    except KeyboardInterrupt:
        _log("interrupted; servers stopped")
        return 130
    print(format_table(rows))
    written = write_results(rows, config, loadavg)
    _log(f"results written to {written.relative_to(ROOT)}")
    for row in rows:
        if row.grant == TARGET_GRANT and row.ratio is not None and row.ratio < TARGET_RATIO:
            _log(
                f"{row.database}: {row.grant} at {row.ratio:.2f}x the baseline, not {TARGET_RATIO}x"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
