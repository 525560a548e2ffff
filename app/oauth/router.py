"""The issuing side's routes: the token endpoint and the discovery documents."""

from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.oauth.authentication import AUTH_METHODS_SUPPORTED
from app.oauth.clients import CLIENT_CREDENTIALS
from app.oauth.cors import approve_origin
from app.oauth.documents import (
    TOKEN_ENDPOINT_OPENAPI,
    TOKEN_ENDPOINT_RESPONSES,
    JWKSet,
    ServerMetadata,
)
from app.oauth.errors import NO_STORE
from app.oauth.grants import GrantRegistry
from app.oauth.keys import KeyRing
from app.oauth.requests import read_token_request
from app.oauth.scopes import SUPPORTED_SCOPES
from app.oauth.tokens import TokenIssuer
from app.settings import Settings

router = APIRouter(tags=["oauth"])

TOKEN_PATH = "/oauth/access_token"  # noqa: S105 (a path, not a secret)
TOKEN_ALIAS_PATH = "/oauth/token"  # noqa: S105 (a path)
TOKEN_PATHS = frozenset({TOKEN_PATH, TOKEN_ALIAS_PATH})
JWKS_PATH = "/.well-known/jwks.json"
# Public documents: cached briefly, so resource servers soon see a new key. Whether a browser
# may read them depends on its Origin, so a shared cache must keep one copy per Origin.
PUBLIC_CACHE = {"Cache-Control": "public, max-age=300", "Vary": "Origin"}


NO_STORE_RAW = [(name.lower().encode(), value.encode()) for name, value in NO_STORE.items()]


def _json(body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), media_type="application/json", headers=headers)


async def issue_token(request: Request) -> Response:
    """RFC 6749 §4.4 and the commerce API's implicit grant; errors per §5.2."""
    state = request.app.state
    settings: Settings = state.settings
    token_request = await read_token_request(request, max_bytes=settings.max_token_request_bytes)
    grants: GrantRegistry = state.grants
    grant = await grants.grant_for(token_request).grant(token_request)
    issuer: TokenIssuer = state.token_issuer
    token = await issuer.issue(grant)
    if token_request.origin is not None:
        approve_origin(request)  # the grant checked it against this client's origins
    response = Response(orjson.dumps(token.response_body()), media_type="application/json")
    response.raw_headers.extend(NO_STORE_RAW)  # encoded once, not per response
    return response


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


@router.get(JWKS_PATH, summary="Public signing keys (RFC 7517)", responses={200: {"model": JWKSet}})
async def get_jwks(request: Request) -> Response:
    keyring: KeyRing = request.app.state.keyring
    return _json(await keyring.jwks(), PUBLIC_CACHE)


@router.get(
    "/.well-known/oauth-authorization-server",
    summary="Server metadata (RFC 8414)",
    responses={200: {"model": ServerMetadata}},
)
async def get_metadata(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    issuer = settings.issuer
    return _json(
        {
            "issuer": issuer,
            "token_endpoint": issuer + TOKEN_PATH,
            "jwks_uri": issuer + JWKS_PATH,
            # The commerce API's `implicit` is answered here, at the token endpoint; RFC 8414
            # reserves the name for the redirect flow, which needs an authorization endpoint
            # we do not have, so standard clients would reject metadata that listed it.
            "grant_types_supported": [CLIENT_CREDENTIALS],
            "token_endpoint_auth_methods_supported": list(AUTH_METHODS_SUPPORTED),
            "scopes_supported": list(SUPPORTED_SCOPES),
            # No authorization endpoint: tokens come straight from the token endpoint.
            "response_types_supported": ["token"],
        },
        PUBLIC_CACHE,
    )
