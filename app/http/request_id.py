"""Request ids: one per HTTP request, sent back as `X-Request-Id` and put on every log line.

An incoming `X-Request-Id` (from a proxy or the client) is kept if it is a plain token, so one id
can follow a request through several services; otherwise a new one is made. The id lives in a
context variable that the log formatter reads (`app/observability/logs.py`).

The outermost layer (`app/http/telemetry.py`) gives every request its id, the token endpoint's
included, so this does the least it can: one scan of the raw headers, and nothing decoded or
built that a log line might never need.
"""

import random
import re
from contextvars import ContextVar

HEADER = b"x-request-id"
# Anything else (too long, spaces, quotes, control characters) could forge or garble log
# lines and response headers, so it is replaced rather than escaped.
_SANE = re.compile(rb"[A-Za-z0-9._-]{1,64}")

# The request being served: its id (ASCII bytes, as sent in the header) and the wall-clock time
# it arrived (comparable with `LogRecord.created`). A plain tuple: it is made for every request,
# and read only when a line is logged.
current_request: ContextVar[tuple[bytes, float] | None] = ContextVar(
    "keyhouse_request", default=None
)


def new_request_id() -> bytes:
    # 128 random bits in hex, the size of a uuid4, at a tenth of the cost of uuid4() or
    # os.urandom (a system call). Ids must be unique, not unpredictable; `random` is reseeded
    # in every forked or spawned worker.
    return random.getrandbits(128).to_bytes(16).hex().encode()


def request_id_from(headers: list[tuple[bytes, bytes]]) -> bytes:
    """The request's incoming `X-Request-Id` if it is a plain token, else a new id."""
    for name, value in headers:
        if name == HEADER:
            return value if _SANE.fullmatch(value) else new_request_id()
    return new_request_id()
