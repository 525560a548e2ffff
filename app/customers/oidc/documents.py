"""The provider sign-in's routes as the OpenAPI schema (/docs) shows them.

The browser routes read their query themselves, so that a bad parameter can be answered with a
redirect or a page rather than FastAPI's JSON 400; their parameters are documented here.
"""

from typing import Any


def _html(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"text/html": {"schema": {"type": "string"}}}}


def _query_parameter(name: str, about: str, *, required: bool = False, **schema: Any) -> Any:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "schema": {"type": "string", **schema},
        "description": about,
    }


BROWSER_RESPONSES: dict[int | str, dict[str, Any]] = {
    302: {
        "description": "On to the provider, or back to the storefront's redirect URI with "
        "`code` and `state`, or with `error`, `error_description` and `state` "
        "(RFC 6749 §4.1.2.1).",
        "headers": {
            "Location": {
                "description": "Where the browser goes next.",
                "schema": {"type": "string"},
            }
        },
    },
    400: _html(
        "A page, when the storefront cannot be sent an error: its client or redirect URI is "
        "unknown or not registered, or the provider's answer names no known sign-in."
    ),
    429: {
        **_html("A page: too many sign-in attempts from this address (Retry-After seconds)."),
        "headers": {"Retry-After": {"schema": {"type": "string"}}},
    },
}

START_PARAMETERS = [
    _query_parameter("client_id", "The storefront's client id.", required=True),
    _query_parameter(
        "redirect_uri",
        "Where the shopper comes back: registered for the client (`keyhouse clients create "
        "--redirect-uri`), compared exactly. Its own query is kept.",
        required=True,
    ),
    _query_parameter(
        "code_challenge",
        "PKCE (RFC 7636): BASE64URL(SHA-256(verifier)) of a verifier the storefront keeps, "
        "43 characters. Required.",
        pattern="^[A-Za-z0-9_-]{43}$",
    ),
    _query_parameter("code_challenge_method", "`S256`. Required.", enum=["S256"]),
    _query_parameter(
        "state", "The storefront's own state, sent back to it as it came.", maxLength=500
    ),
]

CALLBACK_PARAMETERS = [
    _query_parameter("state", "The sign-in's state, as Keyhouse sent it to the provider."),
    _query_parameter("code", "The provider's authorization code."),
    _query_parameter("error", "The provider's error code, when it refused."),
    _query_parameter("iss", "The provider's issuer (RFC 9207), checked when present."),
]

START_DESCRIPTION = """\
The storefront sends the shopper's browser here to sign in with one of its store's login
providers (`GET /v2/login-providers` lists them). Keyhouse records the sign-in and redirects to
the provider's authorization endpoint: the code flow, with a `state`, a `nonce` and PKCE (S256)
of Keyhouse's own.

Errors go back to the storefront's redirect URI as `error` and `error_description` (with its
`state`): `invalid_request` (no or bad PKCE, unknown or disabled provider, `state` over 500
characters), `temporarily_unavailable` (the provider cannot be reached), `server_error` (its
discovery document went bad). An unknown or disabled client, or a redirect URI not registered
for it, gets a 400 page instead: Keyhouse never redirects anywhere else.
"""

CALLBACK_DESCRIPTION = """\
The provider sends the browser back here. Keyhouse consumes the sign-in's `state` (once),
checks `iss` (RFC 9207), exchanges the code with the PKCE verifier and its client secret,
verifies the ID token with the provider's published keys (signature, `iss`, `aud`, `azp`,
`exp`, `iat`, `nonce`), reads UserInfo if the token lacks the email, and finds the customer
by the provider's `sub`, links the store's customer of the same email, or creates one; linking
and creating need `email_verified: true`. Then it redirects to the storefront with `code` (a
single-use Keyhouse code, valid 60 seconds) and `state`; the storefront exchanges the code at
`POST /v2/customers/tokens` (`authentication_mechanism: "oidc"`).

Errors go back to the storefront as `error` and `error_description`: `invalid_request` (the
sign-in was already completed, or took over 10 minutes), `access_denied` (refused at the
provider, ID token not verified, email missing or not verified, provider disabled, answer from
another issuer), `temporarily_unavailable` (provider down), `server_error` (provider answered
garbage). Nothing is created unless everything succeeded.

Audit trail: `customer.provider_login` on success, after `customer.provider_created` or
`customer.provider_linked` when the customer was created or linked;
`customer.provider_login_failed` (with a `reason`) otherwise.
"""

LIST_DESCRIPTION = """\
The store's enabled login providers, each with the link that starts a sign-in
(`links.authorization_endpoint`, see `GET /oauth/customers/login/{provider}`).
"""
