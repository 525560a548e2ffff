"""Request ids: one per HTTP request, sent back as `X-Request-Id` and put on every log line.

An incoming `X-Request-Id` (from a proxy or the client) is kept if it is a plain token, so one id
can follow a request through several services; otherwise a new one is made. The id lives in a
context variable that the log formatter reads (`app/logs.py`).

The layer runs on every request, the token endpoint's included, so it is pure ASGI and does the
least it can: one scan of the raw headers, one raw header appended to the response start, and
nothing decoded or built that a log line might never need. `bench/request_id.py` measures it.
"""

import random
import re
import time
from contextvars import ContextVar

from starlette.types import ASGIApp, Message, Receive, Scope, Send

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


class RequestIdMiddleware:
    """Pure ASGI middleware that gives every HTTP request an id and every response the header."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = None
        for name, value in scope["headers"]:
            if name == HEADER:
                request_id = value if _SANE.fullmatch(value) else None
                break
        if request_id is None:
            request_id = new_request_id()
        token = current_request.set((request_id, time.time()))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                # A new list: a response may send a list it keeps (and sends again).
                message["headers"] = [*message.get("headers", ()), (HEADER, request_id)]
            await send(message)

        await self.app(scope, receive, send_with_id)
        # Only on success: when the app raises, the server logs the error after this layer
        # returns, in this same context, and that line should carry the id too. Servers run
        # each request in a task of its own, so the value goes no further.
        current_request.reset(token)
