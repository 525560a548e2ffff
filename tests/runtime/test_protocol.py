"""The limits at the edge of the process (`app/runtime/protocol.py`), through a real
`keyhouse serve`: raw sockets, since no HTTP client sends what these tests send."""

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from uvicorn.config import Config
from uvicorn.server import ServerState

from app.runtime.protocol import LimitedHttpProtocol

from ..serve import Serving, serving

HEADER_TIMEOUT = 1.0  # seconds, for these servers: short, so that the tests are
KEEP_ALIVE = 1
BODY_TIMEOUT = 1.5
GET = b"GET /healthz HTTP/1.1\r\nHost: keyhouse.test\r\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serving]:
    environment = {
        "KEYHOUSE_HEADER_TIMEOUT_SECONDS": str(HEADER_TIMEOUT),
        "KEYHOUSE_KEEP_ALIVE_SECONDS": str(KEEP_ALIVE),
        "KEYHOUSE_BODY_TIMEOUT_SECONDS": str(BODY_TIMEOUT),
    }
    with serving(tmp_path_factory.mktemp("protocol"), workers=1, environment=environment) as up:
        yield up


def connect(server: Serving) -> socket.socket:
    address = urlsplit(server.url)
    connection = socket.create_connection((address.hostname, address.port), timeout=10)
    connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return connection


def read_all(connection: socket.socket) -> bytes:
    """Everything until the server closes the connection."""
    received = b""
    while chunk := connection.recv(65536):
        received += chunk
    return received


class Responses:
    """The responses coming back on one connection, read as they come (bodies with
    Content-Length only): what follows one response stays for the next."""

    def __init__(self, connection: socket.socket) -> None:
        self.connection = connection
        self.received = b""

    def next(self) -> tuple[int, dict[str, str], bytes]:
        while b"\r\n\r\n" not in self.received:
            self._receive()
        head, _, self.received = self.received.partition(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        pairs = (line.partition(":") for line in lines)
        headers = {name.lower(): value.strip() for name, _, value in pairs}
        length = int(headers["content-length"])
        while len(self.received) < length:
            self._receive()
        body, self.received = self.received[:length], self.received[length:]
        return int(status_line.split()[1]), headers, body

    def _receive(self) -> None:
        chunk = self.connection.recv(65536)
        assert chunk, f"closed mid-response: {self.received!r}"
        self.received += chunk


def read_response(connection: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """The one response a connection gets (or the first)."""
    return Responses(connection).next()


def exchange(server: Serving, request: bytes) -> tuple[int, dict[str, str], bytes]:
    with connect(server) as connection:
        connection.sendall(request)
        return read_response(connection)


def assert_refused(answer: tuple[int, dict[str, str], bytes], status: int, detail: str) -> None:
    got, headers, body = answer
    assert got == status
    assert headers["connection"] == "close"
    assert headers["content-type"] == "application/json"
    error = {"status": status, "title": HTTPStatus(status).phrase, "detail": detail}
    assert json.loads(body) == {"errors": [error]}


def request_with(target: bytes = b"/healthz", headers: list[bytes] | None = None) -> bytes:
    lines = [b"GET " + target + b" HTTP/1.1", b"Host: keyhouse.test", *(headers or [])]
    return b"\r\n".join([*lines, b"", b""])


def test_a_request_target_past_the_limit_is_414(server: Serving) -> None:
    target = b"/" + b"eyJ" * 2731  # 8,194 bytes: past the 8 KiB default
    assert_refused(exchange(server, request_with(target)), 414, "The request target is too long.")
    assert exchange(server, request_with(target[:8000]))[0] == 404  # within it: served


def test_headers_past_the_size_limit_are_431(server: Serving) -> None:
    too_large = request_with(headers=[b"X-Padding: " + b"a" * 33_000])
    detail = "The request's headers are too large or too many."
    assert_refused(exchange(server, too_large), 431, detail)
    assert exchange(server, request_with(headers=[b"X-Padding: " + b"a" * 20_000]))[0] == 200


def test_a_header_without_end_is_refused_before_it_is_all_read(server: Serving) -> None:
    # Uvicorn read a 64 MiB header whole and answered it; the count stops at the limit.
    with connect(server) as connection:
        connection.sendall(GET + b"X-Padding: ")
        for _ in range(8):  # 512 KiB, and never a line end
            connection.sendall(b"a" * 65_536)
        status, _headers, _body = read_response(connection)
    assert status == 431


def test_more_headers_than_the_limit_are_431(server: Serving) -> None:
    many = [b"X-Header-%d: 1" % n for n in range(100)]  # and Host: 101
    detail = "The request's headers are too large or too many."
    assert_refused(exchange(server, request_with(headers=many)), 431, detail)
    assert exchange(server, request_with(headers=many[:99]))[0] == 200


def test_a_connection_that_sends_nothing_is_closed(server: Serving) -> None:
    with connect(server) as connection:
        started = time.monotonic()
        assert read_all(connection) == b""  # closed, and nothing said: nobody asked anything
        assert HEADER_TIMEOUT * 0.9 <= time.monotonic() - started < HEADER_TIMEOUT + 3


def test_unfinished_headers_get_408(server: Serving) -> None:
    with connect(server) as connection:
        connection.sendall(GET)  # and never the empty line that ends the headers
        started = time.monotonic()
        answer = read_response(connection)
        assert time.monotonic() - started < HEADER_TIMEOUT + 3
    assert_refused(answer, 408, "The request's headers did not arrive in time.")


def test_a_client_sending_its_headers_a_byte_at_a_time_is_cut_off(server: Serving) -> None:
    # Each byte would restart a timer that measured silence; this one measures the whole head.
    with connect(server) as connection:
        started = time.monotonic()
        for byte in GET + b"X-Slow: " + b"a" * 100:
            try:
                connection.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                break
            time.sleep(0.05)
            if time.monotonic() - started > HEADER_TIMEOUT + 3:
                break
        assert read_response(connection)[0] == 408
        assert time.monotonic() - started < HEADER_TIMEOUT + 3


def test_a_slow_client_within_the_timeout_is_served(server: Serving) -> None:
    request = request_with()
    with connect(server) as connection:
        for start in range(0, len(request), 10):
            connection.sendall(request[start : start + 10])
            time.sleep(HEADER_TIMEOUT / 20)
        assert read_response(connection)[0] == 200


def test_each_request_on_a_kept_alive_connection_has_its_own_clock(server: Serving) -> None:
    with connect(server) as connection:
        for _ in range(3):  # 3 requests over more time than one head may take
            connection.sendall(request_with())
            assert read_response(connection)[0] == 200
            time.sleep(HEADER_TIMEOUT * 0.6)


def test_an_idle_kept_alive_connection_is_closed(server: Serving) -> None:
    with connect(server) as connection:
        connection.sendall(request_with())
        assert read_response(connection)[0] == 200
        started = time.monotonic()
        assert read_all(connection) == b""
        assert time.monotonic() - started < KEEP_ALIVE + 3


def test_pipelined_requests_are_each_answered(server: Serving) -> None:
    with connect(server) as connection:
        connection.sendall(request_with() * 3)
        responses = Responses(connection)
        assert [responses.next()[0] for _ in range(3)] == [200, 200, 200]


def test_connections_past_the_cap_are_answered_503(tmp_path: Path) -> None:
    environment = {"KEYHOUSE_MAX_CONNECTIONS": "3"}
    with serving(tmp_path, workers=1, environment=environment) as capped:
        connections = [connect(capped) for _ in range(4)]
        try:
            time.sleep(0.2)  # all four accepted
            connections[3].sendall(request_with())
            status, headers, _body = read_response(connections[3])
            assert status == 503
            assert headers["retry-after"] == "2"
            detail = (
                "The server holds as many connections as it takes; try again after Retry-After."
            )
            assert_refused((status, headers, _body), 503, detail)
            # The connections accepted within the cap carry on.
            connections[0].sendall(request_with())
            assert read_response(connections[0])[0] == 200
            # One past the cap when it came is served if others have closed by its request.
            connections.append(connect(capped))
            for connection in connections[1:4]:
                connection.close()
            time.sleep(1.5)  # the refused one lingers for a second
            connections[4].sendall(request_with())
            assert read_response(connections[4])[0] == 200
        finally:
            for connection in connections:
                connection.close()


# In-process: the work a read of hostile bytes costs the worker before it is refused.


class Transport:
    """What the protocol writes, and whether it closed; no socket."""

    def __init__(self) -> None:
        self.written = b""
        self.closing = False

    def write(self, data: bytes) -> None:
        self.written += data

    def get_extra_info(self, name: str, default: object = None) -> object:
        return ("127.0.0.1", 8000) if name in ("sockname", "peername") else default

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None: ...

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...


SEEN: list[str] = []  # the paths the app below was asked


async def answer(scope: Any, receive: Any, send: Any) -> None:
    SEEN.append(scope["path"])
    headers = [(b"content-length", b"0")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b""})


async def one_read(data: bytes) -> tuple[Transport, float]:
    """`data` as one read of a fresh connection: what was written once the app has answered,
    and the CPU time the read took."""
    SEEN.clear()
    config = Config(app=answer, lifespan="off", log_config=None, access_log=False)
    state = ServerState()
    protocol = LimitedHttpProtocol(config, state, {})
    transport = Transport()
    protocol.connection_made(transport)  # type: ignore[arg-type]
    started = time.process_time()
    protocol.data_received(data)
    spent = time.process_time() - started
    await asyncio.gather(*state.tasks)
    protocol.connection_lost(None)
    return transport, spent


# A read of 256 KiB holds 65,000 one-byte headers; Uvicorn's protocol parses them all (60 ms
# here) before the app could count them.
MANY_HEADERS = b"GET / HTTP/1.1\r\n" + b"a:\r\n" * 65_000


async def test_a_read_full_of_headers_is_refused_after_the_first_few_thousand() -> None:
    transport, spent = await one_read(MANY_HEADERS)
    assert transport.written.startswith(b"HTTP/1.1 431 ")
    assert SEEN == []
    assert spent < 0.02


async def test_headers_behind_another_request_in_the_same_read_are_counted_too() -> None:
    transport, spent = await one_read(request_with() + MANY_HEADERS)
    # The first request is answered, alone; then the connection closes.
    assert SEEN == ["/healthz"]
    assert transport.written.startswith(b"HTTP/1.1 200 ")
    assert transport.written.count(b"HTTP/1.1") == 1
    assert transport.closing
    assert spent < 0.02


def post_with_body_of(length: int, path: bytes = b"/v2/customers") -> bytes:
    lines = [b"POST " + path + b" HTTP/1.1", b"Host: keyhouse.test"]
    lines += [b"Content-Type: application/json", b"Content-Length: %d" % length]
    return b"\r\n".join([*lines, b"", b""])


@pytest.mark.parametrize("path", [b"/v2/customers", b"/oauth/access_token"])
def test_a_body_that_trickles_in_is_cut_off_with_408(server: Serving, path: bytes) -> None:
    # Headers on time, then a byte of body every 50 ms: each byte would restart a timer that
    # measured silence; this one measures the whole body, from the headers' end.
    with connect(server) as connection:
        connection.sendall(post_with_body_of(1000, path))
        started = time.monotonic()
        for _ in range(int((BODY_TIMEOUT + 3) / 0.05)):
            try:
                connection.sendall(b" ")
            except (BrokenPipeError, ConnectionResetError):
                break
            time.sleep(0.05)
            if time.monotonic() - started > BODY_TIMEOUT + 0.5:
                break
        answer = read_response(connection)
        assert BODY_TIMEOUT * 0.9 <= time.monotonic() - started < BODY_TIMEOUT + 3
    assert_refused(answer, 408, "The request's body did not arrive in time.")


def test_a_slow_body_within_the_timeout_is_served(server: Serving) -> None:
    body = b'{"data": {"type": "customer", "name": "Ron", "email": "ron@example.com"}}'
    with connect(server) as connection:
        connection.sendall(post_with_body_of(len(body)))
        for start in range(0, len(body), 10):
            connection.sendall(body[start : start + 10])
            time.sleep(BODY_TIMEOUT / 20)
        status, _headers, _body = read_response(connection)
    assert status in (400, 401)  # answered by the app (no token sent), not cut off


def test_a_client_gone_mid_body_is_no_error_in_the_log(server: Serving) -> None:
    for path in (b"/v2/customers", b"/oauth/access_token"):
        with connect(server) as connection:
            connection.sendall(post_with_body_of(1000, path) + b'{"data": ')
            time.sleep(0.2)  # the app is waiting on the rest of the body
        assert exchange(server, request_with())[0] == 200  # the worker is fine
    time.sleep(0.5)
    errors = [line for line in server.log.read_text().splitlines() if '"level":"ERROR"' in line]
    assert not errors, errors
