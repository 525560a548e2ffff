"""The two grants of the token endpoint (contract §1), as the requests that ask for a token."""

import base64
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import quote_plus

import httpx

TOKEN_PATH = "/oauth/access_token"  # noqa: S105 (a path, not a password)


class Grant(Protocol):
    """Something that knows how to ask the token endpoint for a token."""

    @property
    def client_id(self) -> str: ...

    def token_request(self, token_url: httpx.URL) -> httpx.Request: ...


def _form(**fields: str | None) -> dict[str, str]:
    return {name: value for name, value in fields.items() if value is not None}


@dataclass(frozen=True, slots=True)
class ClientCredentialsGrant:
    """`client_credentials`, for backends: the client id and secret, read and write.

    The secret goes in HTTP Basic (`client_secret_basic`), the method RFC 6749 §2.3.1 says every
    server supports and clients should prefer over the body; id and secret are form-encoded
    first, as that section asks."""

    client_id: str
    client_secret: str = field(repr=False)
    scope: str | None = None
    grant_type = "client_credentials"

    def token_request(self, token_url: httpx.URL) -> httpx.Request:
        pair = f"{quote_plus(self.client_id)}:{quote_plus(self.client_secret)}"
        basic = base64.b64encode(pair.encode()).decode("ascii")
        return httpx.Request(
            "POST",
            token_url,
            data=_form(grant_type=self.grant_type, scope=self.scope),
            headers={"Authorization": f"Basic {basic}", "Accept": "application/json"},
        )


@dataclass(frozen=True, slots=True)
class ImplicitGrant:
    """`implicit`, for storefronts: a client id alone, read-only (plus carts and checkout)."""

    client_id: str
    scope: str | None = None
    grant_type = "implicit"

    def token_request(self, token_url: httpx.URL) -> httpx.Request:
        return httpx.Request(
            "POST",
            token_url,
            data=_form(grant_type=self.grant_type, client_id=self.client_id, scope=self.scope),
            headers={"Accept": "application/json"},
        )
