"""The one error hierarchy and its handler.

Every error a client can see is a `KeyhouseError`. Routes, grants and dependencies raise; the
handler below renders. Starlette finds a handler by walking the exception's class hierarchy, so
one registration covers every subclass, OAuth errors included.
"""

import logging
import re
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

logger = logging.getLogger("keyhouse.errors")

JSON_API = "application/json"


class KeyhouseError(Exception):
    """An error with a fixed status, title and description, rendered as a JSON:API `errors` body."""

    status_code: int = 400
    title: str = "Bad Request"
    default_detail: str = "The request could not be processed."

    def __init__(self, detail: str | None = None, *, headers: Mapping[str, str] | None = None):
        # `detail` must be a fixed string chosen by the code, never text taken from the request.
        self.detail = detail or self.default_detail
        self.headers = dict(headers or {})
        super().__init__(self.detail)

    def body(self) -> dict[str, Any]:
        return {
            "errors": [{"status": self.status_code, "title": self.title, "detail": self.detail}]
        }

    def response_headers(self) -> dict[str, str]:
        return self.headers


class NotFoundError(KeyhouseError):
    status_code = 404
    title = "Not Found"
    default_detail = "The requested resource does not exist."


class MethodNotAllowedError(KeyhouseError):
    status_code = 405
    title = "Method Not Allowed"
    default_detail = "This method is not allowed on this path."


class ServiceUnavailableError(KeyhouseError):
    """503 with `Retry-After` (RFC 9110 §15.6.4): what Keyhouse needs (the database) is down."""

    status_code = 503
    title = "Service Unavailable"
    default_detail = "The service is unavailable for a moment; try again after Retry-After."

    def __init__(self, detail: str | None = None, *, retry_after: int = 5) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after)})


class InternalError(KeyhouseError):
    status_code = 500
    title = "Internal Server Error"
    default_detail = "Something went wrong on our side; the error has been logged."


class HTTPStatusError(KeyhouseError):
    """Any other status Starlette raised itself, titled with its standard reason phrase."""

    def __init__(self, status: int, *, headers: Mapping[str, str] | None = None):
        self.status_code = status
        try:
            self.title = HTTPStatus(status).phrase
        except ValueError:
            self.title = "Error"
        super().__init__(f"{self.title}.", headers=headers)


def render(error: KeyhouseError) -> Response:
    return Response(
        orjson.dumps(error.body()),
        status_code=error.status_code,
        media_type=JSON_API,
        headers=error.response_headers(),
    )


async def _handle_keyhouse_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, KeyhouseError)
    return render(exc)


async def _handle_http_exception(_request: Request, exc: Exception) -> Response:
    # Starlette's own 404/405 for unknown paths and methods, in our envelope.
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 405:
        return render(MethodNotAllowedError(headers=exc.headers))
    if exc.status_code == 404:
        return render(NotFoundError())
    return render(HTTPStatusError(exc.status_code, headers=exc.headers))


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_\[\]]{0,40}")


def _location(parts: Sequence[object]) -> str:
    # Field names come from our schemas, but a location can also hold a key taken from the
    # request (a dict's keys): only plain names and indexes are echoed back.
    shown = [str(p) if isinstance(p, int) or _NAME.fullmatch(str(p)) else "…" for p in parts]
    return ".".join(shown)


async def _handle_validation_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    problems = exc.errors()
    if not problems:
        return render(KeyhouseError("The request is malformed."))
    first = problems[0]
    # pydantic's messages describe the rule broken ("String should have at least 8
    # characters"), not the value given, so they are safe to return.
    message = str(first.get("msg", "invalid")).removeprefix("Value error, ")
    return render(KeyhouseError(f"Invalid {_location(first.get('loc', ()))}: {message}."))


async def _handle_unexpected(request: Request, exc: Exception) -> Response:
    # Logged with its traceback for operators; the client only learns that it failed.
    logger.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return render(InternalError())


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(KeyhouseError, _handle_keyhouse_error)
    app.add_exception_handler(StarletteHTTPException, _handle_http_exception)
    app.add_exception_handler(RequestValidationError, _handle_validation_error)
    app.add_exception_handler(Exception, _handle_unexpected)
