"""Access tokens: RFC 9068 JWTs signed with the key ring's active key."""

import os
import time
from dataclasses import dataclass
from typing import Any

from app.oauth.grants import TokenGrant
from app.oauth.keys import KeyRing
from app.oauth.scopes import format_scope
from app.observability import metrics

ACCESS_TOKEN_TYPE = "at+jwt"  # noqa: S105 (RFC 9068 §2.1 media type, not a secret)
# A shopper's login token, signed by the same keys but never accepted as an access token.
CUSTOMER_TOKEN_TYPE = "customer+jwt"  # noqa: S105 (a JWT `typ`, not a secret)
# An account member's token for one account (Elastic Path's account management authentication
# token), sent as `EP-Account-Management-Authentication-Token`; never an access token either.
ACCOUNT_TOKEN_TYPE = "account+jwt"  # noqa: S105 (a JWT `typ`, not a secret)
# A customer or account token's claim: the epoch of the credentials it was issued with.
CREDENTIAL_EPOCH_CLAIM = "cred_epoch"
# An account token's claim: the password profile its member logged in or signed up with.
PASSWORD_PROFILE_CLAIM = "password_profile_id"  # noqa: S105 (a claim's name)


@dataclass(slots=True)  # per request: not frozen, which triples the cost to build
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


@dataclass(slots=True)  # per request: not frozen, which triples the cost to build
class SignedToken:
    token: str
    token_id: str
    expires: int


class TokenSigner:
    """Signs one kind (`typ`) of JWT for this issuer and audience, with the registered claims
    every kind carries (RFC 7519 §4.1) and the key ring's active key."""

    def __init__(self, keyring: KeyRing, *, issuer: str, audience: str, typ: str) -> None:
        self._keyring = keyring
        self._issuer = issuer
        self._audience = audience
        self._typ = typ

    async def sign(self, *, subject: str, ttl: int, claims: dict[str, Any]) -> SignedToken:
        key = self._keyring.fresh_active_key() or await self._keyring.active_key()
        issued_at = int(time.time())
        token_id = os.urandom(16).hex()  # 128 random bits
        registered = {
            "iss": self._issuer,
            "sub": subject,
            "aud": self._audience,
            "exp": issued_at + ttl,
            "iat": issued_at,
            "jti": token_id,
        }
        token = key.signer.sign({**registered, **claims}, typ=self._typ)
        return SignedToken(token=token, token_id=token_id, expires=issued_at + ttl)


class TokenIssuer:
    """Signs access tokens for grants (RFC 9068 §2)."""

    def __init__(self, keyring: KeyRing, *, issuer: str, audience: str, default_ttl: int) -> None:
        self._signer = TokenSigner(keyring, issuer=issuer, audience=audience, typ=ACCESS_TOKEN_TYPE)
        self._default_ttl = default_ttl

    async def issue(self, grant: TokenGrant) -> IssuedToken:
        ttl = grant.client.token_ttl or self._default_ttl
        scope = format_scope(grant.scopes)
        client_id = grant.client.client_id
        signed = await self._signer.sign(
            subject=client_id,
            ttl=ttl,
            claims={
                "client_id": client_id,
                "scope": scope,
                "store_id": grant.client.store_claim,
                "grant_type": grant.grant_type,
            },
        )
        metrics.token_issued(grant.grant_type)
        return IssuedToken(
            access_token=signed.token,
            expires_in=ttl,
            expires=signed.expires,
            grant_type=grant.grant_type,
            scope=scope,
        )
