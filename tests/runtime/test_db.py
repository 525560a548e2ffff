"""A database that is away is a 503 with `Retry-After`, never a 500; a bug is still a 500.

In-process, on SQLite and on PostgreSQL: the app starts on the test database, then its
`Database` is pointed at a PostgreSQL port where nothing listens, so every query meets a real
refused connection. `tests/runtime/test_database_outage.py` restarts a real server under load.
"""

import asyncio
import contextlib
import errno
import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import exc as sa_exc
from sqlalchemy import text

from app.runtime.db import STORAGE_SQLITE_CODES, Database, is_unavailable, storage_fault

from ..conftest import MakeClient, free_port
from ..customers.shoppers import backend_token, headers

TOKEN_URL = "/oauth/access_token"
SHOP = "https://shop.example"
PRODUCT = {
    "data": {
        "type": "product",
        "name": "Lamp",
        "slug": "lamp",
        "sku": "LAMP-1",
        "manage_stock": False,
        "price": [{"amount": 1999, "currency": "USD", "includes_tax": True}],
        "status": "live",
        "commodity_type": "physical",
    }
}
OUTAGE_DETAIL = (
    "The service is unavailable for a moment; try again after the time in the Retry-After header."
)


@contextlib.contextmanager
def database_away(app: FastAPI) -> Iterator[None]:
    """Every component of the app now meets a refused connection; then the real one again."""
    database: Database = app.state.database
    real_engine, real_sessions = database.engine, database.sessions
    away = Database(f"postgresql+asyncpg://keyhouse@127.0.0.1:{free_port()}/keyhouse")
    database.engine, database.sessions = away.engine, away.sessions
    try:
        yield
    finally:
        database.engine, database.sessions = real_engine, real_sessions


def assert_unavailable(response: httpx.Response, *, oauth: bool) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"] == "2"
    error = {"status": 503, "detail": OUTAGE_DETAIL}
    if oauth:
        assert response.json() == {
            "error": "temporarily_unavailable",
            "error_description": OUTAGE_DETAIL,
            "errors": [{**error, "title": "temporarily_unavailable"}],
        }
        assert response.headers["Cache-Control"] == "no-store"
    else:
        assert response.json() == {"errors": [{**error, "title": "Service Unavailable"}]}


async def test_routes_answer_503_while_the_database_is_away_and_recover(
    app: FastAPI,
    http: httpx.AsyncClient,
    make_client: MakeClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    backend = await make_client(name="backend")
    token = await backend_token(http, backend)
    caplog.set_level(logging.WARNING, logger="keyhouse.errors")
    with database_away(app):
        created = await http.post("/v2/products", json=PRODUCT, headers=headers(token))
        assert_unavailable(created, oauth=False)
        listed = await http.get("/v2/products", headers=headers(token))
        assert_unavailable(listed, oauth=False)
    warnings = [r for r in caplog.records if r.name == "keyhouse.errors"]
    assert [r.levelno for r in warnings] == [logging.WARNING] * 2
    assert all(r.exc_info is None for r in warnings)  # one line each, no traceback
    message = "database unavailable (ConnectionRefusedError) on POST /v2/products"
    assert warnings[0].getMessage() == message

    created = await http.post("/v2/products", json=PRODUCT, headers=headers(token))
    assert created.status_code == 201, created.text


async def test_token_endpoint_answers_in_its_own_error_body(
    app: FastAPI, http: httpx.AsyncClient, make_client: MakeClient
) -> None:
    storefront = await make_client(name="storefront", public=True)
    with database_away(app):
        response = await http.post(
            TOKEN_URL, data={"grant_type": "implicit", "client_id": storefront.client.id}
        )
    assert_unavailable(response, oauth=True)


# Without the push: a client's creation, announced, would make the worker forget its copy
# whenever the message arrives, maybe after the cache was filled below.
@pytest.mark.settings(client_cache_seconds=60, change_push="off")
async def test_cached_clients_and_keys_still_get_tokens(
    app: FastAPI, http: httpx.AsyncClient, make_client: MakeClient
) -> None:
    backend = await make_client(name="backend", origins=[SHOP])
    await backend_token(http, backend)  # the client is now in this worker's cache
    await preflight(http)  # and so are the registered origins
    app.state.keyring._loaded_at -= 3600  # the key ring is due for a refresh
    with database_away(app):
        assert await backend_token(http, backend)
        app.state.clients._origins._entries.clear()  # due for a reload too
        allowed = await preflight(http)
        assert allowed.status_code == 204
        assert allowed.headers["Access-Control-Allow-Origin"] == SHOP
        unknown = await http.post(TOKEN_URL, data={"grant_type": "implicit", "client_id": "x"})
        assert_unavailable(unknown, oauth=True)


async def test_a_preflight_that_cannot_read_the_origins_is_a_503(
    app: FastAPI, http: httpx.AsyncClient, make_client: MakeClient
) -> None:
    await make_client(name="storefront", public=True, origins=[SHOP])
    with database_away(app):
        response = await preflight(http)
    assert_unavailable(response, oauth=False)


async def preflight(http: httpx.AsyncClient) -> httpx.Response:
    return await http.options(
        TOKEN_URL,
        headers={
            "Origin": SHOP,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )


async def test_a_bug_in_a_query_is_still_a_500(app: FastAPI) -> None:
    async def broken() -> None:
        async with app.state.database.sessions() as session:
            await session.execute(text("SELECT * FROM no_such_table"))

    app.router.add_api_route("/broken", broken)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://keyhouse.test") as client:
        response = await client.get("/broken")
    assert response.status_code == 500


async def raised(database: Database, *statements: str) -> BaseException:
    """What the last statement raises, the ones before it having run."""
    try:
        async with database.engine.connect() as connection:
            for statement in statements:
                await connection.execute(text(statement))
    except Exception as error:
        return error
    raise AssertionError("no error")


async def test_constraint_and_programming_errors_are_not_outages(database: Database) -> None:
    table = "CREATE TEMPORARY TABLE outage_probe (id INTEGER PRIMARY KEY)"
    insert = "INSERT INTO outage_probe (id) VALUES (1)"
    duplicate = await raised(database, table, insert, insert)
    assert isinstance(duplicate, sa_exc.IntegrityError)
    assert not is_unavailable(duplicate)
    missing_table = await raised(database, "SELECT * FROM no_such_table")
    assert isinstance(missing_table, sa_exc.DBAPIError)
    assert not is_unavailable(missing_table)
    syntax = await raised(database, "SELEC 1")
    assert not is_unavailable(syntax)
    assert not is_unavailable(ValueError("bad data"))
    assert not is_unavailable(FileNotFoundError(2, "No such file or directory"))


async def test_connection_failures_are_outages() -> None:
    away = Database(f"postgresql+asyncpg://keyhouse@127.0.0.1:{free_port()}/keyhouse")
    refused = await raised(away, "SELECT 1")
    await away.dispose()
    assert isinstance(refused, ConnectionRefusedError)
    assert is_unavailable(refused)
    assert is_unavailable(TimeoutError())  # connecting took longer than the connect timeout
    assert is_unavailable(sa_exc.TimeoutError("QueuePool limit reached"))  # no free connection


async def test_plain_reads_open_no_transaction(database: Database) -> None:
    """`Database.reading()`: on PostgreSQL each statement commits on its own (no BEGIN and no
    ROLLBACK round trips); SQLite's driver opens no transaction for a SELECT anyway."""
    async with database.reading() as connection:
        if database.engine.dialect.name == "postgresql":
            first = await connection.scalar(text("SELECT now()"))  # the transaction's start
            await asyncio.sleep(0.01)
            assert await connection.scalar(text("SELECT now()")) > first
        else:
            assert await connection.scalar(text("SELECT 1")) == 1
            raw = await connection.get_raw_connection()
            assert raw.driver_connection is not None
            assert not raw.driver_connection.in_transaction
    async with database.engine.connect() as connection:  # returned as it was lent
        await connection.scalar(text("SELECT 1"))
        assert await connection.get_isolation_level() != "AUTOCOMMIT"


def sqlite_error(target: Path | str, *statements: str) -> sqlite3.Error:
    """What SQLite itself raises, opening `target` (a path or a `file:` URI) or running the
    statements."""
    try:
        with contextlib.closing(sqlite3.connect(str(target), uri=True)) as connection:
            for statement in statements:
                connection.execute(statement)
            connection.commit()
    except sqlite3.Error as error:
        return error
    raise AssertionError("no error")


def test_storage_that_refuses_is_an_outage(tmp_path: Path) -> None:
    """A full disk, a read-only database, I/O errors and a file that cannot be opened are
    outages (503, retried later), named by SQLite's code; corruption stays a bug."""
    path = tmp_path / "faults.db"
    with contextlib.closing(sqlite3.connect(path)) as connection:
        connection.execute("CREATE TABLE t (a)")
    full = sqlite_error(path, "PRAGMA max_page_count = 1", "INSERT INTO t VALUES (zeroblob(9000))")
    read_only = sqlite_error(f"file:{path}?mode=ro", "INSERT INTO t VALUES (1)")
    cannot_open = sqlite_error(tmp_path / "missing" / "faults.db", "SELECT 1")
    (tmp_path / "garbage.db").write_bytes(b"not a database" * 100)
    corrupt = sqlite_error(tmp_path / "garbage.db", "SELECT * FROM sqlite_master")
    faults = {"SQLITE_FULL": full, "SQLITE_READONLY": read_only, "SQLITE_CANTOPEN": cannot_open}
    for name, error in faults.items():
        wrapped = sa_exc.OperationalError("INSERT ...", {}, error)
        assert (is_unavailable(wrapped), storage_fault(wrapped)) == (True, name)
    io_error = OSError(errno.EIO, "Input/output error")
    assert (is_unavailable(io_error), storage_fault(io_error)) == (True, "EIO")
    full_disk = OSError(errno.ENOSPC, "No space left on device")  # the secret file, say
    assert (is_unavailable(full_disk), storage_fault(full_disk)) == (True, "ENOSPC")
    # A real one: tests/runtime/test_storage_faults.py.
    assert sqlite3.SQLITE_IOERR in STORAGE_SQLITE_CODES
    not_a_database = sa_exc.DatabaseError("SELECT ...", {}, corrupt)
    assert (is_unavailable(not_a_database), storage_fault(not_a_database)) == (False, None)


def test_postgresql_disk_full_and_io_errors_are_outages() -> None:
    for error in (asyncpg.exceptions.DiskFullError(), asyncpg.exceptions.PostgresIOError()):
        assert is_unavailable(error)
        assert storage_fault(error) == f"SQLSTATE {error.sqlstate}"
    assert storage_fault(asyncpg.exceptions.TooManyConnectionsError()) is None  # only unavailable
