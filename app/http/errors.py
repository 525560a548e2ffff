"""The one error hierarchy and its handler.

Every error a client can see is a `KeyhouseError`. Routes, grants and dependencies raise; the
handler below renders. Starlette finds a handler by walking the exception's class hierarchy, so
one registration covers every subclass, OAuth errors included.
"""

import logging
import re
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any, TypeVar

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response

from app.http.methods import allowed_methods, options_answer
from app.runtime.db import is_unavailable

logger = logging.getLogger("keyhouse.errors")

JSON_API = "application/json"
# What a database that is away raises (OSError too: connect failures come unwrapped); the
# handler below tells an outage (503) from a bug (500).
DATABASE_ERRORS = (SQLAlchemyError, OSError)
# What a 503 asks clients to wait: PostgreSQL restarts in about a second, and the pool
# reconnects on the next request once it is back.
RETRY_AFTER_SECONDS = 2
# nginx's status for a request whose client hung up before it was read whole: never sent (the
# server drops what is sent after a disconnect), but what the metrics count it as.
CLIENT_CLOSED_REQUEST = 499


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


Found = TypeVar("Found")


def found(resource: Found | None) -> Found:
    """The resource a route looked up, or a 404 where there is none."""
    if resource is None:
        raise NotFoundError()
    return resource


class MethodNotAllowedError(KeyhouseError):
    status_code = 405
    title = "Method Not Allowed"
    default_detail = "This method is not allowed on this path."


class InternalError(KeyhouseError):
    status_code = 500
    title = "Internal Server Error"
    default_detail = "Something went wrong on our side; the error has been logged."


class ServiceUnavailableError(KeyhouseError):
    """503 with `Retry-After` (RFC 9110 §15.6.4): something Keyhouse needs, such as the
    database, is away for a moment; the same request may well succeed later."""

    status_code = 503
    title = "Service Unavailable"
    default_detail = (
        "The service is unavailable for a moment; try again after the time in the "
        "Retry-After header."
    )

    def __init__(self, detail: str | None = None, *, retry_after: int = RETRY_AFTER_SECONDS):
        super().__init__(detail, headers={"Retry-After": str(retry_after)})


class HTTPStatusError(KeyhouseError):
    """Any other status Starlette raised itself, titled with its standard reason phrase."""

    def __init__(self, status: int, *, headers: Mapping[str, str] | None = None):
        self.status_code = status
        try:
            self.title = HTTPStatus(status).phrase
        except ValueError:
            self.title = "Error"
        super().__init__(f"{self.title}.", headers=headers)


# --- the error body in the OpenAPI schema -----------------------------------------------------


class ErrorObject(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: int
    title: str
    detail: str


class ErrorDocument(BaseModel):
    """The body of every error outside the token endpoint (`KeyhouseError.body`)."""

    model_config = ConfigDict(extra="forbid")
    errors: list[ErrorObject] = Field(min_length=1)


ERROR_DESCRIPTIONS = {
    400: "The request is malformed: a body, query or path parameter is invalid.",
    401: "No token, or a malformed, expired, revoked or foreign one; or wrong credentials.",
    403: "A valid token without the scope this request needs.",
    404: "No such resource, or none that this token may see.",
    409: "The request conflicts with an existing resource.",
    413: "The request body is larger than the server accepts.",
    429: "Too many requests: try again after `Retry-After` seconds.",
    503: "The database is away for a moment: try again after `Retry-After` seconds.",
}


def _header(description: str) -> dict[str, Any]:
    return {"description": description, "required": True, "schema": {"type": "string"}}


ERROR_HEADERS = {
    401: {"WWW-Authenticate": _header("The authentication scheme and error (RFC 6750 §3).")},
    403: {"WWW-Authenticate": _header("`insufficient_scope`, and the scope needed.")},
    429: {"Retry-After": _header("Seconds to wait before trying again.")},
    503: {"Retry-After": _header("Seconds to wait before trying again.")},
}


def error_responses(
    *statuses: int, model: type[BaseModel] = ErrorDocument
) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for these error statuses, each with `model` as its body."""
    return {
        status: {
            "model": model,
            "description": ERROR_DESCRIPTIONS[status],
            **({"headers": ERROR_HEADERS[status]} if status in ERROR_HEADERS else {}),
        }
        for status in statuses
    }


def json_response(
    body: Any, *, status_code: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """A JSON answer serialised here (orjson): every error, and the plain documents."""
    return Response(orjson.dumps(body), status_code, headers=headers, media_type=JSON_API)


def render(error: KeyhouseError) -> Response:
    return json_response(
        error.body(), status_code=error.status_code, headers=error.response_headers()
    )


async def _handle_keyhouse_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, KeyhouseError)
    return render(exc)


async def _handle_http_exception(request: Request, exc: Exception) -> Response:
    # Starlette's own 404/405 for unknown paths and methods, in our envelope; a 405 names
    # every method of the path (app/http/methods.py), and is no error for OPTIONS.
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 405:
        allow = allowed_methods(request)
        if request.method == "OPTIONS":
            return options_answer(allow)
        return render(MethodNotAllowedError(headers={"Allow": ", ".join(allow)}))
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


def database_outage(error: BaseException, *, method: str, path: str) -> bool:
    """Whether `error` says the database is away; if so, logs it in one warning line.

    The line names the error's classes and SQLSTATE, never its message (SQLAlchemy's quotes
    the statement), and carries no traceback: a database that is away is not a bug.
    """
    if not is_unavailable(error):
        return False
    # The path goes last: "…/access_token: …" would read as a token to the log's redaction.
    logger.warning("database unavailable (%s) on %s %s", _describe(error), method, path)
    return True


def _describe(error: BaseException) -> str:
    names = [type(error).__name__]
    driver = getattr(error, "orig", None)
    while driver is not None and len(names) < 3:  # SQLAlchemy's, the adapter's, the driver's
        names.append(type(driver).__name__)
        driver = getattr(driver, "orig", None)
    driver_error = getattr(error, "orig", None)
    sqlstate = getattr(driver_error, "sqlstate", None)
    # SQLite's own name of the error (SQLITE_FULL, SQLITE_IOERR_WRITE...): a fixed string.
    code = f"SQLSTATE {sqlstate}" if sqlstate else getattr(driver_error, "sqlite_errorname", None)
    return " from ".join(names) + (f", {code}" if code else "")


async def _handle_database_error(request: Request, exc: Exception) -> Response:
    if not database_outage(exc, method=request.method, path=request.url.path):
        raise exc  # a bug, not an outage: on to the 500 handler below
    return render(ServiceUnavailableError())


def client_gone(method: str, path: str) -> Response:
    """The answer to a request whose client left before its body arrived (or was cut off for
    sending it too slowly, app/runtime/protocol.py): the client's doing, not an error here."""
    logger.info("client gone before its request was read: %s %s", method, path)
    return Response(status_code=CLIENT_CLOSED_REQUEST)


async def _handle_client_gone(request: Request, _exc: Exception) -> Response:
    return client_gone(request.method, request.url.path)


async def _handle_unexpected(request: Request, exc: Exception) -> Response:
    # Logged with its traceback for operators; the client only learns that it failed.
    logger.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return render(InternalError())


def drop_422(schema: dict[str, Any]) -> None:
    """Takes out of an OpenAPI schema the 422 answers FastAPI documents for every route with
    parameters: validation errors are 400 here (the handler above), in the documented format."""
    for operations in schema["paths"].values():
        for operation in operations.values():
            operation["responses"].pop("422", None)
    for name in ("HTTPValidationError", "ValidationError"):
        schema.get("components", {}).get("schemas", {}).pop(name, None)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(KeyhouseError, _handle_keyhouse_error)
    app.add_exception_handler(StarletteHTTPException, _handle_http_exception)
    app.add_exception_handler(RequestValidationError, _handle_validation_error)
    for database_error in DATABASE_ERRORS:
        app.add_exception_handler(database_error, _handle_database_error)
    app.add_exception_handler(ClientDisconnect, _handle_client_gone)
    app.add_exception_handler(Exception, _handle_unexpected)
