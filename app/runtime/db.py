"""The ORM base, engines and sessions: one `Database` per process, one session per request."""

import errno
import logging
import socket
import sqlite3
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar

import orjson
from fastapi import Depends, Request
from sqlalchemy import DateTime, MetaData, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Dialect, ExceptionContext
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

logger = logging.getLogger("keyhouse.db")

# Stable constraint names, so Alembic autogenerate never renames them between databases.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend (SQLite returns naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime()}


def utcnow() -> datetime:
    return datetime.now(UTC)


def _tune_sqlite(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers run beside the writer; busy_timeout makes concurrent writers wait
    # instead of failing at once; SQLite enforces foreign keys only when asked.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


# PostgreSQL: when the server is away, requests fail within these bounds instead of hanging.
CONNECT_TIMEOUT_SECONDS = 3.0  # asyncpg's default is 60
POOL_TIMEOUT_SECONDS = 5.0  # waiting for a free pooled connection; SQLAlchemy's default is 30
# Each statement of the server (not of migrations, which may rightly take longer): every query
# Keyhouse sends takes milliseconds, so this only bounds a server that stopped answering.
COMMAND_TIMEOUT_SECONDS = 10.0


def create_engine(
    url: str, *, command_timeout: float | None = None, background: bool = False
) -> AsyncEngine:
    # Statement parameters include password and secret hashes: SQLAlchemy leaves them out of
    # its exception messages (which reach the error log) and of its own logging. JSON columns
    # (prices, addresses) are parsed by orjson, several times faster than the standard json.
    if url.startswith("sqlite"):
        engine = create_async_engine(url, hide_parameters=True, json_deserializer=orjson.loads)
        event.listen(engine.sync_engine, "connect", _tune_sqlite)
        return engine
    # Pre-ping: after the server restarts, a pooled connection that died with it is replaced
    # on checkout instead of failing the request that drew it. Background reads (`background`)
    # go without: the ping is a transaction of its own, as many as the reads themselves, and a
    # read that failed is simply tried again (on a new connection, the dead one discarded).
    return create_async_engine(
        url,
        hide_parameters=True,
        json_deserializer=orjson.loads,
        pool_pre_ping=not background,
        pool_size=1 if background else 10,
        max_overflow=1 if background else 10,
        pool_timeout=POOL_TIMEOUT_SECONDS,
        connect_args={"timeout": CONNECT_TIMEOUT_SECONDS, "command_timeout": command_timeout},
    )


# Storage that refuses: a full disk, a read-only one, I/O errors, a database file that cannot
# be opened (a read-only file system, its directory gone). No write succeeds until an operator
# frees space or remounts, and then the next one does, with nothing restarted: an outage, not a
# bug. Corruption (SQLITE_CORRUPT, SQLITE_NOTADB) is neither: no retry mends it, it stays a 500.
STORAGE_SQLITE_CODES = frozenset(
    {sqlite3.SQLITE_FULL, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN}
)
STORAGE_SQLSTATES = frozenset({"53100", "58030"})  # PostgreSQL's disk_full and io_error
STORAGE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO})
# SQLSTATEs that say the server cannot serve now, not that the statement was wrong: connection
# exceptions (class 08), shutting down or starting up (57P01-57P03), too many connections, and
# its storage refusing.
UNAVAILABLE_SQLSTATES = STORAGE_SQLSTATES | frozenset(
    {"08000", "08001", "08003", "08004", "08006", "57P01", "57P02", "57P03", "53300"}
)
# Network failures the driver may raise as they are, from the pool's connect or mid-query.
UNAVAILABLE_ERRNOS = STORAGE_ERRNOS | frozenset(
    {
        errno.ECONNREFUSED,
        errno.ECONNRESET,
        errno.ECONNABORTED,
        errno.EPIPE,
        errno.ETIMEDOUT,
        errno.EHOSTUNREACH,
        errno.ENETUNREACH,
        errno.ENETDOWN,
        errno.EHOSTDOWN,
    }
)
# SQLite: busy or locked beyond busy_timeout, or its storage refusing. Others (no such table,
# a constraint...) are bugs.
UNAVAILABLE_SQLITE_CODES = STORAGE_SQLITE_CODES | {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED}


def is_unavailable(error: BaseException) -> bool:
    """Whether `error` says the database cannot be reached or cannot serve right now.

    A constraint violation, a programming error or bad data is not: those are bugs or the
    client's mistakes, and stay what they are.
    """
    if isinstance(error, sa_exc.DBAPIError):
        return error.connection_invalidated or _driver_unavailable(error.orig)
    # The pool's own timeout, waiting for a free connection.
    return isinstance(error, sa_exc.TimeoutError) or _driver_unavailable(error)


def _chain(error: BaseException | None) -> Iterator[BaseException]:
    # asyncpg errors reach us wrapped in SQLAlchemy's emulated DBAPI errors, with the
    # SQLSTATE copied; connect failures (refused, timed out) come through unwrapped.
    for _ in range(4):  # the error, the driver's, and what the driver wrapped
        if error is None:
            return
        yield error
        error = getattr(error, "orig", None) or error.__cause__


def _driver_unavailable(error: BaseException | None) -> bool:
    for cause in _chain(error):
        if getattr(cause, "sqlstate", None) in UNAVAILABLE_SQLSTATES:
            return True
        if isinstance(cause, sqlite3.Error):
            code = getattr(cause, "sqlite_errorcode", 0) & 0xFF  # without the extended bits
            return code in UNAVAILABLE_SQLITE_CODES
        if isinstance(cause, (TimeoutError, ConnectionError, socket.gaierror)):
            return True
        if isinstance(cause, OSError):
            return cause.errno in UNAVAILABLE_ERRNOS
    return False


def storage_fault(error: BaseException) -> str | None:
    """The name of the fault if `error` says the database's storage refused (`SQLITE_FULL`,
    `SQLITE_IOERR_WRITE`, `SQLSTATE 53100`, `ENOSPC`...), else None. Names are fixed strings
    of SQLite, PostgreSQL and the C library, never text of the request."""
    for cause in _chain(error):
        sqlstate = getattr(cause, "sqlstate", None)
        if sqlstate in STORAGE_SQLSTATES:
            return f"SQLSTATE {sqlstate}"
        if isinstance(cause, sqlite3.Error):
            code = getattr(cause, "sqlite_errorcode", 0)
            if code & 0xFF in STORAGE_SQLITE_CODES:
                return str(getattr(cause, "sqlite_errorname", "SQLITE_IOERR"))
            return None
        if isinstance(cause, OSError) and cause.errno in STORAGE_ERRNOS:
            return errno.errorcode[cause.errno]
    return None


class WriteHealth:
    """Whether this worker's database takes writes, as far as the worker knows.

    Any statement that meets a storage fault marks it failing (an engine event, so background
    tasks count too); the write probe of `/readyz` marks it sound again. Nothing is written
    to find this out while writes succeed.
    """

    def __init__(self) -> None:
        self.fault: str | None = None  # while failing: the last fault's name
        self.probed_at = 0.0  # monotonic: when the last probe began

    def failed(self, fault: str) -> None:
        if self.fault is None:
            logger.warning(
                "database storage refused a write (%s): not ready until one succeeds", fault
            )
        self.fault = fault

    def probe_due(self, interval: float) -> bool:
        """Whether a probe should run now; if so, the next is due `interval` seconds later, so
        that readiness checks arriving together make one probe between them."""
        now = time.monotonic()
        if now < self.probed_at + interval:
            return False
        self.probed_at = now
        return True

    def recovered(self) -> None:
        if self.fault is not None:
            logger.info("database storage takes writes again")
        self.fault = None


class Database:
    """An engine and its session factory, and connections for plain reads.

    A `background` one serves a worker's periodic reads (the revocation poll): one connection,
    not pinged before each use, so that an idle worker costs the database one transaction per
    read (app/oauth/revocation.py).
    """

    def __init__(self, url: str, *, background: bool = False) -> None:
        self.engine = create_engine(
            url, command_timeout=COMMAND_TIMEOUT_SECONDS, background=background
        )
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self.writes = WriteHealth()
        event.listen(self.engine.sync_engine, "handle_error", self._noticed)
        # PostgreSQL's driver opens a transaction before a connection's first statement and
        # rolls it back when the connection is returned: two round trips that a read, each of
        # whose statements sees committed data either way, has no use for. SQLite's driver
        # opens none before a SELECT, and switching its connections would cost more.
        self._autocommit_reads = not url.startswith("sqlite")

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncConnection]:
        """A pooled connection for SELECTs alone: no session, no ORM, no transaction."""
        async with self.engine.connect() as connection:
            if self._autocommit_reads:  # until the connection is returned to the pool
                await connection.execution_options(isolation_level="AUTOCOMMIT")
            yield connection

    def _noticed(self, context: ExceptionContext) -> None:
        fault = storage_fault(context.original_exception)
        if fault is not None:
            self.writes.failed(fault)

    async def dispose(self) -> None:
        await self.engine.dispose()


async def _session(request: Request) -> AsyncIterator[AsyncSession]:
    database: Database = request.app.state.database
    async with database.sessions() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(_session)]
