"""Access tokens: RFC 9068 JWTs signed with the key ring's active key."""

import os
import time
from dataclasses import dataclass
from typing import Any

from app.oauth.grants import TokenGrant
from app.oauth.keys import KeyRing
from app.oauth.scopes import format_scope

ACCESS_TOKEN_TYPE = "at+jwt"  # noqa: S105 (RFC 9068 §2.1 media type, not a secret)


@dataclass(frozen=True, slots=True)
class IssuedToken:
    access_token: str
    expires_in: int
    expires: int
    grant_type: str
    scope: str

    def response_body(self) -> dict[str, Any]:
        """The token response (RFC 6749 §5.1) with the commerce API's `expires` and `identifier`."""
        return {
            "access_token": self.access_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "expires": self.expires,
            "identifier": self.grant_type,
            "scope": self.scope,
        }


class TokenIssuer:
    """Signs access tokens for grants (RFC 9068 §2)."""

    def __init__(self, keyring: KeyRing, *, issuer: str, audience: str, default_ttl: int) -> None:
        self._keyring = keyring
        self._issuer = issuer
        self._audience = audience
        self._default_ttl = default_ttl

    async def issue(self, grant: TokenGrant) -> IssuedToken:
        key = await self._keyring.active_key()
        issued_at = int(time.time())
        ttl = grant.client.token_ttl or self._default_ttl
        scope = format_scope(grant.scopes)
        claims = {
            "iss": self._issuer,
            "sub": grant.client.client_id,
            "aud": self._audience,
            "exp": issued_at + ttl,
            "iat": issued_at,
            "jti": os.urandom(16).hex(),  # 128 random bits
            "client_id": grant.client.client_id,
            "scope": scope,
            "store_id": str(grant.client.store_id),
            "grant_type": grant.grant_type,
        }
        return IssuedToken(
            access_token=key.signer.sign(claims, typ=ACCESS_TOKEN_TYPE),
            expires_in=ttl,
            expires=issued_at + ttl,
            grant_type=grant.grant_type,
            scope=scope,
        )
