"""An OpenID provider's metadata (OpenID Connect Discovery 1.0 §3), read and checked.

What the discovery document must say for Keyhouse to sign shoppers in with it: its issuer
(exactly the one configured, §4.3), the authorization, token and key endpoints, the code flow,
an asymmetric ID token algorithm we verify, a client authentication method we speak, and PKCE
with S256 if it lists PKCE methods at all.

Every URL is https. http is allowed on a loopback host only where `loopback_http` says so
(development and tests, with a provider on this machine), never in production: a token request
or a UserInfo answer over http could be read or changed on the way.
"""

from dataclasses import dataclass
from functools import partial
from typing import Any
from urllib.parse import urlsplit

from app.oauth.clients import LOOPBACK_HOSTS

DISCOVERY_PATH = "/.well-known/openid-configuration"
# ID token algorithms verified with the provider's published keys; never `none`, and never a
# MAC keyed with the client secret (one leaked secret would then forge any shopper's login).
ASYMMETRIC_ALGORITHMS = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
)
# Preferred first; RFC 8414 §2 makes client_secret_basic the default when none is listed.
CLIENT_AUTH_METHODS = ("client_secret_basic", "client_secret_post")


class ProviderError(Exception):
    """A provider that cannot be used now. `reason` is a fixed code for the audit trail, and
    `detail` a fixed sentence for people; neither ever quotes what the provider sent."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class ProviderUnavailableError(ProviderError):
    """The provider did not answer (refused, timed out) or answered with a server error."""


class ProviderResponseError(ProviderError):
    """The provider answered, but with something Keyhouse cannot use."""


def is_secure_url(url: object, *, loopback_http: bool) -> bool:
    """https, or with `loopback_http` http on a loopback host (a provider run for development
    or tests; production passes False)."""
    if not isinstance(url, str) or not url.isprintable() or " " in url:
        return False
    parts = urlsplit(url)
    if not parts.hostname or parts.username or parts.password or parts.fragment:
        return False
    if parts.scheme == "https":
        return True
    return loopback_http and parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS


def insecure_url_error() -> "ProviderResponseError":
    """A provider URL that is http where only https will do (production)."""
    return ProviderResponseError(
        "insecure_endpoint",
        "The login provider's configuration names an http address, which this server refuses.",
    )


def discovery_url(issuer: str) -> str:
    return issuer.rstrip("/") + DISCOVERY_PATH


@dataclass(frozen=True, slots=True)
class ProviderMetadata:
    """The parts of a discovery document that the sign-in uses."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None
    client_auth_method: str
    signing_algorithms: tuple[str, ...]
    # RFC 9207: the provider names itself in its authorization responses.
    returns_issuer: bool


def _invalid(detail: str) -> ProviderResponseError:
    return ProviderResponseError("invalid_discovery", detail)


def _endpoint(
    document: dict[str, Any], name: str, *, loopback_http: bool, required: bool = True
) -> str | None:
    value = document.get(name)
    if value is None and not required:
        return None
    if not is_secure_url(value, loopback_http=True):
        raise _invalid(f"The discovery document's {name} is missing or not an https URL.")
    if not is_secure_url(value, loopback_http=loopback_http):
        raise insecure_url_error()
    return str(value)


def _listed(document: dict[str, Any], name: str, default: list[str]) -> list[str]:
    value = document.get(name, default)
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise _invalid(f"The discovery document's {name} is not a list of strings.")
    return value


def _client_auth_method(document: dict[str, Any]) -> str:
    offered = _listed(document, "token_endpoint_auth_methods_supported", ["client_secret_basic"])
    method = next((m for m in CLIENT_AUTH_METHODS if m in offered), None)
    if method is None:
        raise _invalid("The provider offers neither client_secret_basic nor client_secret_post.")
    return method


def _signing_algorithms(document: dict[str, Any]) -> tuple[str, ...]:
    offered = _listed(document, "id_token_signing_alg_values_supported", ["RS256"])
    algorithms = tuple(a for a in ASYMMETRIC_ALGORITHMS if a in offered)
    if not algorithms:
        raise _invalid("The provider signs ID tokens with no asymmetric algorithm we verify.")
    return algorithms


def _issuer(document: dict[str, Any], configured: str) -> str:
    # §4.3: exactly the issuer asked for. A difference of one trailing slash is the same
    # issuer typed two ways; the document's spelling is the one its tokens will carry.
    issuer = document.get("issuer")
    if not isinstance(issuer, str) or issuer.rstrip("/") != configured.rstrip("/"):
        raise _invalid("The discovery document names another issuer than the one configured.")
    return issuer


def parse_metadata(document: object, *, issuer: str, loopback_http: bool) -> ProviderMetadata:
    """Checks a discovery document; a `ProviderResponseError` says what is wrong with it.
    `loopback_http`: whether an endpoint may be http on a loopback host (never in production)."""
    if not isinstance(document, dict):
        raise _invalid("The discovery document is not a JSON object.")
    if "code" not in _listed(document, "response_types_supported", []):
        raise _invalid("The provider does not support the authorization code flow.")
    if "S256" not in _listed(document, "code_challenge_methods_supported", ["S256"]):
        raise _invalid("The provider does not support PKCE with S256.")
    endpoint = partial(_endpoint, document, loopback_http=loopback_http)
    return ProviderMetadata(
        issuer=_issuer(document, issuer),
        authorization_endpoint=str(endpoint("authorization_endpoint")),
        token_endpoint=str(endpoint("token_endpoint")),
        jwks_uri=str(endpoint("jwks_uri")),
        userinfo_endpoint=endpoint("userinfo_endpoint", required=False),
        client_auth_method=_client_auth_method(document),
        signing_algorithms=_signing_algorithms(document),
        returns_issuer=document.get("authorization_response_iss_parameter_supported") is True,
    )
