"""A fleet on one PostgreSQL: what idle workers cost the database, and how fast a change reaches
every worker, with the push (app/runtime/change_feed.py) and without it.

Starts `--servers` `keyhouse serve` processes of one worker each (so that each worker has an
address of its own and can be asked directly) on one database, for each mode:

- `before`: an earlier Keyhouse (`--before`, an export of its `app/`, as bench/before_after.py
  serves it): every worker polled every 0.25 s, each poll after a pinged checkout;
- `poll`: `KEYHOUSE_CHANGE_PUSH=off`, every worker polls every 0.25 s;
- `push`: PostgreSQL LISTEN/NOTIFY, the fallback poll every `KEYHOUSE_CHANGE_POLL_SECONDS`;
- `redis`: Redis pub/sub (with `--redis-url`), the same fallback.

For each it reports the transactions per second per worker while idle (`xact_commit +
xact_rollback` of `pg_stat_database`, read from another database so that reading counts
nothing), and over `--trials` revocations (`POST /oauth/revoke` through the first worker,
each of the others asked in a loop with the token until it answers 401) the time until the last
worker refused it: p50, p99 and max; likewise over `--operator-trials` clients disabled (their
token refused) and signing keys rotated (the new key in every worker's JWKS) by the operator.
`--lost-trials` more revocations are written straight into the table, announced to nobody, as a
lost message would be: the fallback poll's bound.

`--restart postgresql,redis` adds a phase for each: the fleet on a PostgreSQL of its own (and,
for `redis`, pushing over a Redis of its own; bench/fault_services.py), `--trials` revocations,
then that server restarted (stopped, down `--down-seconds`, started on the same port) under the
running fleet, how long after it answered again every worker listened again (as the server
counts its listeners, every 10 ms), and `--trials` revocations more: the same p50, p99 and max,
with the same worker processes. `--modes ''` runs the restart phases alone.

    git archive main app | tar -x -C /tmp/keyhouse-before
    .venv/bin/python bench/fleet.py [--servers 6] [--idle-seconds 30] [--trials 100] \
        [--operator-trials 20] [--lost-trials 5] [--modes before,poll,push,redis] \
        [--before /tmp/keyhouse-before] [--redis-url redis://127.0.0.1:6379/7] \
        [--restart postgresql,redis] [--down-seconds 2]
"""

import argparse
import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import httpx
from fault_services import PrivatePostgres, PrivateRedis
from harness import (
    HOST,
    BenchError,
    Client,
    Server,
    create_client,
    database_url,
    fail,
    free_port,
    issue_token,
    keyhouse,
    keyhouse_argv,
    keyhouse_env,
    log,
)
from sqlalchemy.engine import make_url

POSTGRES_URL = "postgresql+asyncpg://root@127.0.0.1:5432/keyhouse_bench_fleet"
SETTLE_SECONDS = (
    25.0  # PostgreSQL reports an idle backend's counts up to 10 s late: start-up's first
)
PROBE_DEADLINE_SECONDS = 10.0
WINDOW_SECONDS = 5.0
LISTENING_DEADLINE_SECONDS = 30.0  # the listeners' pause between attempts grows to 5 s at most
SERVING_DEADLINE_SECONDS = 30.0


def libpq(url: str, database: str | None = None) -> str:
    parsed = make_url(url).set(drivername="postgresql")
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


async def transactions(url: str) -> int:
    """Transactions so far in the bench's database, read from `postgres`."""
    name = make_url(url).database
    connection = await asyncpg.connect(libpq(url, "postgres"))
    try:
        count: int = await connection.fetchval(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = $1", name
        )
        return count
    finally:
        await connection.close()


def start_fleet(count: int, env: dict[str, str], logs: Path) -> list[Server]:
    servers = []
    for index in range(count):
        port = free_port()
        server = Server(
            f"keyhouse-{index}",
            keyhouse_argv(port, 1),
            {**env, "KEYHOUSE_ISSUER": "http://keyhouse.fleet"},  # one issuer, as behind a proxy
            port,
            logs / f"server-{index}.log",
        )
        server.start()
        servers.append(server)
    for server in servers:
        server.wait_ready()
    return servers


async def idle_rate(url: str, workers: int, seconds: float) -> tuple[float, float]:
    """Transactions per second per worker over `seconds`: the mean, and the median of its
    windows of `WINDOW_SECONDS` (a burst from outside, or the purge once a minute, moves the
    mean only)."""
    await asyncio.sleep(SETTLE_SECONDS)
    counts = [await transactions(url)]
    for _ in range(max(1, round(seconds / WINDOW_SECONDS))):
        await asyncio.sleep(WINDOW_SECONDS)
        counts.append(await transactions(url))
    windows = [(after - before) / WINDOW_SECONDS / workers for before, after in pairwise(counts)]
    # PostgreSQL reports a backend's counts at most once a second, and an idle one's after ten
    # seconds: over 30 s that is a transaction or two of noise per worker.
    return statistics.mean(windows), statistics.median(windows)


async def refused_after(http: httpx.AsyncClient, port: int, token: str, since: float) -> float:
    """Asks one worker, request after request, until it refuses the token; when it did."""
    headers = {"Authorization": f"Bearer {token}"}
    while time.monotonic() - since < PROBE_DEADLINE_SECONDS:
        response = await http.get(f"http://{HOST}:{port}/v2/products", headers=headers)
        if response.status_code == 401:
            return time.monotonic() - since
    raise RuntimeError(f"the worker on port {port} still accepts a revoked token")


async def accepted_everywhere(http: httpx.AsyncClient, servers: list[Server], token: str) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    for server in servers:
        response = await http.get(f"http://{HOST}:{server.port}/v2/products", headers=headers)
        response.raise_for_status()


async def revoke_through_api(
    http: httpx.AsyncClient, server: Server, token: str, client_id: str, secret: str
) -> None:
    response = await http.post(
        f"http://{HOST}:{server.port}/oauth/revoke",
        data={"token": token},
        auth=(client_id, secret),
    )
    response.raise_for_status()


async def revoke_unannounced(url: str, token: str) -> None:
    """A revocation row written without NOTIFY or PUBLISH: as if the message were lost."""
    import jwt

    claims = jwt.decode(token, options={"verify_signature": False})
    connection = await asyncpg.connect(libpq(url))
    try:
        await connection.execute(
            "INSERT INTO revocation (kind, value, issued_before, expires_at, created_at) "
            "VALUES ('token', $1, NULL, to_timestamp($2) + interval '1 hour', now())",
            claims["jti"],
            claims["exp"],
        )
    finally:
        await connection.close()


async def propagation(
    url: str, servers: list[Server], env: dict[str, str], trials: int, *, lost: bool
) -> list[float]:
    client = create_client(env)
    times = []
    async with httpx.AsyncClient(timeout=5) as http:
        for _ in range(trials):
            token = issue_token(servers[0].port, "client_credentials", client)
            await accepted_everywhere(http, servers, token)  # every worker has met it
            since = time.monotonic()
            if lost:
                await revoke_unannounced(url, token)
            else:
                await revoke_through_api(
                    http, servers[0], token, client.client_id, client.client_secret
                )
            others = servers[1:]
            waits = [refused_after(http, server.port, token, since) for server in others]
            times.append(max(await asyncio.gather(*waits)))
    return times


async def seen_after(http: httpx.AsyncClient, port: int, kid: str, since: float) -> float:
    """Asks one worker for its JWKS until it publishes `kid`; when it did."""
    while time.monotonic() - since < PROBE_DEADLINE_SECONDS:
        response = await http.get(f"http://{HOST}:{port}/.well-known/jwks.json")
        if kid in response.text:
            return time.monotonic() - since
    raise RuntimeError(f"the worker on port {port} does not publish the new key")


async def operator_changes(
    url: str, data_dir: Path, servers: list[Server], env: dict[str, str], trials: int
) -> tuple[list[float], list[float]]:
    """Clients disabled and keys rotated by the operator (in this process, through the same
    service functions as `keyhouse clients disable` and `keyhouse keys rotate`): the time from
    the write until every worker refuses the client's token, or publishes the key."""
    from app.oauth.clients import create_client as create
    from app.oauth.clients import disable_client
    from app.oauth.keys import rotate_signing_key
    from app.oauth.stores import ensure_default_store
    from app.runtime.changes import redis_announcer
    from app.runtime.db import Database
    from app.runtime.passwords import ClientSecretHasher
    from app.runtime.server_secret import load_server_keys
    from app.runtime.settings import Settings

    settings = Settings(
        database_url=url,
        data_dir=data_dir,
        redis_url=env.get("KEYHOUSE_REDIS_URL"),
        redis_key_prefix=env.get("KEYHOUSE_REDIS_KEY_PREFIX", "keyhouse"),
    )
    keys = load_server_keys(settings)
    hasher = ClientSecretHasher(keys.client_secret_hmac)
    database = Database(url)
    announcer = redis_announcer(settings, database.sessions)
    disabled, rotated = [], []
    try:
        async with httpx.AsyncClient(timeout=5) as http:
            for _ in range(trials):
                async with database.sessions() as session:
                    store = await ensure_default_store(session)
                    made = await create(session, hasher=hasher, store_id=store.id, name="fleet")
                assert made.client_secret is not None
                client = Client(client_id=made.client.id, client_secret=made.client_secret)
                token = issue_token(servers[0].port, "client_credentials", client)
                await accepted_everywhere(http, servers, token)
                since = time.monotonic()
                async with database.sessions() as session:
                    await disable_client(session, client_id=client.client_id, issuing_lag_seconds=1)
                waits = [refused_after(http, server.port, token, since) for server in servers]
                disabled.append(max(await asyncio.gather(*waits)))

                since = time.monotonic()
                async with database.sessions() as session:
                    new = await rotate_signing_key(
                        session,
                        algorithm="ES256",
                        encryption_key=keys.signing_key_encryption,
                        max_token_lifetime=3600,
                    )
                kid = new.new_key.kid
                waits = [seen_after(http, server.port, kid, since) for server in servers]
                rotated.append(max(await asyncio.gather(*waits)))
    finally:
        if announcer is not None:
            await announcer.close()
        await database.dispose()
    return disabled, rotated


@dataclass(frozen=True)
class Restart:
    """The restart phase's figures: seconds, from the stop (`down`) and from the server's
    answering again (`listening`: until 1, 2, ... every worker listened again)."""

    restarted: str
    before: list[float]
    down: float
    listening: list[float]
    after: list[float]
    same_workers: bool


async def listeners(url: str, redis_url: str | None, channel: str) -> int:
    """How many workers listen, as the server they listen to counts them."""
    if redis_url is not None:
        from redis.asyncio import Redis

        async with Redis.from_url(redis_url, socket_timeout=1) as client:
            [(_channel, count)] = await client.pubsub_numsub(channel)
            return int(count)
    from app.runtime.change_feed import APPLICATION_NAME

    connection = await asyncpg.connect(libpq(url), timeout=1)
    try:
        count: int = await connection.fetchval(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE application_name = $1 AND query LIKE 'LISTEN %'",
            APPLICATION_NAME,
        )
        return count
    finally:
        await connection.close()


async def listening_after(
    url: str, redis_url: str | None, channel: str, workers: int, since: float
) -> list[float]:
    """Seconds from `since` until 1, 2, ... `workers` workers listened."""
    times: list[float] = []
    while len(times) < workers:
        if time.monotonic() - since > LISTENING_DEADLINE_SECONDS:
            fail(f"{len(times)} of {workers} workers listen {LISTENING_DEADLINE_SECONDS:.0f} s on")
        count = min(workers, await listeners(url, redis_url, channel))
        times += [time.monotonic() - since] * (count - len(times))
        await asyncio.sleep(0.01)
    return times


async def serving_again(servers: list[Server], client: Client) -> None:
    """Until every worker takes a fresh token (the database's restart may answer 503 once)."""
    deadline = time.monotonic() + SERVING_DEADLINE_SECONDS
    async with httpx.AsyncClient(timeout=5) as http:
        while True:
            try:
                await accepted_everywhere(
                    http, servers, issue_token(servers[0].port, "client_credentials", client)
                )
                return
            except (BenchError, httpx.HTTPError):
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)


@contextlib.contextmanager
def private_servers(
    restarted: str, root: Path
) -> Iterator[tuple[PrivatePostgres, PrivateRedis | None]]:
    postgres = PrivatePostgres()
    redis = None
    try:
        postgres.init()
        postgres.start()
        if restarted == "redis":
            redis = PrivateRedis(root)
            redis.start()
        yield postgres, redis
    finally:
        if redis is not None:
            redis.stop()
        postgres.remove()


def restart(
    restarted: str,
    *,
    servers: int,
    trials: int,
    down_seconds: float,
    env: Mapping[str, str] | None = None,
) -> Restart:
    """The restart phase: `restarted` is "postgresql" (pushes over LISTEN) or "redis" (over
    pub/sub); `env` adds to the workers' environment."""
    from app.runtime.changes import redis_channel

    with (
        tempfile.TemporaryDirectory(prefix="keyhouse-fleet-restart-") as scratch,
        private_servers(restarted, Path(scratch)) as (postgres, redis),
    ):
        data_dir = Path(scratch)
        redis_url = None if redis is None else redis.url
        mode = "push" if redis is None else "redis"
        workers_env = mode_env(mode, keyhouse_env(data_dir, postgres.url), redis_url, None)
        workers_env |= env or {}
        channel = redis_channel(workers_env.get("KEYHOUSE_REDIS_KEY_PREFIX", ""))
        keyhouse(["db", "upgrade"], workers_env)
        fleet = start_fleet(servers, workers_env, data_dir)
        try:
            pids = [server.worker_pids() for server in fleet]
            asyncio.run(
                listening_after(postgres.url, redis_url, channel, servers, time.monotonic())
            )
            before = asyncio.run(propagation(postgres.url, fleet, workers_env, trials, lost=False))
            log(f"[restart {restarted}] revocation before, p50/p99/max: {summary(before)}")
            stopping = time.monotonic()
            if redis is None:
                postgres.stop()  # fast: every session terminated, as `pg_ctl restart` does
            else:
                redis.stop()
            time.sleep(down_seconds)
            if redis is None:
                postgres.start()
            else:
                redis.start()
            back = time.monotonic()
            listening = asyncio.run(
                listening_after(postgres.url, redis_url, channel, servers, back)
            )
            log(
                f"[restart {restarted}] down {back - stopping:.1f} s; every worker listening "
                f"{listening[-1]:.2f} s after it answered again (the first {listening[0]:.2f} s)"
            )
            asyncio.run(serving_again(fleet, create_client(workers_env)))
            after = asyncio.run(propagation(postgres.url, fleet, workers_env, trials, lost=False))
            log(f"[restart {restarted}] revocation after, p50/p99/max: {summary(after)}")
            same = [server.worker_pids() for server in fleet] == pids
        finally:
            for server in fleet:
                server.stop()
    return Restart(restarted, before, back - stopping, listening, after, same)


def summary(times: list[float]) -> str:
    if not times:
        return "-"
    ordered = sorted(times)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    median = statistics.median(ordered)
    return f"{median * 1000:.0f} / {p99 * 1000:.0f} / {ordered[-1] * 1000:.0f} ms"


def print_restarts(restarts: list[Restart], servers: int, trials: int, down: float) -> None:
    print(f"\n{servers} workers ({servers} servers x 1), the server down {down:.0f} s")
    print(
        f"| restarted | revocation before ({trials} trials) | down | every worker listening "
        f"again (first) | revocation after ({trials} trials) | same workers |"
    )
    print("|---|---|---|---|---|---|")
    for phase in restarts:
        listening = f"{phase.listening[-1]:.2f} s ({phase.listening[0]:.2f} s)"
        cells = [phase.restarted, summary(phase.before), f"{phase.down:.1f} s", listening]
        cells += [summary(phase.after), "yes" if phase.same_workers else "no"]
        print("| " + " | ".join(cells) + " |")


def mode_env(
    mode: str, base: dict[str, str], redis_url: str | None, before: str | None
) -> dict[str, str]:
    env = dict(base)
    env.pop("PYTHONPATH", None)
    if mode == "before":
        if before is None:
            raise SystemExit("--modes before needs --before")
        env["PYTHONPATH"] = before
    if mode == "poll":
        env["KEYHOUSE_CHANGE_PUSH"] = "off"
    if mode == "redis":
        if redis_url is None:
            raise SystemExit("--modes redis needs --redis-url")
        env["KEYHOUSE_REDIS_URL"] = redis_url
        env["KEYHOUSE_REDIS_KEY_PREFIX"] = f"keyhouse-fleet-{uuid.uuid4().hex[:8]}"
        env["KEYHOUSE_REDIS_TIMEOUT_SECONDS"] = "2"
    return env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--servers", type=int, default=6)
    parser.add_argument("--idle-seconds", type=float, default=30.0)
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--lost-trials", type=int, default=5)
    parser.add_argument("--operator-trials", type=int, default=20)
    parser.add_argument("--modes", default="poll,push")
    parser.add_argument("--redis-url")
    parser.add_argument("--before", help="an export of an earlier Keyhouse's app/")
    parser.add_argument("--postgres-url", default=POSTGRES_URL)
    parser.add_argument("--restart", default="", help="postgresql,redis: the restart phases")
    parser.add_argument("--down-seconds", type=float, default=2.0)
    args = parser.parse_args()
    modes = [mode for mode in args.modes.split(",") if mode]
    restarts = [
        restart(restarted, servers=args.servers, trials=args.trials, down_seconds=args.down_seconds)
        for restarted in args.restart.split(",")
        if restarted
    ]
    rows = []
    with tempfile.TemporaryDirectory(prefix="keyhouse-fleet-") as scratch:
        for mode in modes:
            data_dir = Path(scratch) / mode
            data_dir.mkdir()
            url = database_url("postgresql", data_dir, args.postgres_url)
            env = mode_env(mode, keyhouse_env(data_dir, url), args.redis_url, args.before)
            keyhouse(["db", "upgrade"], env)
            log(f"[{mode}] {args.servers} servers of one worker each")
            servers = start_fleet(args.servers, env, data_dir)
            try:
                idle, typical = asyncio.run(idle_rate(url, args.servers, args.idle_seconds))
                log(f"[{mode}] idle: {idle:.2f} transactions/s per worker ({typical:.2f} median)")
                pushed = asyncio.run(propagation(url, servers, env, args.trials, lost=False))
                log(f"[{mode}] revocation p50/p99/max: {summary(pushed)}")
                disabled, rotated = asyncio.run(
                    operator_changes(url, data_dir, servers, env, args.operator_trials)
                )
                log(f"[{mode}] client disabled, p50/p99/max: {summary(disabled)}")
                log(f"[{mode}] key rotated, p50/p99/max: {summary(rotated)}")
                lost: list[float] = []
                if mode in ("push", "redis") and args.lost_trials:
                    lost = asyncio.run(propagation(url, servers, env, args.lost_trials, lost=True))
                    log(f"[{mode}] message lost, p50/p99/max: {summary(lost)}")
            finally:
                for server in servers:
                    server.stop()
            figures = (summary(pushed), summary(disabled), summary(rotated), summary(lost))
            rows.append((mode, f"{idle:.2f} ({typical:.2f})", *figures))
    if restarts:
        print_restarts(restarts, args.servers, args.trials, args.down_seconds)
    if not modes:
        return
    print(f"\n{args.servers} workers ({args.servers} servers x 1), idle {args.idle_seconds:.0f} s")
    print(
        "| mode | idle transactions/s per worker (median of 5 s) | revocation p50 / p99 / max "
        f"({args.trials} trials) | client disabled ({args.operator_trials}) "
        f"| key rotated ({args.operator_trials}) | message lost ({args.lost_trials}) |"
    )
    print("|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    sys.exit(main())
