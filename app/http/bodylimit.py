"""A request body size limit for every route, as a lean ASGI layer.

A declared `Content-Length` over the limit is refused before a byte of the body is read; a
chunked body, which declares no length, is counted as it streams and refused once it passes the
limit. Either way the answer is 413 in the JSON:API error format. Installed inside the token
endpoint's layer (main.py), which bounds its own, smaller bodies (oauth/requests.py).
"""

import contextlib

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.http.errors import KeyhouseError, render

# More digits than any limit has: such a length is too large whatever it says, and is never given
# to `int()` (which refuses strings of more than 4300 digits).
MAX_LENGTH_DIGITS = 18


class RequestTooLargeError(KeyhouseError):
    status_code = 413
    title = "Content Too Large"
    default_detail = "The request body is too large."


def declares_more_than(scope: Scope, max_bytes: int) -> bool:
    """Whether the request's `Content-Length` is over `max_bytes` (False if it declares none)."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            digits = value.strip()  # bytes: `isdigit()` is ASCII digits only
            if not digits.isdigit():
                return False  # malformed: the body is counted as it streams instead
            return len(digits) > MAX_LENGTH_DIGITS or int(digits) > max_bytes
    return False


class _BodyTooLarge(Exception):
    """Raised into the app from `receive`; the app's own answer to it is replaced by a 413."""


class BodySizeLimit:
    """ASGI middleware refusing request bodies larger than `max_bytes` with 413."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if declares_more_than(scope, self.max_bytes):
            await render(RequestTooLargeError())(scope, receive, send)
            return
        await self._counted(scope, receive, send)

    async def _counted(self, scope: Scope, receive: Receive, send: Send) -> None:
        received = 0
        too_large = started = False

        async def counting_receive() -> Message:
            nonlocal received, too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    too_large = True
                    raise _BodyTooLarge()
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if too_large and not started:
                return  # the app's answer to a body it could not read (FastAPI's 400, say)
            started = True
            await send(message)

        with contextlib.suppress(_BodyTooLarge):  # raised by `counting_receive`, if not caught
            await self.app(scope, counting_receive, guarded_send)
        if too_large and not started:
            await render(RequestTooLargeError())(scope, receive, send)
