"""The issuing side's routes: the token endpoint, revocation, introspection, discovery."""

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.types import Message

from app.http.errors import JSON_API, json_response
from app.oauth.authentication import AUTH_METHODS_SUPPORTED, ClientAuthenticator
from app.oauth.clients import CLIENT_CREDENTIALS
from app.oauth.cors import approve_origin
from app.oauth.documents import (
    INTROSPECTION_RESPONSES,
    REVOCATION_RESPONSES,
    TOKEN_ENDPOINT_OPENAPI,
    TOKEN_ENDPOINT_RESPONSES,
    TOKEN_OPERATION_OPENAPI,
    JWKSet,
    ServerMetadata,
)
from app.oauth.errors import NO_STORE, OAuthRoute, SlowDownError
from app.oauth.grants import GrantRegistry
from app.oauth.introspection import introspection_response, may_revoke, token_parameter
from app.oauth.keys import KeyRing
from app.oauth.registry import ClientRecord
from app.oauth.requests import TokenRequest, read_token_request
from app.oauth.revocation import apply_revocation, revoke_token
from app.oauth.scopes import SUPPORTED_SCOPES
from app.oauth.tokens import TokenIssuer
from app.oauth.verification import TokenVerifier, VerifiedToken
from app.observability.audit import record
from app.runtime.db import Database
from app.runtime.ratelimit import RateLimits, address_key, client_host
from app.runtime.settings import Settings

router = APIRouter(tags=["oauth"], route_class=OAuthRoute)

TOKEN_PATH = "/oauth/access_token"  # noqa: S105 (a path, not a secret)
TOKEN_ALIAS_PATH = "/oauth/token"  # noqa: S105 (a path)
TOKEN_PATHS = frozenset({TOKEN_PATH, TOKEN_ALIAS_PATH})
REVOKE_PATH = "/oauth/revoke"
INTROSPECT_PATH = "/oauth/introspect"
JWKS_PATH = "/.well-known/jwks.json"
# Public documents: cached briefly, so resource servers soon see a new key. Whether a browser
# may read them depends on its Origin, so a shared cache must keep one copy per Origin.
PUBLIC_CACHE = {"Cache-Control": "public, max-age=300", "Vary": "Origin"}


NO_STORE_RAW = [(name.lower().encode(), value.encode()) for name, value in NO_STORE.items()]
TOKEN_RESPONSE_HEADERS = [(b"content-type", JSON_API.encode()), *NO_STORE_RAW]


async def issue_token(request: Request) -> Response:
    """RFC 6749 §4.4 and the commerce API's implicit grant; errors per §5.2."""
    body = await token_response_body(request)
    response = Response(body, media_type=JSON_API)
    response.raw_headers.extend(NO_STORE_RAW)
    return response


async def token_response_body(request: Request) -> bytes:
    """The token response's JSON (RFC 6749 §5.1), or an `OAuthError` raised (§5.2)."""
    state = request.app.state
    limits: RateLimits = state.rate_limits
    wait = await limits.token_per_address.hit(address_key(client_host(request.scope)))
    if wait:
        raise SlowDownError(retry_after=wait)
    settings: Settings = state.settings
    token_request = await read_token_request(request, max_bytes=settings.max_token_request_bytes)
    grants: GrantRegistry = state.grants
    grant = await grants.grant_for(token_request).grant(token_request)
    # Per client only once it proved its secret: a public client id is anyone's to send, and
    # a limit on it would let one abuser deny tokens to every shopper of the store.
    if grant.grant_type == CLIENT_CREDENTIALS:
        wait = await limits.token_per_client.hit(grant.client.client_id)
        if wait:
            raise SlowDownError(retry_after=wait)
    issuer: TokenIssuer = state.token_issuer
    token = await issuer.issue(grant)
    if token_request.origin is not None:
        approve_origin(request)  # the grant checked it against this client's origins
    return orjson.dumps(token.response_body())


def token_response_start(body: bytes) -> Message:
    """The `http.response.start` of a token response: what Starlette's `Response` would send
    (`issue_token`), built from headers encoded once, since this is the busiest answer."""
    return {
        "type": "http.response.start",
        "status": 200,
        "headers": [
            (b"content-length", str(len(body)).encode()),
            *TOKEN_RESPONSE_HEADERS,
        ],
    }


# Requests are served by `TokenEndpoint` (endpoint.py), ahead of FastAPI's routing; this
# registration is what puts the endpoint in the OpenAPI schema and /docs.
router.add_api_route(
    TOKEN_PATH,
    issue_token,
    methods=["POST"],
    summary="Issue an access token (implicit or client_credentials)",
    responses=TOKEN_ENDPOINT_RESPONSES,
    openapi_extra=TOKEN_ENDPOINT_OPENAPI,
)


async def _named_token(
    request: Request, *, allow_public: bool
) -> tuple[TokenRequest, ClientRecord, VerifiedToken | None]:
    """What revocation and introspection start from: the request, the client calling (RFC 7009
    §2.1, RFC 7662 §2.1), and the token it names if that is valid now (else None)."""
    state = request.app.state
    settings: Settings = state.settings
    form = await read_token_request(request, max_bytes=settings.max_token_request_bytes)
    authenticator: ClientAuthenticator = state.client_authenticator
    client = await authenticator.authenticate_endpoint_client(form, allow_public=allow_public)
    verifier: TokenVerifier = state.token_verifier
    return form, client, await verifier.any_token(token_parameter(form))


@router.post(
    REVOKE_PATH,
    summary="Revoke an access or customer token (RFC 7009)",
    response_class=Response,  # an empty 200: no JSON in the schema
    responses=REVOCATION_RESPONSES,
    openapi_extra=TOKEN_OPERATION_OPENAPI,
)
async def revoke(request: Request) -> Response:
    """Always 200 for a token that is unknown, expired, already revoked or not the caller's
    (RFC 7009 §2.2): the answer tells nothing about the token."""
    state = request.app.state
    form, client, verified = await _named_token(request, allow_public=True)
    if verified is not None and may_revoke(client, verified):
        database: Database = state.database
        async with database.sessions() as session:
            revocation = revoke_token(
                session, token_id=verified.token_id, expires_at=verified.expires_at
            )
            record(
                session,
                "token.revoked",
                store_id=verified.store_id,
                actor=client.client_id,
                subject=verified.token_id,
                address=request.client.host if request.client else None,
            )
            await session.commit()
        apply_revocation(request, revocation)
    if form.origin is not None and form.origin in client.allowed_origins:
        approve_origin(request)  # a storefront logging its shopper out
    response = Response(status_code=200)
    response.raw_headers.extend(NO_STORE_RAW)
    return response


@router.post(
    INTROSPECT_PATH,
    summary="Introspect a token (RFC 7662; confidential clients)",
    responses=INTROSPECTION_RESPONSES,
    openapi_extra=TOKEN_OPERATION_OPENAPI,
)
async def introspect(request: Request) -> Response:
    _form, client, verified = await _named_token(request, allow_public=False)
    return json_response(introspection_response(client, verified), headers=NO_STORE)


@router.get(JWKS_PATH, summary="Public signing keys (RFC 7517)", responses={200: {"model": JWKSet}})
async def get_jwks(request: Request) -> Response:
    keyring: KeyRing = request.app.state.keyring
    return json_response(await keyring.jwks(), headers=PUBLIC_CACHE)


@router.get(
    "/.well-known/oauth-authorization-server",
    summary="Server metadata (RFC 8414)",
    responses={200: {"model": ServerMetadata}},
)
async def get_metadata(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    issuer = settings.issuer
    return json_response(
        {
            "issuer": issuer,
            "token_endpoint": issuer + TOKEN_PATH,
            "jwks_uri": issuer + JWKS_PATH,
            "revocation_endpoint": issuer + REVOKE_PATH,
            # A storefront (public client, id alone) may revoke its own shopper's token.
            "revocation_endpoint_auth_methods_supported": [*AUTH_METHODS_SUPPORTED, "none"],
            "introspection_endpoint": issuer + INTROSPECT_PATH,
            "introspection_endpoint_auth_methods_supported": list(AUTH_METHODS_SUPPORTED),
            # The commerce API's `implicit` is answered here, at the token endpoint; RFC 8414
            # reserves the name for the redirect flow, which needs an authorization endpoint
            # we do not have, so standard clients would reject metadata that listed it.
            "grant_types_supported": [CLIENT_CREDENTIALS],
            "token_endpoint_auth_methods_supported": list(AUTH_METHODS_SUPPORTED),
            "scopes_supported": list(SUPPORTED_SCOPES),
            # No authorization endpoint: tokens come straight from the token endpoint.
            "response_types_supported": ["token"],
        },
        headers=PUBLIC_CACHE,
    )
