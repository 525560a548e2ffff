"""The issuing side's requests and answers, as the OpenAPI schema documents them.

The token endpoint parses its own body and builds its answers by hand, on the hot path
(endpoint.py, requests.py); the discovery documents are plain dicts too. These models only
describe them, and tests/test_schema_fuzzing.py checks that every answer fits.
"""

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.http.errors import ErrorObject, error_responses
from app.oauth.errors import (
    NO_STORE,
    InvalidClientError,
    InvalidRequestError,
    InvalidScopeError,
    OAuthError,
    SlowDownError,
    UnauthorizedClientError,
    UnsupportedGrantTypeError,
)
from app.oauth.grants import MISSING_GRANT_TYPE
from app.oauth.requests import FORM, JSON


class Output(BaseModel):
    """A documented answer: exactly these fields, no others."""

    model_config = ConfigDict(extra="forbid")


GrantType = Literal["implicit", "client_credentials"]  # clients.GRANT_TYPES


# The endpoints read strings only: an empty one counts as absent (RFC 6749 §3.1), and so does
# a JSON `null` (requests.py). So the schema asks for strings, non-empty and never `null` where
# a parameter is required, and a string or `null` where it may be left out.


def optional(about: str) -> Any:
    """A parameter that may be left out (or empty, or in JSON `null`)."""
    return Field(default=None, description=about)


OptionalText = str | None
CLIENT_ID_ABOUT = (
    "Required, unless HTTP Basic credentials carry it (client_secret_basic); beside them, "
    "it must be the same id."
)
# An empty parameter counts as absent (RFC 6749 §3.1), so the optional ones may be empty.
SCOPE_PATTERN = r"^(?:\s*(?:read|write)(?:\s+(?:read|write))*\s*)?$"
READ_ONLY_PATTERN = r"^(?:\s*read(?:\s+read)*\s*)?$"


def _scope_per_grant(schema: dict[str, Any]) -> None:
    """An implicit token is read-only (grants.py), so an implicit request asks for `read` at
    most. (A client_credentials client may have been given less than both: `invalid_scope`.)"""
    _other_parameters(schema)
    implicit = {"grant_type": {"const": "implicit"}, "scope": {"pattern": READ_ONLY_PATTERN}}
    credentials = {"grant_type": {"const": "client_credentials"}}
    schema["anyOf"] = [{"properties": implicit}, {"properties": credentials}]


def _other_parameters(schema: dict[str, Any]) -> None:
    """Other parameters are ignored, if strings or `null` (in JSON, a number, a list or an
    object is `invalid_request`)."""
    schema["additionalProperties"] = {"type": ["string", "null"]}


class Parameters(BaseModel):
    """Parameters of the token endpoint's kind."""

    model_config = ConfigDict(json_schema_extra=_other_parameters)


class TokenRequest(Parameters):
    """RFC 6749 §4.4.2 and the commerce API's implicit grant, as a form or a JSON object."""

    model_config = ConfigDict(json_schema_extra=_scope_per_grant)

    grant_type: GrantType
    client_id: str = Field(min_length=1, description=CLIENT_ID_ABOUT)
    client_secret: OptionalText = optional(
        "client_credentials: the secret (client_secret_post), or in HTTP Basic."
    )
    scope: Annotated[str, Field(pattern=SCOPE_PATTERN)] | None = optional(
        "`read`, `write` or both: narrows what the client may have."
    )


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


class TokenOperationRequest(Parameters):
    """RFC 7009 §2.1 and RFC 7662 §2.1: the token, and the client's own credentials."""

    token: str = Field(min_length=1)
    token_type_hint: OptionalText = optional("`access_token` or `customer_token`; a hint only.")
    client_id: str = Field(min_length=1, description=CLIENT_ID_ABOUT)
    client_secret: OptionalText = optional(
        "A confidential client's secret, or in HTTP Basic; a public client has none."
    )


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


# --- examples -------------------------------------------------------------------------------
# Requests and answers of CONTRACT §1, for /docs. The error bodies are rendered by the error
# classes themselves; tests/oauth/test_documents.py sends each request example and each error's
# case to the endpoint and compares the answers with these.

EXAMPLE_CLIENT_ID = "5Tq8ZcRk2WnJ4bVx7HmP3sLd9GfY6aEu"  # as `new_client_id` makes them
EXAMPLE_CLIENT_SECRET = "Vb4_hN9qLx2-Rt7KzW3mYc8PdF5sJg6AeU1oQi0TnXw"  # noqa: S105 (an example)
EXAMPLE_ACCESS_TOKEN = "eyJhbGciOiJFUzI1NiIsImtpZCI6Ii4uLiIsInR5cCI6ImF0K2p3dCJ9.eyJ….…"  # noqa: S105

TOKEN_REQUEST_EXAMPLES: dict[str, dict[str, Any]] = {
    "implicit": {
        "summary": "implicit: a client id alone (storefronts)",
        "value": {"grant_type": "implicit", "client_id": EXAMPLE_CLIENT_ID},
    },
    "client_secret_post": {
        "summary": "client_credentials, the secret in the body (client_secret_post)",
        "value": {
            "grant_type": "client_credentials",
            "client_id": EXAMPLE_CLIENT_ID,
            "client_secret": EXAMPLE_CLIENT_SECRET,
        },
    },
    "client_secret_basic": {
        "summary": "client_credentials, id and secret in HTTP Basic (client_secret_basic)",
        "description": (
            "Sent with `Authorization: Basic base64(client_id:client_secret)`, both "
            "form-urlencoded first (RFC 6749 §2.3.1). A body `client_id` equal to the Basic one "
            "is allowed; a body `client_secret` beside Basic is `invalid_request`."
        ),
        "value": {"grant_type": "client_credentials"},
    },
}


def _token_response(grant_type: GrantType, scope: str) -> dict[str, Any]:
    expires_in = 3600
    return {
        "access_token": EXAMPLE_ACCESS_TOKEN,
        "token_type": "Bearer",
        "expires_in": expires_in,
        "expires": 1764317634 + expires_in,  # `iat` + `expires_in`, in epoch seconds
        "identifier": grant_type,
        "scope": scope,
    }


TOKEN_RESPONSE_EXAMPLES = {
    "implicit": {"summary": "implicit", "value": _token_response("implicit", "read")},
    "client_credentials": {
        "summary": "client_credentials",
        "value": _token_response("client_credentials", "read write"),
    },
}
# The error examples, by status: a summary of the case, and the error the endpoint raises.
TOKEN_ERROR_EXAMPLES: dict[int, list[tuple[str, OAuthError]]] = {
    400: [
        ("No grant_type", InvalidRequestError(MISSING_GRANT_TYPE)),
        ("A grant type this server does not know", UnsupportedGrantTypeError()),
        ("A grant type this client may not use", UnauthorizedClientError()),
        ("More scope than the client may have", InvalidScopeError()),
    ],
    401: [("Unknown client id, wrong secret or disabled client", InvalidClientError())],
    429: [("Too many token requests", SlowDownError(retry_after=30))],
}
# Revocation and introspection authenticate their client as the token endpoint does.
CLIENT_ERROR_EXAMPLES = {401: TOKEN_ERROR_EXAMPLES[401]}


def _header_examples(name: str, errors: list[tuple[str, OAuthError]]) -> dict[str, Any]:
    return {error.error: {"value": error.response_headers()[name]} for _, error in errors}


def _oauth_error_responses(
    examples: dict[int, list[tuple[str, OAuthError]]], *statuses: int
) -> dict[int | str, dict[str, Any]]:
    """`error_responses` in the OAuth body, with these errors as examples of the body and of
    its headers (the challenge of a 401, the wait of a 429)."""
    responses = error_responses(*statuses, model=OAuthErrorDocument)
    for status, errors in examples.items():
        response = responses[status]
        bodies = {e.error: {"summary": summary, "value": e.body()} for summary, e in errors}
        response["content"] = {JSON: {"examples": bodies}}
        if "headers" in response:  # shared by every route: replaced, not changed
            response["headers"] = {
                name: {**header, "examples": _header_examples(name, errors)}
                for name, header in response["headers"].items()
            }
    return responses


_NO_STORE_HEADERS = {
    name: {"required": True, "schema": {"type": "string", "enum": [value]}}
    for name, value in NO_STORE.items()
}
_TOKEN_REQUEST_SCHEMA = TokenRequest.model_json_schema()

TOKEN_ENDPOINT_OPENAPI: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            FORM: {"schema": _TOKEN_REQUEST_SCHEMA, "examples": TOKEN_REQUEST_EXAMPLES},
            JSON: {"schema": _TOKEN_REQUEST_SCHEMA, "examples": TOKEN_REQUEST_EXAMPLES},
        },
    },
}
TOKEN_ENDPOINT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "model": TokenResponse,
        "headers": _NO_STORE_HEADERS,
        "content": {JSON: {"examples": TOKEN_RESPONSE_EXAMPLES}},
    },
    **_oauth_error_responses(TOKEN_ERROR_EXAMPLES, 400, 401, 429),
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
    **_oauth_error_responses(CLIENT_ERROR_EXAMPLES, 400, 401),
}
INTROSPECTION_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": IntrospectionResponse, "headers": _NO_STORE_HEADERS},
    **_oauth_error_responses(CLIENT_ERROR_EXAMPLES, 400, 401),
}
