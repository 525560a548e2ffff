"""The resource-server side (RFC 6750): who is calling, with which scopes, for which shopper.

Issuing tokens is `app/oauth`'s business; this module only reads them. A request carries an
access token as `Authorization: Bearer …` and, for a logged-in shopper, a customer token in
`X-Moltin-Customer-Token` beside it. Both are JWTs this server signed, checked by
`app.oauth.verification.TokenVerifier` (signature, claims, revocation).

Every refusal is 401 (the SDKs re-authenticate only on 401) with an RFC 6750 challenge,
except a valid token without the scope a route needs: 403 `insufficient_scope`.
"""

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.errors import KeyhouseError, NotFoundError
from app.oauth.scopes import READ, WRITE
from app.oauth.verification import (
    REALM,
    AccessToken,
    CustomerToken,
    InvalidTokenError,
    TokenVerifier,
)

CUSTOMER_TOKEN_HEADER = "x-moltin-customer-token"  # noqa: S105 (a header name)


class MissingTokenError(KeyhouseError):
    """RFC 6750 §3.1: no credentials at all; the challenge carries no error code."""

    status_code = 401
    title = "Unauthorized"
    default_detail = "An access token is required: Authorization: Bearer <token>."

    def response_headers(self) -> dict[str, str]:
        return {**self.headers, "WWW-Authenticate": f"Bearer {REALM}"}


class InsufficientScopeError(KeyhouseError):
    """RFC 6750 §3.1 `insufficient_scope`: a valid token that may not do this."""

    status_code = 403
    title = "Forbidden"
    default_detail = "This token does not have the scope this request needs."

    def __init__(self, scope: str) -> None:
        super().__init__(f"This request needs the '{scope}' scope.")
        self.scope = scope

    def response_headers(self) -> dict[str, str]:
        challenge = f'Bearer {REALM}, error="insufficient_scope", scope="{self.scope}"'
        return {**self.headers, "WWW-Authenticate": challenge}


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling: a client's access token, and the shopper's customer token if any."""

    token: AccessToken
    customer: CustomerToken | None

    @property
    def store_id(self) -> uuid.UUID:
        return self.token.store_id

    @property
    def is_backend(self) -> bool:
        """A token that may write: it acts for the whole store."""
        return WRITE in self.token.scopes

    def customer_filter(self) -> uuid.UUID | None:
        """For lists of customer-owned rows: None (all of them) or the one customer they must
        belong to. A read-only token without a customer token may not list them at all."""
        if self.is_backend:
            return None
        if self.customer is not None:
            return self.customer.customer_id
        raise InsufficientScopeError(WRITE)

    def check_customer(self, customer_id: uuid.UUID) -> None:
        """May act for this customer: a backend, or that customer. For anyone else the
        customer does not exist (404, so ids are not confirmed)."""
        if self.customer_filter() not in (None, customer_id):
            raise NotFoundError()


bearer_scheme = HTTPBearer(
    auto_error=False,  # a missing token is our 401 with a challenge, not FastAPI's 403
    description="An access token from POST /oauth/access_token.",
)


def _verifier(request: Request) -> TokenVerifier:
    verifier: TokenVerifier = request.app.state.token_verifier
    return verifier


async def _current_caller(
    request: Request,
    _documented: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> Caller:
    authorization = request.headers.get("authorization")
    if authorization is None:
        raise MissingTokenError()
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise InvalidTokenError()
    verifier = _verifier(request)
    access = await verifier.access_token(token.strip())
    raw_customer_token = request.headers.get(CUSTOMER_TOKEN_HEADER)
    if raw_customer_token is None or not raw_customer_token.strip():
        return Caller(token=access, customer=None)
    customer = await verifier.customer_token(raw_customer_token.strip())
    if customer.store_id != access.store_id:
        raise InvalidTokenError("The customer token belongs to another store.")
    return Caller(token=access, customer=customer)


def require_scope(scope: str) -> Callable[..., Awaitable[Caller]]:
    """A dependency: the caller, whose access token must carry `scope` (RFC 6750 §3.1)."""

    async def caller_with_scope(caller: Annotated[Caller, Depends(_current_caller)]) -> Caller:
        if scope not in caller.token.scopes:
            raise InsufficientScopeError(scope)
        return caller

    return caller_with_scope


ReadCaller = Annotated[Caller, Depends(require_scope(READ))]
WriteCaller = Annotated[Caller, Depends(require_scope(WRITE))]
