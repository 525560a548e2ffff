"""The resource-server side (RFC 6750): who is calling, with which scopes, for which shopper.

Issuing tokens is `app/oauth`'s business; this module only reads them. A request carries an
access token as `Authorization: Bearer …` and, for a logged-in shopper, a customer token in
`X-Moltin-Customer-Token` beside it. Both are JWTs this server signed; they are verified
against the key ring's published keys, and a verified token is remembered until it expires,
so checking it again costs a dictionary lookup.

Every refusal is 401 (the SDKs re-authenticate only on 401) with an RFC 6750 challenge,
except a valid token without the scope a route needs: 403 `insufficient_scope`.
"""

import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

import jwt
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.errors import KeyhouseError, NotFoundError
from app.oauth.keys import KeyRing
from app.oauth.scopes import READ, WRITE
from app.oauth.tokens import ACCESS_TOKEN_TYPE

CUSTOMER_TOKEN_TYPE = "customer+jwt"  # noqa: S105 (a JWT `typ`, not a secret)
CUSTOMER_TOKEN_HEADER = "x-moltin-customer-token"  # noqa: S105 (a header name)
LEEWAY_SECONDS = 30  # clock skew allowed on `exp`, `iat`
MAX_REMEMBERED_TOKENS = 10_000
REQUIRED_CLAIMS = ["iss", "aud", "exp", "iat", "sub", "jti", "store_id"]
REALM = 'realm="keyhouse"'


class MissingTokenError(KeyhouseError):
    """RFC 6750 §3.1: no credentials at all; the challenge carries no error code."""

    status_code = 401
    title = "Unauthorized"
    default_detail = "An access token is required: Authorization: Bearer <token>."

    def response_headers(self) -> dict[str, str]:
        return {**self.headers, "WWW-Authenticate": f"Bearer {REALM}"}


class InvalidTokenError(KeyhouseError):
    """RFC 6750 §3.1 `invalid_token`: malformed, expired, foreign or otherwise unusable."""

    status_code = 401
    title = "Unauthorized"
    default_detail = "The access token is malformed, expired or was not issued here."

    def response_headers(self) -> dict[str, str]:
        challenge = f'Bearer {REALM}, error="invalid_token"'
        return {**self.headers, "WWW-Authenticate": challenge}


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
class AccessToken:
    """A verified access token (RFC 9068)."""

    token_id: str
    client_id: str
    store_id: uuid.UUID
    scopes: frozenset[str]
    grant_type: str
    expires_at: int


@dataclass(frozen=True, slots=True)
class CustomerToken:
    """A verified customer token: a shopper logged in with email and password."""

    token_id: str
    customer_id: uuid.UUID
    store_id: uuid.UUID
    expires_at: int


def _access_token(claims: dict[str, Any]) -> AccessToken:
    return AccessToken(
        token_id=claims["jti"],
        client_id=claims["sub"],
        store_id=uuid.UUID(claims["store_id"]),
        scopes=frozenset(str(claims.get("scope", "")).split()),
        grant_type=str(claims.get("grant_type", "")),
        expires_at=claims["exp"],
    )


def _customer_token(claims: dict[str, Any]) -> CustomerToken:
    return CustomerToken(
        token_id=claims["jti"],
        customer_id=uuid.UUID(claims["sub"]),
        store_id=uuid.UUID(claims["store_id"]),
        expires_at=claims["exp"],
    )


class TokenVerifier:
    """Verifies JWTs signed here (RFC 7519 §7.2, RFC 9068 §4) and remembers good ones."""

    def __init__(self, keyring: KeyRing, *, issuer: str, audience: str) -> None:
        self._keyring = keyring
        self._issuer = issuer
        self._audience = audience
        self._remembered: dict[tuple[str, str], AccessToken | CustomerToken] = {}

    async def access_token(self, token: str) -> AccessToken:
        verified = await self._verify(token, ACCESS_TOKEN_TYPE, _access_token)
        assert isinstance(verified, AccessToken)
        return verified

    async def customer_token(self, token: str) -> CustomerToken:
        verified = await self._verify(token, CUSTOMER_TOKEN_TYPE, _customer_token)
        assert isinstance(verified, CustomerToken)
        return verified

    async def _verify(
        self,
        token: str,
        typ: str,
        parse: Callable[[dict[str, Any]], AccessToken | CustomerToken],
    ) -> AccessToken | CustomerToken:
        remembered = self._remembered.get((typ, token))
        if remembered is not None:
            if remembered.expires_at + LEEWAY_SECONDS > time.time():
                return remembered
            del self._remembered[(typ, token)]
        claims = await self._claims(token, typ)
        try:
            verified = parse(claims)
        except (KeyError, ValueError, TypeError, AttributeError) as error:  # malformed claims
            raise InvalidTokenError() from error
        self._remember((typ, token), verified)
        return verified

    async def _claims(self, token: str, typ: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
            if header.get("typ") != typ or not isinstance(header.get("kid"), str):
                raise InvalidTokenError()
            key = await self._keyring.verification_key(header["kid"])
            if key is None or header.get("alg") != key.algorithm_name:
                raise InvalidTokenError()
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=[key.algorithm_name],
                audience=self._audience,
                issuer=self._issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": REQUIRED_CLAIMS},
            )
        except jwt.PyJWTError as error:
            raise InvalidTokenError() from error
        return claims

    def _remember(self, key: tuple[str, str], verified: AccessToken | CustomerToken) -> None:
        if len(self._remembered) >= MAX_REMEMBERED_TOKENS:
            self._remembered.pop(next(iter(self._remembered)))  # the oldest
        self._remembered[key] = verified


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
