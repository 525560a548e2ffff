"""The issuing side's requests and answers, as the OpenAPI schema documents them.

The token endpoint parses its own body and builds its answers by hand, on the hot path
(endpoint.py, requests.py); the discovery documents are plain dicts too. These models only
describe them, and tests/test_schema_fuzzing.py checks that every answer fits.
"""

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.errors import ErrorObject, error_responses
from app.oauth.requests import FORM, JSON


class Output(BaseModel):
    """A documented answer: exactly these fields, no others."""

    model_config = ConfigDict(extra="forbid")


GrantType = Literal["implicit", "client_credentials"]  # clients.GRANT_TYPES


class TokenRequest(BaseModel):
    """RFC 6749 §4.4.2 and the commerce API's implicit grant, as a form or a JSON object."""

    grant_type: GrantType
    client_id: str | None = Field(default=None, description="Or in HTTP Basic credentials.")
    client_secret: str | None = Field(default=None, description="Or in HTTP Basic credentials.")
    scope: str | None = Field(default=None, description="`read`, `write` or both.")


class TokenResponse(Output):
    """RFC 6749 §5.1, with the commerce API's `expires` (epoch seconds) and `identifier`."""

    access_token: str
    token_type: Literal["Bearer"]
    expires_in: int
    expires: int
    identifier: GrantType
    scope: str


class OAuthErrorDocument(Output):
    """RFC 6749 §5.2, with the JSON:API `errors` the commerce SDKs read (`OAuthError.body`)."""

    error: str
    error_description: str
    errors: list[ErrorObject] = Field(min_length=1)


class JWKSet(Output):
    """RFC 7517 §5: the published public keys."""

    keys: list[dict[str, Any]]


class ServerMetadata(Output):
    """RFC 8414 §2."""

    issuer: str
    token_endpoint: str
    jwks_uri: str
    revocation_endpoint: str
    revocation_endpoint_auth_methods_supported: list[str]
    introspection_endpoint: str
    introspection_endpoint_auth_methods_supported: list[str]
    grant_types_supported: list[str]
    token_endpoint_auth_methods_supported: list[str]
    scopes_supported: list[str]
    response_types_supported: list[str]


class TokenOperationRequest(BaseModel):
    """RFC 7009 §2.1 and RFC 7662 §2.1: the token, and the client's own credentials."""

    token: str
    token_type_hint: str | None = Field(
        default=None, description="`access_token` or `customer_token`; a hint only."
    )
    client_id: str | None = Field(default=None, description="Or in HTTP Basic credentials.")
    client_secret: str | None = Field(default=None, description="Or in HTTP Basic credentials.")


class IntrospectionResponse(Output):
    """RFC 7662 §2.2: only `active: false` for a token that is not valid for the caller."""

    active: bool
    scope: str | None = None
    client_id: str | None = None
    sub: str | None = None
    aud: str | None = None
    iss: str | None = None
    exp: int | None = None
    iat: int | None = None
    jti: str | None = None
    token_type: Literal["Bearer", "customer"] | None = None
    store_id: str | None = None
    grant_type: GrantType | None = None
    customer_id: str | None = None


_NO_STORE_HEADERS = {
    name: {"required": True, "schema": {"type": "string", "enum": [value]}}
    for name, value in {"Cache-Control": "no-store", "Pragma": "no-cache"}.items()
}
_TOKEN_REQUEST_SCHEMA = TokenRequest.model_json_schema()

TOKEN_ENDPOINT_OPENAPI: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            FORM: {"schema": _TOKEN_REQUEST_SCHEMA},
            JSON: {"schema": _TOKEN_REQUEST_SCHEMA},
        },
    },
}
TOKEN_ENDPOINT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": TokenResponse, "headers": _NO_STORE_HEADERS},
    **error_responses(400, 401, 429, model=OAuthErrorDocument),
}

_OPERATION_REQUEST_SCHEMA = TokenOperationRequest.model_json_schema()
TOKEN_OPERATION_OPENAPI: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            FORM: {"schema": _OPERATION_REQUEST_SCHEMA},
            JSON: {"schema": _OPERATION_REQUEST_SCHEMA},
        },
    },
}
REVOCATION_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "Revoked, or nothing to revoke.", "headers": _NO_STORE_HEADERS},
    **error_responses(400, 401, model=OAuthErrorDocument),
}
INTROSPECTION_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": IntrospectionResponse, "headers": _NO_STORE_HEADERS},
    **error_responses(400, 401, model=OAuthErrorDocument),
}
