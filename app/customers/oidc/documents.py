"""The provider sign-in's routes as the OpenAPI schema (/docs) shows them.

The browser routes read their query themselves, so that a bad parameter can be answered with a
redirect or a page rather than FastAPI's JSON 400; their parameters are documented here.
"""

from typing import Any

from app.http.errors import ErrorDocument


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
        "A page, when the storefront cannot be sent an error: the link lacks a client id or a "
        "redirect URI (or repeats one), or the provider's answer has no state."
    ),
    404: _html(
        "A page, when the storefront cannot be sent an error: its client is unknown or "
        "disabled, its redirect URI not registered for it, or the provider's answer names no "
        "sign-in of this server's."
    ),
    429: {
        **_html("A page: too many sign-in attempts from this address (Retry-After seconds)."),
        "headers": {"Retry-After": {"schema": {"type": "string"}}},
    },
}

START_PARAMETERS = [
    _query_parameter("client_id", "The storefront's client id.", required=True, minLength=1),
    _query_parameter(
        "redirect_uri",
        "Where the shopper comes back: registered for the client (`keyhouse clients create "
        "--redirect-uri`), compared exactly. Its own query is kept.",
        required=True,
        minLength=1,
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
    _query_parameter(
        "state",
        "The sign-in's state, as Keyhouse sent it to the provider.",
        required=True,
        minLength=1,
    ),
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
for it, gets a 404 page instead (a link without either, a 400 page): Keyhouse never redirects
anywhere else.
"""

CALLBACK_DESCRIPTION = """\
The provider sends the browser back here. Keyhouse consumes the sign-in's `state` (once),
checks `iss` (RFC 9207), exchanges the code with the PKCE verifier and its client secret,
verifies the ID token with the provider's published keys (signature, `iss`, `aud`, `azp`,
`exp`, `iat`, `nonce`), and reads UserInfo if the token names no email (`email` and
`email_verified` are taken together from one of the two, never one from each).

The customer is the one linked to the provider's `sub`. Failing that, the provider must say it
verified the email, and then: no customer has it, and one is created (its email verified) if
the store takes sign-ups; or a customer has it, and the provider's account is linked to them
only if the operator made the provider the authority for that email (`keyhouse login-providers
create --link-by-email` or `--email-domain`), the customer verified the email, and the customer
has no account at any provider yet. Otherwise the sign-in is refused: the shopper signs in with
their password and links the provider from their account
(`POST /v2/customers/{customer_id}/provider-links`), which ends here too, in that customer.
A link ends the customer's earlier customer tokens.

Then it redirects to the storefront with `code` (a single-use Keyhouse code, valid 60 seconds)
and `state`; the storefront exchanges the code at `POST /v2/customers/tokens`
(`authentication_mechanism: "oidc"`).

Errors go back to the storefront as `error` and `error_description`: `invalid_request` (the
sign-in was already completed, or took over 10 minutes), `access_denied` (refused at the
provider, ID token not verified, email missing or not verified, a customer of that email exists
and may not be linked, the store takes no sign-ups, provider disabled, answer from another
issuer; for a link: the provider's account is another customer's, the customer holds another
account there, or their credentials changed since the link began), `temporarily_unavailable`
(provider down), `server_error` (provider answered garbage, or named an http endpoint in
production). Nothing is created unless everything succeeded.

Audit trail: `customer.provider_login` on success, after `customer.provider_created` or
`customer.provider_linked` when the customer was created or linked;
`customer.provider_login_failed` (with a `reason`: `account_exists`, `sign_up_closed`,
`linked_to_another`, `link_outdated`, …) otherwise.
"""

LINK_DESCRIPTION = """\
Needs the shopper's own customer token (400 without one, 404 for another's id) and their
current password: a wrong one is the login's 401, counted by the lockout. `redirect_uri` must
be registered for the caller's client, and the shopper's account must not hold an account at
that provider yet (409; unlink it first).

The answer's `authorization_url` is the provider's, for the shopper's browser: the sign-in
there comes back through `GET /oauth/customers/login/callback`, which links the provider's
account to this customer (refused if it is another customer's, or if the customer's password,
email or sign-ins changed meanwhile) and sends the browser to `redirect_uri` with a `code` and
the `state`, or an `error`. The link ends every customer token of the shopper, the one sent
here included: `POST /v2/customers/tokens` (`authentication_mechanism: "oidc"`) exchanges the
code, with the PKCE verifier of `code_challenge`, for a fresh one. The link is valid 10 minutes.
Audit: `customer.provider_linked` then `customer.provider_login` (a wrong password:
`customer.login_failed`).
"""

LINK_UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    503: {
        "model": ErrorDocument,
        "description": "The login provider cannot be reached, or its discovery document no "
        "longer checks out.",
    }
}

LIST_DESCRIPTION = """\
The store's enabled login providers, each with the link that starts a sign-in
(`links.authorization_endpoint`, see `GET /oauth/customers/login/{provider}`).
"""
