"""The resource-server side (RFC 6750): who is calling, with which scopes, for which shopper.

Issuing tokens is `app/oauth`'s business; this module only reads them. A request carries an
access token as `Authorization: Bearer …` and, for a logged-in shopper, a customer token in
`X-Moltin-Customer-Token` beside it. Both are JWTs this server signed, checked by
`app.oauth.verification.TokenVerifier` (signature, claims, revocation).

Every refusal is 401 (the SDKs re-authenticate only on 401) with an RFC 6750 challenge,
except a valid token without the scope a route needs: 403 `insufficient_scope`. The routes
declare what they need through `ReadCaller` and `WriteCaller`, and the OpenAPI schema (/docs)
says it from there: `document_security` below.
"""

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request, Security
from fastapi.security import (
    APIKeyHeader,
    HTTPAuthorizationCredentials,
    HTTPBearer,
    SecurityScopes,
)

from app.http.errors import JSON_API, KeyhouseError, NotFoundError
from app.oauth.scopes import READ, WRITE, format_scope
from app.oauth.verification import (
    REALM,
    AccessToken,
    AccountToken,
    CustomerToken,
    InvalidTokenError,
    TokenVerifier,
)

CUSTOMER_TOKEN_HEADER = "X-Moltin-Customer-Token"  # noqa: S105 (a header name)
# An account member's token for one account (app/accounts), beside the access token.
ACCOUNT_TOKEN_HEADER = "EP-Account-Management-Authentication-Token"  # noqa: S105 (a header name)
_AUTHORIZATION = b"authorization"
_CUSTOMER_TOKEN = CUSTOMER_TOKEN_HEADER.lower().encode("latin-1")
_ACCOUNT_TOKEN = ACCOUNT_TOKEN_HEADER.lower().encode("latin-1")
BOTH_SHOPPER_TOKENS = (
    "Send a customer token or an account management authentication token, not both."
)


class TwoShopperTokensError(KeyhouseError):
    """A customer token and an account token in one request: whose rows it means is unclear."""

    status_code = 400
    title = "Bad Request"
    default_detail = BOTH_SHOPPER_TOKENS


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
    """Who is calling: a client's access token, and the shopper's customer token or account
    token if any (never both)."""

    token: AccessToken
    customer: CustomerToken | None
    account: AccountToken | None = None

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

    def order_owner(self) -> tuple[uuid.UUID | None, uuid.UUID | None]:
        """For orders and carts: (customer, account) they must belong to, None for any. A
        backend sees all; a customer token its own; an account token its account's."""
        if self.is_backend:
            return None, None
        if self.account is not None:
            return None, self.account.account_id
        return self.customer_filter(), None

    def check_account(self, account_id: uuid.UUID) -> None:
        """May act for this account: a backend, or a token of that account (else 404). A
        read-only token without an account token may not at all (403)."""
        if self.is_backend:
            return
        if self.account is None:
            raise InsufficientScopeError(WRITE)
        if self.account.account_id != account_id:
            raise NotFoundError()

    def check_customer(self, customer_id: uuid.UUID) -> None:
        """May act for this customer: a backend, or that customer. For anyone else the
        customer does not exist (404, so ids are not confirmed)."""
        if self.customer_filter() not in (None, customer_id):
            raise NotFoundError()


# The two credentials as the OpenAPI schema (and /docs's "Authorize") knows them. They are called
# as dependencies of the scope check below, so that every route behind it documents them with
# its scopes; `_current_caller` reads the headers itself, since it must tell a missing token from
# a malformed one, and it depends on no scheme, so that it runs once per request whatever scopes
# the route's dependencies ask for (FastAPI keys a scheme's result by those scopes).
bearer_scheme = HTTPBearer(
    scheme_name="AccessToken",
    bearerFormat="JWT",
    auto_error=False,  # a missing token is our 401 with a challenge, not FastAPI's 403
    description="An access token (an RFC 9068 JWT) from `POST /oauth/access_token`.",
)
customer_token_scheme = APIKeyHeader(
    name=CUSTOMER_TOKEN_HEADER,
    scheme_name="CustomerToken",
    auto_error=False,
    description=(
        "A shopper's customer token from `POST /v2/customers/tokens`, sent beside the access "
        "token, never alone: it lets a storefront act for that customer."
    ),
)


Credentials = tuple[bytes | None, bytes | None, bytes | None]


def _credentials(request: Request) -> Credentials:
    """The request's first `Authorization`, customer-token and account-token headers as sent,
    in one pass over its headers (this runs on every protected request)."""
    authorization = customer_token = account_token = None
    for name, value in request.scope["headers"]:  # names are lower case in ASGI
        if name == _AUTHORIZATION and authorization is None:
            authorization = value
        elif name == _CUSTOMER_TOKEN and customer_token is None:
            customer_token = value
        elif name == _ACCOUNT_TOKEN and account_token is None:
            account_token = value
    return authorization, customer_token, account_token


class RememberedCallers:
    """The callers of recent requests, by the credential headers they sent.

    A storefront sends the same tokens with every request. Finding its `Caller` by the headers'
    bytes spares decoding and splitting a token of some 600 bytes, looking it up and building
    a `Caller` on every request: about half of what bearer validation cost a cached product
    read (bench/README.md). Whether the tokens have expired or been revoked since is still asked
    every time. Only callers whose every token verified are kept, at most `MAX_CALLERS`.
    """

    MAX_CALLERS = 10_000

    def __init__(self, verifier: TokenVerifier) -> None:
        self.verifier = verifier
        self._callers: dict[Credentials, Caller] = {}

    async def caller(self, credentials: Credentials) -> Caller:
        caller = self._callers.get(credentials)
        if caller is not None and self._still_valid(caller):
            return caller
        self._callers.pop(credentials, None)
        caller = await _verified_caller(self.verifier, credentials)
        if len(self._callers) >= self.MAX_CALLERS:
            self._callers.pop(next(iter(self._callers)))  # the oldest
        self._callers[credentials] = caller
        return caller

    def _still_valid(self, caller: Caller) -> bool:
        still_valid = self.verifier.still_valid
        return (
            still_valid(caller.token)
            and (caller.customer is None or still_valid(caller.customer))
            and (caller.account is None or still_valid(caller.account))
        )


async def _verified_caller(verifier: TokenVerifier, credentials: Credentials) -> Caller:
    raw_authorization, raw_customer_token, raw_account_token = credentials
    if raw_authorization is None:
        raise MissingTokenError()
    scheme, _, token = raw_authorization.decode("latin-1").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise InvalidTokenError()
    access = await verifier.access_token(token.strip())
    customer_token = (raw_customer_token or b"").decode("latin-1").strip()
    account_token = (raw_account_token or b"").decode("latin-1").strip()
    if customer_token and account_token:
        raise TwoShopperTokensError()
    if account_token:
        account = await verifier.account_token(account_token)
        if account.store_id != access.store_id:
            raise InvalidTokenError("The account token belongs to another store.")
        return Caller(token=access, customer=None, account=account)
    if not customer_token:
        return Caller(token=access, customer=None)
    customer = await verifier.customer_token(customer_token)
    if customer.store_id != access.store_id:
        raise InvalidTokenError("The customer token belongs to another store.")
    return Caller(token=access, customer=customer)


async def _current_caller(request: Request) -> Caller:
    callers: RememberedCallers = request.app.state.callers
    return await callers.caller(_credentials(request))


def require_scopes(caller: Caller, scopes: Iterable[str]) -> Caller:
    """The caller, whose access token must carry every scope asked for (RFC 6750 §3.1)."""
    for scope in scopes:
        if scope not in caller.token.scopes:
            raise InsufficientScopeError(scope)
    return caller


async def _caller_with_scopes(
    security_scopes: SecurityScopes,
    caller: Annotated[Caller, Depends(_current_caller)],
    _access_token: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
    _customer_token: Annotated[str | None, Depends(customer_token_scheme)],
) -> Caller:
    """The caller, with the scopes of the route's `Security` (RFC 6750 §3.1)."""
    return require_scopes(caller, security_scopes.scopes)


async def read_caller(request: Request) -> Caller:
    """What `ReadCaller` resolves to, for the reads served outside FastAPI's dependencies
    (app/store/reads.py): the caller, with the `read` scope (RFC 6750 §3.1)."""
    return require_scopes(await _current_caller(request), (READ,))


ReadCaller = Annotated[Caller, Security(_caller_with_scopes, scopes=[READ])]
WriteCaller = Annotated[Caller, Security(_caller_with_scopes, scopes=[WRITE])]


# --- the schema's account of it ----------------------------------------------------------
# FastAPI lists each scheme a route depends on as an alternative to the others, all with the
# route's scopes. The customer token is no alternative: it goes beside an access token, or
# nowhere. So each operation FastAPI found behind `_caller_with_scopes` is finished here: the
# access token with its scopes, alone or with the customer token; those scopes in words; and
# the bodies and challenges of its 401 and 403, as these classes render them.

ACCESS_TOKEN = bearer_scheme.scheme_name
CUSTOMER_TOKEN = customer_token_scheme.scheme_name


def document_security(schema: dict[str, Any]) -> None:
    """Finishes the security of every operation of an OpenAPI schema (RFC 6750 §2.1, §3)."""
    for operations in schema["paths"].values():
        for operation in operations.values():
            requirements = operation.get("security")
            if requirements:
                scopes = next(r[ACCESS_TOKEN] for r in requirements if ACCESS_TOKEN in r)
                _document_operation(operation, format_scope(scopes).split())


def _document_operation(operation: dict[str, Any], scopes: list[str]) -> None:
    operation["security"] = [
        {ACCESS_TOKEN: scopes},
        {ACCESS_TOKEN: scopes, CUSTOMER_TOKEN: []},
    ]
    needed = (
        f"Requires an access token with scope `{' '.join(scopes)}` "
        f"(`Authorization: Bearer …`); a shopper's customer token may go beside it "
        f"(`{CUSTOMER_TOKEN_HEADER}`), or an account member's account token "
        f"(`{ACCOUNT_TOKEN_HEADER}`)."
    )
    described = operation.get("description")
    operation["description"] = f"{needed}\n\n{described}" if described else needed
    responses = operation["responses"]
    missing, invalid = MissingTokenError(), InvalidTokenError()
    _add_examples(responses, 401, [("missing_token", missing), ("invalid_token", invalid)])
    refusals = [(f"without_{scope}", InsufficientScopeError(scope)) for scope in scopes]
    _add_examples(responses, 403, refusals)


def _add_examples(
    responses: dict[str, Any], status: int, errors: Sequence[tuple[str, KeyhouseError]]
) -> None:
    """Each error's body as an example of the response, and its challenge as the header's.
    (FastAPI's schema is a fresh copy: nothing in it is shared with another operation.)"""
    response = responses[str(status)]  # every protected router documents 401 and 403
    examples = response["content"][JSON_API].setdefault("examples", {})
    challenges = response["headers"]["WWW-Authenticate"].setdefault("examples", {})
    for name, error in errors:
        examples[name] = {"summary": error.detail, "value": error.body()}
        challenges[name] = {"value": error.response_headers()["WWW-Authenticate"]}
