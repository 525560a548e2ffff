"""OAuth 2.0 error responses (RFC 6749 §5.2), one class per error code.

The body carries both the RFC fields that OAuth libraries read and the JSON:API `errors` array
that the commerce SDKs read, so one response satisfies both kinds of client.
"""

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

from app.http.errors import KeyhouseError, ServiceUnavailableError, database_outage

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class OAuthError(KeyhouseError):
    """An RFC 6749 §5.2 error: `error` code, fixed description, `no-store` headers."""

    error: str = "invalid_request"

    def body(self) -> dict[str, Any]:
        return {
            "error": self.error,
            "error_description": self.detail,
            "errors": [{"status": self.status_code, "title": self.error, "detail": self.detail}],
        }

    def response_headers(self) -> dict[str, str]:
        return {**NO_STORE, **self.headers}


class InvalidRequestError(OAuthError):
    """RFC 6749 §5.2 `invalid_request`: missing, repeated or malformed parameters."""

    error = "invalid_request"
    default_detail = "The request is missing a parameter or is otherwise malformed."


class InvalidClientError(OAuthError):
    """RFC 6749 §5.2 `invalid_client`: unknown, unauthenticated or disabled client (always 401)."""

    status_code = 401
    error = "invalid_client"
    default_detail = "Client authentication failed."

    def response_headers(self) -> dict[str, str]:
        # Every 401 carries a challenge (RFC 9110 §15.5.2); Basic is the scheme we accept.
        return {**super().response_headers(), "WWW-Authenticate": 'Basic realm="keyhouse"'}


class UnauthorizedClientError(OAuthError):
    """RFC 6749 §5.2 `unauthorized_client`: this client may not use this grant (or origin)."""

    error = "unauthorized_client"
    default_detail = "This client is not allowed to use this grant type."


class UnsupportedGrantTypeError(OAuthError):
    """RFC 6749 §5.2 `unsupported_grant_type`."""

    error = "unsupported_grant_type"
    default_detail = "The grant type is not supported by this server."


class InvalidScopeError(OAuthError):
    """RFC 6749 §5.2 `invalid_scope`: unknown scope, or more than the client may have."""

    error = "invalid_scope"
    default_detail = "The requested scope is invalid or exceeds what this client may have."


class InvalidClientMetadataError(OAuthError):
    """RFC 7591 §3.2.2 `invalid_client_metadata`: a client registration that cannot be valid."""

    error = "invalid_client_metadata"
    default_detail = "The client metadata is invalid."


class SlowDownError(OAuthError):
    """Too many requests: 429 with `Retry-After` (RFC 6585 §4), in the shape of RFC 8628 §3.5's
    `slow_down`, the one RFC code for it."""

    status_code = 429
    error = "slow_down"
    default_detail = "Too many requests; try again after the time in the Retry-After header."

    def __init__(self, *, retry_after: int) -> None:
        super().__init__(headers={"Retry-After": str(retry_after)})


class TemporarilyUnavailableError(OAuthError, ServiceUnavailableError):
    """503 with `Retry-After`, in the shape of RFC 6749 §4.1.2.1's `temporarily_unavailable`:
    the database is away for a moment. A `ServiceUnavailableError` in the OAuth body."""

    error = "temporarily_unavailable"


class OAuthRoute(APIRoute):
    """A route of the issuing side: a database outage is answered in the OAuth error body
    (`temporarily_unavailable`), as the token endpoint answers it, not in the /v2 API's."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def handle_outage(request: Request) -> Response:
            try:
                return await handle(request)
            except Exception as error:
                if database_outage(error, method=request.method, path=request.url.path):
                    raise TemporarilyUnavailableError() from error
                raise

        return handle_outage
