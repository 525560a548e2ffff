"""The grant types of the token endpoint, one class per wire value (RFC 6749 §4).

Each grant turns an authenticated token request into a `TokenGrant`: which client, which scope,
for how long. Signing is the token issuer's business.
"""

from dataclasses import dataclass
from typing import ClassVar

from app.oauth.authentication import ClientAuthenticator, presented_credentials
from app.oauth.clients import CLIENT_CREDENTIALS, IMPLICIT
from app.oauth.errors import (
    InvalidRequestError,
    UnauthorizedClientError,
    UnsupportedGrantTypeError,
)
from app.oauth.registry import ClientRecord
from app.oauth.requests import TokenRequest
from app.oauth.scopes import READ, WRITE, narrow_scope

MISSING_GRANT_TYPE = "The grant_type parameter is missing."
ORIGIN_NOT_ALLOWED = "This client may not be used from this origin."


@dataclass(slots=True)  # per request: not frozen, which triples the cost to build
class TokenGrant:
    """What a grant decided: the token's client, scope and lifetime."""

    grant_type: str
    client: ClientRecord
    scopes: frozenset[str]


class Grant:
    """A grant type; subclasses name theirs in `grant_type`."""

    grant_type: ClassVar[str]
    # The most this grant can ever give, whatever the client may otherwise have.
    max_scopes: ClassVar[frozenset[str]]

    def __init__(self, authenticator: ClientAuthenticator) -> None:
        self.authenticator = authenticator

    async def client_for(self, request: TokenRequest) -> ClientRecord:
        raise NotImplementedError

    async def grant(self, request: TokenRequest) -> TokenGrant:
        client = await self.client_for(request)
        if self.grant_type not in client.grant_types:
            raise UnauthorizedClientError()
        if request.origin is not None and request.origin not in client.allowed_origins:
            # A browser page on an origin this client never listed: refuse to mint a token.
            raise UnauthorizedClientError(ORIGIN_NOT_ALLOWED)
        scopes = narrow_scope(request.params.get("scope"), client.scopes & self.max_scopes)
        return TokenGrant(grant_type=self.grant_type, client=client, scopes=scopes)


class ClientCredentialsGrant(Grant):
    """RFC 6749 §4.4: a confidential client authenticates with its secret; read and write."""

    grant_type = CLIENT_CREDENTIALS
    max_scopes = frozenset({READ, WRITE})

    async def client_for(self, request: TokenRequest) -> ClientRecord:
        return await self.authenticator.authenticate(presented_credentials(request))


class ImplicitGrant(Grant):
    """The commerce API's implicit grant: a client id alone, straight from this endpoint; read."""

    grant_type = IMPLICIT
    max_scopes = frozenset({READ})

    async def client_for(self, request: TokenRequest) -> ClientRecord:
        return await self.authenticator.identify(presented_credentials(request))


GRANT_TYPES: dict[str, type[Grant]] = {
    ClientCredentialsGrant.grant_type: ClientCredentialsGrant,
    ImplicitGrant.grant_type: ImplicitGrant,
}


class GrantRegistry:
    """The grants one app serves, built once, chosen by `grant_type` (RFC 6749 §4)."""

    def __init__(self, authenticator: ClientAuthenticator) -> None:
        self._grants = {name: grant(authenticator) for name, grant in GRANT_TYPES.items()}

    def grant_for(self, request: TokenRequest) -> Grant:
        grant_type = request.params.get("grant_type")
        if grant_type is None:
            raise InvalidRequestError(MISSING_GRANT_TYPE)
        grant = self._grants.get(grant_type)
        if grant is None:
            raise UnsupportedGrantTypeError()
        return grant
