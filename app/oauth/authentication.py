"""Client authentication at the token endpoint (RFC 6749 §2.3.1).

Two methods: `client_secret_basic` (HTTP Basic) and `client_secret_post` (body). Unknown id,
wrong secret and disabled client all raise the same `InvalidClientError` after the same work.
"""

import time
from dataclasses import dataclass
from typing import Literal

from app.oauth.errors import InvalidClientError, InvalidRequestError
from app.oauth.registry import ClientRecord, ClientRegistry
from app.oauth.requests import TokenRequest
from app.runtime.passwords import ClientSecretHasher

AuthMethod = Literal["client_secret_basic", "client_secret_post", "none"]
AUTH_METHODS_SUPPORTED: tuple[AuthMethod, ...] = ("client_secret_basic", "client_secret_post")

MIXED_METHODS = "Use one client authentication method, not HTTP Basic and a body secret."
MISMATCHED_ID = "The client_id in the body differs from the one in HTTP Basic."
MISSING_CLIENT_ID = "The client_id parameter is missing."


@dataclass(slots=True)  # per request: not frozen, which triples the cost to build
class ClientCredentials:
    """Who the request says it is, and the secret it offers, if any."""

    client_id: str | None
    client_secret: str | None
    method: AuthMethod


def presented_credentials(request: TokenRequest) -> ClientCredentials:
    """Reads the client's identity from Basic or the body; conflicting forms are invalid."""
    body_id = request.params.get("client_id")
    body_secret = request.params.get("client_secret")
    if request.basic is not None:
        if body_secret is not None:
            raise InvalidRequestError(MIXED_METHODS)
        if body_id is not None and body_id != request.basic.client_id:
            raise InvalidRequestError(MISMATCHED_ID)
        return ClientCredentials(
            request.basic.client_id, request.basic.client_secret, "client_secret_basic"
        )
    if body_secret is not None:
        if body_id is None:
            raise InvalidRequestError(MISSING_CLIENT_ID)
        return ClientCredentials(body_id, body_secret, "client_secret_post")
    return ClientCredentials(body_id, None, "none")


class ClientAuthenticator:
    """Checks client credentials against the registry in constant time."""

    def __init__(self, registry: ClientRegistry, hasher: ClientSecretHasher) -> None:
        self._registry = registry
        self._hasher = hasher

    async def authenticate(self, credentials: ClientCredentials) -> ClientRecord:
        """A confidential client whose secret matches (RFC 6749 §2.3.1), or `invalid_client`."""
        if credentials.client_id is None or credentials.client_secret is None:
            raise InvalidClientError()
        client = await self._registry.find(credentials.client_id)
        hashes = client.valid_secret_hashes(time.time()) if client is not None else []
        # Always hash and compare, so an unknown id costs what a wrong secret costs.
        matched = self._hasher.matches(credentials.client_secret, hashes)
        if client is None or not matched or not client.enabled:
            raise InvalidClientError()
        return client

    async def identify(self, credentials: ClientCredentials) -> ClientRecord:
        """The client named by id alone (the implicit grant); a secret, if sent, must match."""
        if credentials.client_secret is not None:
            return await self.authenticate(credentials)
        if credentials.client_id is None:
            raise InvalidRequestError(MISSING_CLIENT_ID)
        client = await self._registry.find(credentials.client_id)
        if client is None or not client.enabled:
            raise InvalidClientError()
        return client

    async def authenticate_endpoint_client(
        self, request: TokenRequest, *, allow_public: bool
    ) -> ClientRecord:
        """The client calling revocation or introspection (RFC 7009 §2.1, RFC 7662 §2.1):
        a confidential client with its secret, or, where allowed, a public client by id."""
        credentials = presented_credentials(request)
        if credentials.client_secret is not None:
            return await self.authenticate(credentials)
        if not allow_public or credentials.client_id is None:
            raise InvalidClientError()
        client = await self.identify(credentials)
        if not client.is_public:
            raise InvalidClientError()  # a confidential client must prove who it is
        return client
