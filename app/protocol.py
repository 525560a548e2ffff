"""HTTP/1.1 as `keyhouse serve` speaks it: Uvicorn's httptools protocol, with limits.

Uvicorn's httptools protocol reads a request line and headers of any size and number, waits
forever for a connection's first byte or for the end of its headers, and answers every
connection it accepts (`limit_concurrency` counts them, but answers a plain-text 503 to every
request once the count is reached, old connections' included). This subclass refuses, before any
of it reaches the app, and in the contract's JSON error format with `Connection: close`:

- a request target longer than `max_url_bytes`: 414;
- more than `max_header_count` headers, or a request line and headers together longer than
  `max_header_bytes` (counted as they arrive, so a 64 MiB header is refused at its first
  32 KiB): 431;
- a connection that has not finished its headers `header_timeout_seconds` after it opened, or
  after the first byte of a later request: 408 if it sent part of a request, else just closed;
- a request on a connection accepted while the worker already held `max_connections`: 503 with
  `Retry-After` (connections accepted earlier carry on).

Between requests, Uvicorn's own `timeout_keep_alive` (`keep_alive_seconds`) closes idle
keep-alive connections. The parser callbacks overridden here are Uvicorn's (0.30 and later);
tests/test_protocol.py drives them through a real `keyhouse serve`.
"""

import asyncio
import logging
from dataclasses import dataclass
from functools import cache
from http import HTTPStatus
from typing import Any, NoReturn

import httptools
import orjson
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from app.errors import RETRY_AFTER_SECONDS
from app.settings import get_settings

logger = logging.getLogger("keyhouse.protocol")

# What each refusal says; fixed, never the request's own bytes.
DETAILS = {
    408: "The request's headers did not arrive in time.",
    414: "The request target is too long.",
    431: "The request's headers are too large or too many.",
    503: "The server holds as many connections as it takes; try again after Retry-After.",
}


# How long a refused connection is still read (and what comes dropped) before it is closed.
LINGER_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class Limits:
    max_url_bytes: int
    max_header_bytes: int
    max_header_count: int
    header_timeout_seconds: float
    max_connections: int


@cache
def limits() -> Limits:
    """This process's limits, read once from the settings."""
    settings = get_settings()
    return Limits(
        max_url_bytes=settings.max_url_bytes,
        max_header_bytes=settings.max_header_bytes,
        max_header_count=settings.max_header_count,
        header_timeout_seconds=settings.header_timeout_seconds,
        max_connections=settings.max_connections,
    )


def refusal(status: int, default_headers: list[tuple[bytes, bytes]]) -> bytes:
    """A whole HTTP/1.1 response refusing a request with `status`, closing the connection."""
    phrase = HTTPStatus(status).phrase
    body = orjson.dumps(
        {"errors": [{"status": status, "title": phrase, "detail": DETAILS[status]}]}
    )
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
        self.in_head = True  # from the end of a request (or the connection's start) to the
        # end of the next one's headers
        self.head_bytes = 0  # received while in a head: never more than the head's size so far
        self.url_bytes = self.header_bytes = self.header_count = 0
        self.head_started = False  # a byte of the request came
        self.head_timer: asyncio.TimerHandle | None = None
        self.over_capacity = False
        self.refusing: int | None = None  # the status a parser callback refused with
        self.refused = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.over_capacity = len(self.connections) > self.limits.max_connections
        self._start_head_timer()  # a connection that never sends a byte is closed too

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        """Uvicorn's, with the head's bytes counted, and refusals answered as such."""
        if self.refused:
            return
        self._unset_keepalive_if_required()
        if self.in_head:
            self.head_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if self.refusing is not None:  # a callback below raised `_Refused`
                self._refuse(self.refusing)
                return
            logger.warning("Invalid HTTP request received.")
            self.send_400_response("Invalid HTTP request received.")
            return
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
        # The parser keeps an unfinished header whole: refused here, not when it ends.
        if self.in_head and self.head_bytes > self.limits.max_header_bytes:
            self._refuse(431)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.url_bytes = self.header_bytes = self.header_count = 0
        self.head_started = True
        if self.head_timer is None:  # a later request's clock starts with its first byte
            self._start_head_timer()

    def on_url(self, url: bytes) -> None:
        self.url_bytes += len(url)
        if self.url_bytes > self.limits.max_url_bytes:
            self._stop_parsing(414)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self.header_count += 1
        self.header_bytes += len(name) + len(value) + 4  # ": " and CRLF
        if (
            self.header_count > self.limits.max_header_count
            or self.url_bytes + self.header_bytes > self.limits.max_header_bytes
        ):
            self._stop_parsing(431)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self.in_head = self.head_started = False
        self.head_bytes = 0
        self._stop_head_timer()
        if self.over_capacity and len(self.connections) > self.limits.max_connections:
            self._stop_parsing(503)
        self.over_capacity = False  # others have closed since: served like any other
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self.in_head = True

    def _start_head_timer(self) -> None:
        self.head_timer = self.loop.call_later(
            self.limits.header_timeout_seconds, self._head_timed_out
        )

    def _stop_head_timer(self) -> None:
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None

    def _head_timed_out(self) -> None:
        self.head_timer = None
        if self.transport.is_closing():
            return
        if self.head_started:
            self._refuse(408)
        elif self.cycle is not None and not self.cycle.response_complete:
            self.cycle.keep_alive = False  # a response is on its way: close after it
        else:
            self.transport.close()  # nothing sent: nobody to answer

    def _stop_parsing(self, status: int) -> NoReturn:
        self.refusing = status
        raise _Refused()

    def _refuse(self, status: int) -> None:
        self.refused = True  # what else comes is read and dropped
        self._stop_head_timer()
        logger.warning("request refused at the connection: %d %s", status, DETAILS[status])
        if self.cycle is not None and not self.cycle.response_complete:
            # A pipelined request behind one being answered: that answer goes first, alone.
            self.cycle.keep_alive = False
            return
        self.transport.write(refusal(status, self.server_state.default_headers))
        # A lingering close: closed while the client still sends, the connection would be
        # reset, and a reset may discard the answer before the client reads it.
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(LINGER_SECONDS, self.transport.close)
