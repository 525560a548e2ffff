"""Shared fixtures: a clean database per test, the app, and a way to make clients.

The suite runs on SQLite by default; set KEYHOUSE_TEST_DATABASE_URL to a PostgreSQL URL
(`postgresql+asyncpg://root@127.0.0.1:5432/test`) to run the same tests there. Run in parallel
(`pytest -n 2`, as `make test` does), each worker has a PostgreSQL database of its own, named
after the given one (`test_gw0`, `test_gw1`), created for the run and dropped after it.
"""

import asyncio
import os
import shutil
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, NoReturn

import httpx
import pytest
import redis
import uvicorn
from fastapi import FastAPI
from fault_services import PrivatePostgres, PrivateRedis, Unavailable
from pydantic import SecretStr
from sqlalchemy import Connection, MetaData, make_url, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from app.main import create_app
from app.oauth.clients import CreatedClient, create_client
from app.oauth.stores import Store, create_store, ensure_default_store
from app.runtime.db import Database
from app.runtime.models import Base
from app.runtime.passwords import ClientSecretHasher
from app.runtime.server_secret import load_server_keys
from app.runtime.settings import Settings

from .smtp import MailServer, make_certificate


def _database_of_this_worker(url: str) -> str:
    """The given PostgreSQL URL, or under pytest-xdist a database of this worker's own: two
    workers emptying one database's tables before each of their tests would wipe each other's."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not url or not worker:
        return url
    given = make_url(url)
    return given.set(database=f"{given.database}_{worker}").render_as_string(hide_password=False)


GIVEN_POSTGRES_URL = os.environ.get("KEYHOUSE_TEST_DATABASE_URL", "")
POSTGRES_URL = _database_of_this_worker(GIVEN_POSTGRES_URL)
if POSTGRES_URL:
    # Test modules that read the variable, and the servers the tests start, find this worker's.
    os.environ["KEYHOUSE_TEST_DATABASE_URL"] = POSTGRES_URL
# The tests' own connections (creating and emptying tables) wait longer than Keyhouse's 3 s
# for a connection: on a busy CI machine a checkpoint's fsyncs can hold a new one that long.
FIXTURE_CONNECT_TIMEOUT_SECONDS = 30.0
# Rate-limit counters in Redis: a logical database of the tests' own, and keys of each test's own.
REDIS_URL = os.environ.get("KEYHOUSE_TEST_REDIS_URL", "redis://127.0.0.1:6379/1")
TEST_ISSUER = "http://keyhouse.test"
TEST_SERVER_SECRET = SecretStr("test-server-secret-" + "x" * 32)


def _run(coroutine: Awaitable[Any]) -> Any:
    return asyncio.run(coroutine)  # type: ignore[arg-type]


def _drop_every_table(connection: Connection) -> None:
    existing = MetaData()
    existing.reflect(connection)
    existing.drop_all(connection)


def _fixture_engine(url: str) -> AsyncEngine:
    """An engine for the tests' own statements: no pool, and the longer connect timeout."""
    return create_async_engine(
        url, connect_args={"timeout": FIXTURE_CONNECT_TIMEOUT_SECONDS}, poolclass=NullPool
    )


async def postgres_admin(url: str, statements: list[str]) -> None:
    """Runs statements outside a transaction (CREATE and DROP DATABASE) on the server of `url`."""
    engine = _fixture_engine(url)
    try:
        async with engine.connect() as connection:
            autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
            for statement in statements:
                await autocommit.execute(text(statement))
    finally:
        await engine.dispose()


async def _reset_postgres(url: str, *, recreate: bool) -> None:
    engine = _fixture_engine(url)
    async with engine.begin() as connection:
        if recreate:
            # Every table there, not only today's models': an earlier run of an older schema
            # leaves tables (say, one a migration since replaced) whose foreign keys would
            # stop today's from being dropped.
            await connection.run_sync(_drop_every_table)
            await connection.run_sync(Base.metadata.create_all)
        else:
            # DELETE, not TRUNCATE: a TRUNCATE gives every table and index new files, and the
            # server's next checkpoint fsyncs them all (25,000 files every five minutes of the
            # suite, seconds in which new connections time out). A test leaves a few rows.
            for table in reversed(Base.metadata.sorted_tables):
                await connection.execute(table.delete())
    await engine.dispose()


async def _create_sqlite(url: str) -> None:
    database = Database(url)
    async with database.engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)
    await database.dispose()


@pytest.fixture(scope="session", autouse=True)
def worker_database() -> Iterator[None]:
    """Under pytest-xdist on PostgreSQL, this worker's database: made at the start, dropped at
    the end (WITH (FORCE) ends what a failed test's servers left connected)."""
    if POSTGRES_URL == GIVEN_POSTGRES_URL:
        yield
        return
    name = make_url(POSTGRES_URL).database
    drop = f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
    _run(postgres_admin(GIVEN_POSTGRES_URL, [drop, f'CREATE DATABASE "{name}"']))
    yield
    _run(postgres_admin(GIVEN_POSTGRES_URL, [drop]))


@pytest.fixture(scope="session")
def postgres_schema() -> None:
    """On PostgreSQL, tables are created once per run and emptied before each test."""
    if POSTGRES_URL:
        _run(_reset_postgres(POSTGRES_URL, recreate=True))


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file with every table, made once: each test copies it (a millisecond) instead
    of creating the tables again (a tenth of a second, 1,400 times a run)."""
    path = tmp_path_factory.mktemp("template") / "keyhouse.db"
    _run(_create_sqlite(f"sqlite+aiosqlite:///{path}"))
    return path


@pytest.fixture
def database_url(tmp_path: Path, postgres_schema: None, sqlite_template: Path) -> str:
    """A URL to an empty, fully migrated-equivalent database of this test's own."""
    if POSTGRES_URL:
        _run(_reset_postgres(POSTGRES_URL, recreate=False))
        return POSTGRES_URL
    path = tmp_path / "keyhouse.db"
    shutil.copyfile(sqlite_template, path)
    return f"sqlite+aiosqlite:///{path}"


def make_settings(database_url: str, data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "data_dir": data_dir,
        "issuer": TEST_ISSUER,
        "server_secret": TEST_SERVER_SECRET,
        **overrides,
    }
    return Settings(**values)


def _require_redis() -> None:
    try:
        with redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1) as connection:
            connection.ping()
    except redis.RedisError:
        _unavailable(f"Redis is not reachable at {REDIS_URL} (set KEYHOUSE_TEST_REDIS_URL)")


def _unavailable(message: str) -> NoReturn:
    if os.environ.get("CI"):  # CI has Redis and PostgreSQL installed: their absence is a failure
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    """A PostgreSQL server of the test's own (bench/fault_services.py), to stop and start: the
    tests that restart PostgreSQL never touch the suite's shared one."""
    # In a directory of /tmp, not pytest's tmp_path: the `postgres` user cannot enter root's
    # 0700 directories.
    try:
        server = PrivatePostgres(max_connections=60, prefix="keyhouse-test-pg-")
    except Unavailable as missing:
        _unavailable(str(missing))
    try:
        server.init()
        server.start()
        yield server
    finally:
        server.remove()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    """A redis-server of the test's own (bench/fault_services.py), on a free loopback port: the
    tests that freeze, stop or kill Redis never touch the suite's shared one."""
    try:
        server = PrivateRedis(tmp_path)
    except Unavailable as missing:
        _unavailable(str(missing))
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["memory", "redis"])
def counter_storage(request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    """Settings that keep rate-limit counters in memory, then in Redis (keys removed after)."""
    if request.param == "memory":
        yield {}
        return
    _require_redis()
    prefix = f"keyhouse-test-{uuid.uuid4().hex}"
    # A long timeout: late in the suite a GC pause can stall the loop past the default 0.5 s,
    # and a Redis that answered would count as away (the hung-Redis tests keep the default).
    yield {"redis_url": REDIS_URL, "redis_key_prefix": prefix, "redis_timeout_seconds": 5.0}
    with redis.Redis.from_url(REDIS_URL) as connection:
        for key in connection.scan_iter(match=f"{prefix}:*"):
            connection.delete(key)


@pytest.fixture
def settings(request: pytest.FixtureRequest, database_url: str, tmp_path: Path) -> Settings:
    """The test settings; `@pytest.mark.settings(name=value)` overrides some for one test, and
    a test that uses `counter_storage` runs with its counters in memory and in Redis."""
    overrides: dict[str, Any] = {}
    if "counter_storage" in request.fixturenames:
        overrides.update(request.getfixturevalue("counter_storage"))
    marker = request.node.get_closest_marker("settings")
    overrides.update(marker.kwargs if marker else {})
    return make_settings(database_url, tmp_path, **overrides)


@pytest.fixture
async def database(settings: Settings) -> AsyncIterator[Database]:
    database = Database(settings.database_url)
    yield database
    await database.dispose()


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[FastAPI]:
    """An app, started (its lifespan entered) and stopped."""
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    async with serving(settings) as application:
        yield application


def http_client(app: FastAPI, address: str = "127.0.0.1") -> httpx.AsyncClient:
    """An HTTP client talking to the app in-process, from the client address `address`."""
    transport = httpx.ASGITransport(app=app, client=(address, 50_000))
    return httpx.AsyncClient(transport=transport, base_url=TEST_ISSUER)


@pytest.fixture
async def http(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client talking to the app in-process."""
    async with http_client(app) as client:
        yield client


@pytest.fixture
async def default_store(database: Database) -> Store:
    async with database.sessions() as session:
        return await ensure_default_store(session)


MakeClient = Callable[..., Awaitable[CreatedClient]]


@pytest.fixture
def make_client(settings: Settings, database: Database, default_store: Store) -> MakeClient:
    """Creates an OAuth client through the same service function as the CLI."""
    hasher = ClientSecretHasher(load_server_keys(settings).client_secret_hmac)

    async def make(**options: Any) -> CreatedClient:
        options.setdefault("name", "test client")
        options.setdefault("store_id", default_store.id)
        async with database.sessions() as session:
            return await create_client(session, hasher=hasher, **options)

    return make


@pytest.fixture
def make_store(database: Database) -> Callable[[str], Awaitable[Store]]:
    async def make(name: str) -> Store:
        async with database.sessions() as session:
            return await create_store(session, name=name)

    return make


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class LiveServer:
    """Keyhouse on a real socket, in a thread, for clients that cannot use ASGI in-process."""

    def __init__(self, settings: Settings, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.settings = settings
        config = uvicorn.Config(
            create_app(settings), host="127.0.0.1", port=port, log_level="warning", lifespan="on"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def start(self) -> None:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("live server did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


@pytest.fixture
def live_server(
    request: pytest.FixtureRequest, database_url: str, tmp_path: Path
) -> Iterator[LiveServer]:
    port = free_port()
    marker = request.node.get_closest_marker("settings")
    overrides = marker.kwargs if marker else {}
    settings = make_settings(database_url, tmp_path, issuer=f"http://127.0.0.1:{port}", **overrides)
    server = LiveServer(settings, port)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def smtp_certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_certificate(tmp_path_factory.mktemp("smtp"))


@pytest.fixture
def mail_server(smtp_certificate: tuple[Path, Path]) -> Iterator[MailServer]:
    """A real SMTP server (STARTTLS, login required) that keeps what Keyhouse sends."""
    server = MailServer(smtp_certificate)
    server.start()
    yield server
    server.stop()
