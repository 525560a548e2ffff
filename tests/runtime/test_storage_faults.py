"""SQLite's storage refusing writes: a full disk, a read-only file system, I/O errors.

Each fault is real: the database lives on a small tmpfs of the test's own (mounted here, so the
tests need root or CAP_SYS_ADMIN and skip with that reason elsewhere), filled with a file until
the kernel says ENOSPC; made read-only by remounting a bind mount of it; or, for I/O errors, the
served process's file size limit (RLIMIT_FSIZE) lowered under its write-ahead log, so that
growing the log fails with EFBIG, which SQLite reports as SQLITE_IOERR_WRITE.

Checked: every write meets a 503 with `Retry-After` in the contract's body (JSON:API on /v2,
the OAuth body on the issuing side), token issuance goes on, a keep-alive connection stays
usable, `/readyz` answers 503 until a write succeeds again and 200 as soon as one does, and no
acknowledged write is lost. `keyhouse serve` on a full disk stops with one line.

SQLite only: on the PostgreSQL pass these are skipped, the SQLite pass having run them.
"""

import asyncio
import contextlib
import errno
import http.client
import json
import resource
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event, func, select

from app.observability import monitoring
from app.observability.monitoring import WriteProbe
from app.runtime.db import Database
from app.runtime.models import Base
from app.store.products import Product

from ..conftest import POSTGRES_URL, TEST_SERVER_SECRET, MakeClient, free_port
from ..customers.shoppers import backend_token, headers
from ..serve import KEYHOUSE, START_SECONDS, STOP_SECONDS

pytestmark = pytest.mark.skipif(
    bool(POSTGRES_URL), reason="SQLite's storage: the SQLite pass of the suite runs these"
)

DISK_BYTES = 4 * 1024 * 1024
OUTAGE_DETAIL = (
    "The service is unavailable for a moment; try again after the time in the Retry-After header."
)


class Disk:
    """A tmpfs of `DISK_BYTES` at `path`, and a bind mount of it at `view` that can be made
    read-only; the database lives in the view."""

    def __init__(self, path: Path, view: Path) -> None:
        self.path = path
        self.view = view
        self._filler = path / "filler"

    def fill(self) -> None:
        """Writes zeros until the kernel says the disk is full."""
        with self._filler.open("ab") as filler:
            try:
                while True:
                    filler.write(b"\0" * 65536)
                    filler.flush()
            except OSError as error:
                assert error.errno == errno.ENOSPC, error

    def free(self) -> None:
        self._filler.unlink()

    def remount(self, mode: str) -> subprocess.CompletedProcess[str]:
        return mount("-o", f"remount,{mode},bind", str(self.view))


def mount(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["mount", *arguments], capture_output=True, text=True, check=False)


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Disk]:
    path, view = tmp_path / "disk", tmp_path / "view"
    path.mkdir()
    view.mkdir()
    mounted = mount("-t", "tmpfs", "-o", f"size={DISK_BYTES}", "tmpfs", str(path))
    if mounted.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not permitted here: {mounted.stderr.strip()}")
    try:
        assert mount("--bind", str(path), str(view)).returncode == 0
        try:
            yield Disk(path, view)
        finally:
            subprocess.run(["umount", "-l", str(view)], check=False)
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


@pytest.fixture
def database_url(disk: Disk) -> str:
    """The suite's fixtures (app, http, make_client) on a database in the small disk."""
    url = f"sqlite+aiosqlite:///{disk.view / 'keyhouse.db'}"
    asyncio.run(create_schema(url))
    return url


async def create_schema(url: str) -> None:
    database = Database(url)
    try:
        async with database.engine.begin() as connection:
            await connection.run_sync(Base.metadata.create_all)
    finally:
        await database.dispose()


def product(sku: str) -> dict[str, Any]:
    data = {
        "type": "product",
        "name": sku,
        "slug": sku.lower(),
        "sku": sku,
        "manage_stock": False,
        "price": [{"amount": 100, "currency": "USD", "includes_tax": True}],
        "status": "live",
        "commodity_type": "physical",
    }
    return {"data": data}


def assert_unavailable(response: httpx.Response, *, oauth: bool = False) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"] == "2"
    error = {"status": 503, "detail": OUTAGE_DETAIL}
    if oauth:
        assert response.json() == {
            "error": "temporarily_unavailable",
            "error_description": OUTAGE_DETAIL,
            "errors": [{**error, "title": "temporarily_unavailable"}],
        }
    else:
        assert response.json() == {"errors": [{**error, "title": "Service Unavailable"}]}


def assert_not_ready(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"] == "2"
    (error,) = response.json()["errors"]
    assert error["detail"] == monitoring.DATABASE_REFUSES_WRITES


async def stored(database: Database) -> tuple[set[str], int]:
    """The skus of every product in the database, and the rows left in the probe's table."""
    async with database.sessions() as session:
        skus = set(await session.scalars(select(Product.sku)))
        return skus, await session.scalar(select(func.count()).select_from(WriteProbe)) or 0


async def test_a_full_disk_is_a_503_and_not_ready_until_a_write_succeeds(
    app: FastAPI,
    http: httpx.AsyncClient,
    make_client: MakeClient,
    disk: Disk,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(monitoring, "WRITE_PROBE_SECONDS", 0.0)  # every check probes
    backend = await make_client(name="backend")
    bearer = headers(await backend_token(http, backend))
    before = await http.post("/v2/products", json=product("BEFORE"), headers=bearer)
    assert before.status_code == 201, before.text
    acknowledged = {"BEFORE"}
    assert (await http.get("/readyz")).status_code == 200

    disk.fill()
    assert_unavailable(await http.post("/v2/products", json=product("FULL"), headers=bearer))
    token = await backend_token(http, backend)  # issuance writes nothing: it goes on
    assert backend.client_secret is not None
    revoke = await http.post(
        "/oauth/revoke", data={"token": token}, auth=(backend.client.id, backend.client_secret)
    )
    assert_unavailable(revoke, oauth=True)  # the issuing side's writes, in its own body
    assert_not_ready(await http.get("/readyz"))
    assert_not_ready(await http.get("/readyz"))  # the probe keeps failing while the disk is full

    disk.free()
    ready = await http.get("/readyz")
    assert (ready.status_code, ready.json()) == (200, {"status": "ready"})
    after = await http.post("/v2/products", json=product("AFTER"), headers=bearer)
    assert after.status_code == 201, after.text
    acknowledged.add("AFTER")
    skus, probe_rows = await stored(app.state.database)
    assert skus == acknowledged  # nothing acknowledged lost, nothing refused half-written
    assert probe_rows == 0


async def test_readiness_probes_at_most_once_per_interval(
    app: FastAPI, http: httpx.AsyncClient, disk: Disk, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While writes fail, checks between probes answer from the last one: one write per
    `WRITE_PROBE_SECONDS` per worker, however often the load balancer asks."""
    monkeypatch.setattr(monitoring, "WRITE_PROBE_SECONDS", 60.0)
    probes: list[str] = []
    database: Database = app.state.database
    database.writes.failed("SQLITE_FULL")  # as a failed write would have marked it

    def count(_connection: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith("INSERT INTO write_probe"):
            probes.append(statement)

    event.listen(database.engine.sync_engine, "before_cursor_execute", count)
    disk.fill()
    answers = await asyncio.gather(*(http.get("/readyz") for _ in range(10)))
    assert [a.status_code for a in answers] == [503] * 10
    assert len(probes) == 1
    disk.free()
    assert (await http.get("/readyz")).status_code == 503  # the next probe is not due yet
    monkeypatch.setattr(monitoring, "WRITE_PROBE_SECONDS", 0.0)
    assert (await http.get("/readyz")).status_code == 200
    assert (await http.get("/readyz")).status_code == 200  # sound again: no probe, no write
    assert len(probes) == 2


async def test_a_read_only_file_system_is_a_503_until_it_is_writable_again(
    app: FastAPI,
    http: httpx.AsyncClient,
    make_client: MakeClient,
    database: Database,
    disk: Disk,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(monitoring, "WRITE_PROBE_SECONDS", 0.0)
    backend = await make_client(name="backend")
    bearer = headers(await backend_token(http, backend))
    served: Database = app.state.database
    # A file system cannot be made read-only under files open for writing, and SQLite opens
    # its files so: the connections are closed first, as if the disk went read-only between
    # them (the next ones open on the read-only file system).
    for _ in range(20):
        await served.engine.dispose()
        await database.engine.dispose()
        if disk.remount("ro").returncode == 0:
            break
        await asyncio.sleep(0.05)  # a background task had opened one again
    else:
        raise AssertionError("the bind mount could not be made read-only")
    assert_unavailable(await http.post("/v2/products", json=product("RO"), headers=bearer))
    assert_not_ready(await http.get("/readyz"))
    assert served.writes.fault == "SQLITE_CANTOPEN"

    assert disk.remount("rw").returncode == 0
    assert (await http.get("/readyz")).status_code == 200
    created = await http.post("/v2/products", json=product("RW"), headers=bearer)
    assert created.status_code == 201, created.text
    assert (await stored(served))[0] == {"RW"}


# --- `keyhouse serve` on the small disk: keep-alive connections, I/O errors, startup --------


class Served:
    """`keyhouse serve` (one worker) on a database in the small disk; stderr kept in memory
    through a pipe, so that the file size limit of the I/O-error test cannot touch it."""

    def __init__(self, disk: Disk) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.environment = {
            "PATH": "/usr/bin:/bin",
            "KEYHOUSE_DATA_DIR": str(disk.view),
            "KEYHOUSE_ISSUER": self.url,
            "KEYHOUSE_SERVER_SECRET": TEST_SERVER_SECRET.get_secret_value(),
        }
        self.lines: list[str] = []
        self.process: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None

    def command(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(KEYHOUSE), *args],
            env=self.environment,
            capture_output=True,
            text=True,
            timeout=START_SECONDS,
            check=False,
        )

    def start(self) -> None:
        command = [str(KEYHOUSE), "serve", "--port", str(self.port)]
        self.process = subprocess.Popen(
            command,
            env=self.environment,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, args=(self.process,), daemon=True)
        self._reader.start()
        deadline = time.monotonic() + START_SECONDS
        while True:
            assert self.process.poll() is None, "\n".join(self.lines)
            with contextlib.suppress(httpx.TransportError):
                httpx.get(self.url + "/healthz", timeout=2).raise_for_status()
                return
            assert time.monotonic() < deadline, "keyhouse serve did not start"
            time.sleep(0.1)

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stderr is not None
        for line in process.stderr:
            self.lines.append(line)

    def stop(self) -> None:
        if self.process is None or self._reader is None:
            return
        self.process.terminate()
        self.process.wait(timeout=STOP_SECONDS)
        self._reader.join(timeout=STOP_SECONDS)  # until the pipe's end
        assert self.process.stderr is not None
        self.process.stderr.close()

    def logged(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.lines if line.startswith("{")]


@pytest.fixture
def served(disk: Disk) -> Iterator[Served]:
    server = Served(disk)
    try:
        yield server
    finally:
        server.stop()


class Connection:
    """One keep-alive HTTP/1.1 connection: a request on it after the server closed it fails
    (http.client opens no new one behind our back once a response said nothing of closing)."""

    def __init__(self, port: int, bearer: str) -> None:
        self._http = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        self._bearer = bearer
        self.socket: object = None

    def send(self, method: str, path: str, body: Any = None) -> tuple[int, dict[str, str], Any]:
        sent = {"Authorization": f"Bearer {self._bearer}", "Content-Type": "application/json"}
        self._http.request(method, path, body=json.dumps(body) if body else None, headers=sent)
        if self.socket is None:
            self.socket = self._http.sock
        assert self._http.sock is self.socket, "the connection was replaced"
        response = self._http.getresponse()
        content = response.read()
        answer = {name.lower(): value for name, value in response.getheaders()}
        assert "close" not in answer.get("connection", ""), answer
        return response.status, answer, json.loads(content) if content else None

    def close(self) -> None:
        self._http.close()


def client_token(served: Served) -> str:
    created = json.loads(served.command("clients", "create", "--name", "backend", "--json").stdout)
    form = {"grant_type": "client_credentials"}
    auth = (created["client_id"], created["client_secret"])
    response = httpx.post(served.url + "/oauth/access_token", data=form, auth=auth)
    token: str = response.json()["access_token"]
    return token


def wait_ready(connection: Connection, bound: float = 5.0) -> float:
    """Seconds until `/readyz` answered 200 on this connection, asked every 50 ms."""
    started = time.monotonic()
    while connection.send("GET", "/readyz")[0] != 200:
        assert time.monotonic() - started < bound, "not ready again"
        time.sleep(0.05)
    return time.monotonic() - started


def test_served_full_disk_and_io_errors_keep_the_connection_and_recover(
    disk: Disk, served: Served
) -> None:
    served.start()
    connection = Connection(served.port, client_token(served))
    acknowledged: set[str] = set()

    def write(sku: str) -> tuple[int, dict[str, str], Any]:
        answer = connection.send("POST", "/v2/products", product(sku))
        if answer[0] == 201:
            acknowledged.add(sku)
        return answer

    assert write("BEFORE")[0] == 201
    disk.fill()
    status, answer, body = write("FULL")
    assert (status, answer["retry-after"], body["errors"][0]["status"]) == (503, "2", 503)
    assert connection.send("GET", "/readyz")[0] == 503  # on the same connection
    disk.free()
    assert write("AFTER-FULL")[0] == 201  # at once: nothing to restart
    print(f"\nfull disk: ready again {wait_ready(connection):.3f} s after space was freed")

    # I/O errors: the write-ahead log may not grow past its size now (EFBIG).
    assert served.process is not None
    wal = disk.view / "keyhouse.db-wal"
    limits = resource.prlimit(served.process.pid, resource.RLIMIT_FSIZE)
    resource.prlimit(served.process.pid, resource.RLIMIT_FSIZE, (wal.stat().st_size, limits[1]))
    refused = [write(f"IO-{number}")[0] for number in range(20)]  # the log grows within 20
    assert 503 in refused and set(refused) <= {201, 503}, refused
    assert connection.send("GET", "/readyz")[0] == 503
    resource.prlimit(served.process.pid, resource.RLIMIT_FSIZE, limits)
    assert write("AFTER-IO")[0] == 201
    print(f"I/O errors: ready again {wait_ready(connection):.3f} s after the limit was lifted")
    connection.close()
    served.stop()

    logged = served.logged()
    assert not [line for line in logged if line["level"] in {"ERROR", "CRITICAL"}]
    faults = {
        line["message"].split("(")[1].split(")")[0]
        for line in logged
        if line["message"].startswith("database unavailable")
    }
    assert {"OperationalError from OperationalError, SQLITE_FULL"} <= faults, faults
    assert "OperationalError from OperationalError, SQLITE_IOERR_WRITE" in faults, faults
    missing = acknowledged - set(product_skus(disk))
    assert not missing, f"{len(missing)} acknowledged writes lost"


def product_skus(disk: Disk) -> list[str]:
    with contextlib.closing(sqlite3.connect(disk.view / "keyhouse.db")) as connection:
        return [sku for (sku,) in connection.execute("SELECT sku FROM product")]


def test_serve_on_a_full_disk_stops_with_one_line(disk: Disk, served: Served) -> None:
    disk.fill()
    started = served.command("serve", "--port", str(served.port))
    assert started.returncode == 1
    assert "Traceback" not in started.stderr
    last = started.stderr.strip().splitlines()[-1]
    assert last == (
        "error: the database's storage refuses writes (SQLITE_FULL): free space on "
        f"{disk.view} or make it writable, then start keyhouse serve again"
    )
