"""Typed errors, read from the two error bodies of the Keyhouse contract.

The token endpoint answers in the OAuth hybrid shape (RFC 6749 §5.2 fields plus a JSON:API
`errors` array); the `/v2` routes answer with `errors` alone and put the RFC 6750 code in the
`WWW-Authenticate` challenge. Both become one `KeyhouseError` with the same fields, and a
subclass per code, so callers catch what they can handle (`RateLimitedError`: wait
`retry_after` seconds) and let the rest through.

An error keeps copies of the fields, never the response: the response holds its request, and
the request of a login holds the shopper's password.
"""

import re
from dataclasses import dataclass
from typing import Any

import httpx

_CHALLENGE_ERROR = re.compile(r'\berror="([^"]*)"')


@dataclass(frozen=True, slots=True)
class ErrorObject:
    """One entry of the JSON:API `errors` array."""

    status: int | None
    title: str | None
    detail: str | None


class KeyhouseError(Exception):
    """Keyhouse refused a request, or answered outside the contract.

    `status` is the HTTP status (None when no response was involved), `error` the OAuth code
    (from the body at `/oauth/*`, from the `WWW-Authenticate` challenge on `/v2`),
    `error_description` the human explanation, `errors` the JSON:API array, `retry_after` the
    seconds of a `Retry-After` header, and `request_id` the `X-Request-Id` to quote to an operator.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        error: str | None = None,
        error_description: str | None = None,
        errors: tuple[ErrorObject, ...] = (),
        retry_after: int | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.error_description = error_description
        self.errors = errors
        self.retry_after = retry_after
        self.request_id = request_id


class InvalidRequestError(KeyhouseError):
    """RFC 6749 §5.2 `invalid_request`: a missing, repeated or malformed parameter."""


class InvalidClientError(KeyhouseError):
    """RFC 6749 §5.2 `invalid_client`: unknown client id, wrong secret or disabled client."""


class UnauthorizedClientError(KeyhouseError):
    """RFC 6749 §5.2 `unauthorized_client`: this client may not use this grant or origin."""


class UnsupportedGrantTypeError(KeyhouseError):
    """RFC 6749 §5.2 `unsupported_grant_type`."""


class InvalidScopeError(KeyhouseError):
    """RFC 6749 §5.2 `invalid_scope`: more scope than the client may have."""


class InvalidTokenError(KeyhouseError):
    """RFC 6750 §3.1 `invalid_token`: the token is expired, revoked, malformed or foreign."""


class LoginRequiredError(InvalidTokenError):
    """The shopper's customer token expired or was refused: they must log in again.

    The client never keeps a password, so it cannot renew a customer token by itself."""


class InsufficientScopeError(KeyhouseError):
    """RFC 6750 §3.1 `insufficient_scope` (403): a valid token that may not do this."""


class InvalidCredentialsError(KeyhouseError):
    """A customer login with an unknown email or a wrong password (one answer for both)."""


class NotFoundError(KeyhouseError):
    """404: no such resource, or one the caller may not know exists."""


class RateLimitedError(KeyhouseError):
    """429 (`slow_down` at the token endpoint): try again after `retry_after` seconds."""


class UnexpectedResponseError(KeyhouseError):
    """A success response that is not what the contract promises (a proxy's page, say)."""


_BY_CODE: dict[str, type[KeyhouseError]] = {
    "invalid_request": InvalidRequestError,
    "invalid_client": InvalidClientError,
    "unauthorized_client": UnauthorizedClientError,
    "unsupported_grant_type": UnsupportedGrantTypeError,
    "invalid_scope": InvalidScopeError,
    "invalid_token": InvalidTokenError,
    "insufficient_scope": InsufficientScopeError,
    "slow_down": RateLimitedError,
}
_BY_STATUS: dict[int, type[KeyhouseError]] = {404: NotFoundError, 429: RateLimitedError}


def challenge_error(response: httpx.Response) -> str | None:
    """The `error` of a `WWW-Authenticate: Bearer …` challenge (RFC 6750 §3), if any."""
    match = _CHALLENGE_ERROR.search(response.headers.get("www-authenticate", ""))
    return match.group(1) if match else None


def is_refused(response: httpx.Response) -> bool:
    """A 401 `invalid_token` (RFC 6750 §3.1): a token sent was expired, revoked or foreign."""
    return response.status_code == 401 and challenge_error(response) == "invalid_token"


def _body(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:  # not JSON at all: a proxy's error page, say
        return {}
    return body if isinstance(body, dict) else {}


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _error_objects(body: dict[str, Any]) -> tuple[ErrorObject, ...]:
    entries = body.get("errors")
    if not isinstance(entries, list):
        return ()
    return tuple(
        ErrorObject(
            status=entry.get("status") if isinstance(entry.get("status"), int) else None,
            title=_text(entry.get("title")),
            detail=_text(entry.get("detail")),
        )
        for entry in entries
        if isinstance(entry, dict)
    )


def _retry_after(response: httpx.Response) -> int | None:
    value = response.headers.get("retry-after", "").strip()
    return int(value) if value.isdigit() else None  # Keyhouse sends whole seconds


def error_from_response(
    response: httpx.Response, *, error_class: type[KeyhouseError] | None = None
) -> KeyhouseError:
    """The typed error of an error response whose body has been read.

    `error_class` overrides the class chosen from the code and status, for callers that know
    more (a 401 at the login endpoint means wrong credentials, not a bad token)."""
    body = _body(response)
    errors = _error_objects(body)
    error = _text(body.get("error")) or challenge_error(response)
    description = _text(body.get("error_description")) or (errors[0].detail if errors else None)
    chosen = error_class or _BY_CODE.get(error or "") or _BY_STATUS.get(response.status_code)
    message = f"{response.status_code} {error or response.reason_phrase}"
    return (chosen or KeyhouseError)(
        f"{message}: {description}" if description else message,
        status=response.status_code,
        error=error,
        error_description=description,
        errors=errors,
        retry_after=_retry_after(response),
        request_id=response.headers.get("x-request-id"),
    )


def raise_for_error(response: httpx.Response) -> httpx.Response:
    """Raises the typed error of an error response, or returns the response unchanged.

    Reads the body if needed, so for a streamed response of an `AsyncClient`, call
    `await response.aread()` first. Call it on the final response, not in a response event
    hook: hooks also see the 401 that the auth answers by renewing its token and retrying."""
    if not response.is_error:
        return response
    response.read()
    raise error_from_response(response)
