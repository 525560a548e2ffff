"""HTTP/1.1 as `keyhouse serve` speaks it: Uvicorn's httptools protocol, with limits.

Uvicorn's httptools protocol reads a request line and headers of any size and number, waits
forever for a connection's first byte or for the end of its headers, and answers every
connection it accepts (`limit_concurrency` counts them, but answers a plain-text 503 to every
request once the count is reached, old connections' included). This subclass refuses, before any
of it reaches the app, and in the contract's JSON error format with `Connection: close`:

- a request target longer than `max_url_bytes`: 414;
- more than `max_header_count` headers, or a request line and headers together longer than
  `max_header_bytes`: 431, counted as they arrive (a 64 MiB header is refused after its first
  36 KiB, 20,000 headers within 4 KiB past the hundredth);
- a connection that has not finished its headers `header_timeout_seconds` after it opened, or
  after the first byte of a later request: 408 if it sent part of a request, else just closed;
- a request whose body has not all arrived `body_timeout_seconds` after its headers ended: 408
  (the app, waiting on the body, is told the client is gone), or just closed if the app already
  answered without it;
- a request on a connection accepted while the worker already held `max_connections`: 503 with
  `Retry-After` (connections accepted earlier carry on).

Between requests, Uvicorn's own `timeout_keep_alive` (`keep_alive_seconds`) closes idle
keep-alive connections.

Every request pays for these checks, so they cost it a few microseconds (about 3 of a token
request's 130, bench/protocol_cost.py): no callback per header or per piece of URL, and no
timer per request. The parser is fed at most
`FEED_BYTES` at a time and the head checked between feeds (the parser keeps an unfinished
header whole, and parses a whole read of 256 KiB in one go); each connection has one timer,
which looks at when its pending head, or its pending body, began. The methods overridden here
are Uvicorn's (0.30 and later); tests/runtime/test_protocol.py drives them through a real
`keyhouse serve`.
"""

import asyncio
import logging
from dataclasses import dataclass
from functools import cache
from http import HTTPStatus
from typing import Any

import httptools
import orjson
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from app.http.errors import RETRY_AFTER_SECONDS
from app.runtime.settings import get_settings

logger = logging.getLogger("keyhouse.protocol")

# What each refusal says; fixed, never the request's own bytes.
DETAILS = {
    408: "The request's headers did not arrive in time.",
    414: "The request target is too long.",
    431: "The request's headers are too large or too many.",
    503: "The server holds as many connections as it takes; try again after Retry-After.",
}
BODY_LATE = "The request's body did not arrive in time."


# How long a refused connection is still read (and what comes dropped) before it is closed.
LINGER_SECONDS = 1.0
# The parser is fed at most this much at a time, the head checked in between: parsing 4 KiB of
# one-byte headers takes about a millisecond.
FEED_BYTES = 4096


@dataclass(frozen=True, slots=True)
class Limits:
    max_url_bytes: int
    max_header_bytes: int
    max_header_count: int
    header_timeout_seconds: float
    body_timeout_seconds: float
    max_connections: int

    @property
    def check_every(self) -> float:
        """How often a connection with nothing pending looks again: a head or a body that
        begins meanwhile is then seen before its own timeout has passed."""
        return min(self.header_timeout_seconds, self.body_timeout_seconds)


@cache
def limits() -> Limits:
    """This process's limits, read once from the settings."""
    settings = get_settings()
    return Limits(
        max_url_bytes=settings.max_url_bytes,
        max_header_bytes=settings.max_header_bytes,
        max_header_count=settings.max_header_count,
        header_timeout_seconds=settings.header_timeout_seconds,
        body_timeout_seconds=settings.body_timeout_seconds,
        max_connections=settings.max_connections,
    )


def refusal(status: int, default_headers: list[tuple[bytes, bytes]], detail: str) -> bytes:
    """A whole HTTP/1.1 response refusing a request with `status`, closing the connection."""
    phrase = HTTPStatus(status).phrase
    body = orjson.dumps({"errors": [{"status": status, "title": phrase, "detail": detail}]})
    headers = [
        *default_headers,
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    if status == 503:
        headers.append((b"retry-after", str(RETRY_AFTER_SECONDS).encode()))
    lines = [
        f"HTTP/1.1 {status} {phrase}".encode(),
        *[name + b": " + value for name, value in headers],
    ]
    return b"\r\n".join([*lines, b"", body])


class _Refused(Exception):
    """Raised in a parser callback to stop the parser (`refusing` says what to answer)."""


class LimitedHttpProtocol(HttpToolsProtocol):
    """Uvicorn's httptools protocol with bounds on what a request head may cost (above)."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limits = limits()
        self.head_pending = False  # a request began, and its headers have not ended
        self.head_since: float | None = None  # when (None: no head to wait for)
        self.head_bytes = 0  # fed since the pending head began, but for the feed it began in
        self.pending_timer: asyncio.TimerHandle | None = None
        self.body_since: float | None = None  # when the headers of a request still reading ended
        self.over_capacity = False
        self.refusing: int | None = None  # the status a parser callback refused with
        self.refused = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.over_capacity = len(self.connections) > self.limits.max_connections
        self.head_since = self.loop.time()  # a connection that never sends a byte times out too
        self._check_pending_later(self.limits.header_timeout_seconds)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.pending_timer is not None:
            self.pending_timer.cancel()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.refused:
            return  # refused: read and dropped until the connection closes
        self._unset_keepalive_if_required()
        if len(data) <= FEED_BYTES:
            self._feed(data)  # nearly every time: a whole request, or a piece of a body
            return
        view = memoryview(data)
        for start in range(0, len(data), FEED_BYTES):
            if not self._feed(bytes(view[start : start + FEED_BYTES])):
                return

    def _feed(self, data: bytes) -> bool:
        """Uvicorn's `data_received`, with the pending head checked after the parser's turn;
        whether to go on feeding what came."""
        pending_before = self.head_pending
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if self.refusing is not None:  # raised by a callback below
                self._refuse(self.refusing)
                return False
            logger.warning("Invalid HTTP request received.")
            self.send_400_response("Invalid HTTP request received.")
            return False
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
                return False  # the connection is the WebSocket protocol's now
            self._unsupported_upgrade_warning()
        if self.head_pending:
            if pending_before:
                self.head_bytes += len(data)
            status = self._head_refusal(head_ended=False)
            if status is not None:
                self._refuse(status)
                return False
        return True

    def _head_refusal(self, *, head_ended: bool) -> int | None:
        """414 or 431 if the head so far breaks a limit, else None."""
        limits = self.limits
        if len(self.url) > limits.max_url_bytes:
            return 414
        if len(self.headers) > limits.max_header_count:
            return 431
        # The feeds the head began and (if it did) ended in are not counted: each is at most
        # FEED_BYTES long. Summed exactly only when that bound is over the limit.
        if self.head_bytes + 2 * FEED_BYTES <= limits.max_header_bytes:
            return None
        if not head_ended:
            return 431 if self.head_bytes > limits.max_header_bytes else None
        size = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
        return 431 if size > limits.max_header_bytes else None

    def on_message_begin(self) -> None:
        HttpToolsProtocol.on_message_begin(self)  # not `super()`: a request's hottest path
        self.head_pending = True
        self.head_bytes = 0
        if self.head_since is None:  # a later request's clock starts with its first byte
            self.head_since = self.loop.time()

    def on_headers_complete(self) -> None:
        self.head_pending = False
        self.head_since = None
        status = self._head_refusal(head_ended=True)
        if status is None and self.over_capacity:
            if len(self.connections) > self.limits.max_connections:
                status = 503
            self.over_capacity = False  # others have closed since: served like any other
        if status is not None:
            self.refusing = status
            raise _Refused()
        HttpToolsProtocol.on_headers_complete(self)
        self.body_since = self.loop.time()  # until the message completes, bodiless or not

    def on_message_complete(self) -> None:
        HttpToolsProtocol.on_message_complete(self)
        self.body_since = None

    def _check_pending_later(self, seconds: float) -> None:
        self.pending_timer = self.loop.call_later(seconds, self._check_pending)

    def _check_pending(self) -> None:
        """One timer per connection: it checks the pending head or body, if any, and comes
        again."""
        self.pending_timer = None
        if self.refused or self.transport.is_closing():
            return
        now, limits = self.loop.time(), self.limits
        next_check = limits.check_every
        if self.body_since is not None:
            late = now - self.body_since - limits.body_timeout_seconds
            if late >= 0:
                self._body_late()
                return
            next_check = min(next_check, -late)
        if self.head_since is not None:
            late = now - self.head_since - limits.header_timeout_seconds
            if late >= 0 and self.head_pending:
                self._refuse(408)
                return
            if late >= 0:
                self.transport.close()  # a new connection that sent nothing: nobody to answer
                return
            next_check = min(next_check, -late)
        self._check_pending_later(next_check)

    def _body_late(self) -> None:
        """A request's body is late: 408 if the app has not answered (it is waiting on the
        body, and hears that the client is gone), else the connection is only closed."""
        cycle = self.cycle
        self.refused = True  # what else comes is read and dropped
        if cycle is None or cycle.response_started:
            self.transport.close()
            return
        cycle.disconnected = True  # the app's receive() returns http.disconnect, and what it
        cycle.message_event.set()  # sends is dropped: the 408 is the one answer
        self._answer_and_close(408, BODY_LATE)

    def _refuse(self, status: int) -> None:
        self.refused = True  # what else comes is read and dropped
        if self.cycle is not None and not self.cycle.response_complete:
            # A pipelined request behind one being answered: that answer goes first, alone.
            logger.warning("request refused at the connection: %d %s", status, DETAILS[status])
            self.cycle.keep_alive = False
            return
        self._answer_and_close(status, DETAILS[status])

    def _answer_and_close(self, status: int, detail: str) -> None:
        logger.warning("request refused at the connection: %d %s", status, detail)
        self.transport.write(refusal(status, self.server_state.default_headers, detail))
        # A lingering close: closed while the client still sends, the connection would be
        # reset, and a reset may discard the answer before the client reads it.
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(LINGER_SECONDS, self.transport.close)
