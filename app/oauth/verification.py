"""Verifying the JWTs this server signed: for the bearer dependency and for introspection.

Tokens are verified against the key ring's published keys (RFC 7519 §7.2, RFC 9068 §4). A
verified token is remembered until it expires, so checking it again costs a dictionary lookup;
whether it has been revoked is asked on every check, of the in-memory revocation list.
"""

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt

from app.http.errors import KeyhouseError
from app.oauth.keys import KeyRing
from app.oauth.revocation import RevocationList
from app.oauth.tokens import (
    ACCESS_TOKEN_TYPE,
    ACCOUNT_TOKEN_TYPE,
    CREDENTIAL_EPOCH_CLAIM,
    CUSTOMER_TOKEN_TYPE,
    PASSWORD_PROFILE_CLAIM,
)

MAX_REMEMBERED_TOKENS = 10_000
REQUIRED_CLAIMS = ["iss", "aud", "exp", "iat", "sub", "jti", "store_id"]
REALM = 'realm="keyhouse"'


class InvalidTokenError(KeyhouseError):
    """RFC 6750 §3.1 `invalid_token`: malformed, expired, revoked, foreign or otherwise unusable."""

    status_code = 401
    title = "Unauthorized"
    default_detail = "The access token is malformed, expired or was not issued here."

    def response_headers(self) -> dict[str, str]:
        challenge = f'Bearer {REALM}, error="invalid_token"'
        return {**self.headers, "WWW-Authenticate": challenge}


@dataclass(frozen=True, slots=True)
class AccessToken:
    """A verified access token (RFC 9068)."""

    token_id: str
    client_id: str
    store_id: uuid.UUID
    scopes: frozenset[str]
    grant_type: str
    issued_at: int
    expires_at: int
    claims: dict[str, Any]


@dataclass(frozen=True, slots=True)
class CustomerToken:
    """A verified customer token: a shopper logged in with email and password."""

    token_id: str
    customer_id: uuid.UUID
    store_id: uuid.UUID
    issued_at: int
    expires_at: int
    # The epoch of the credentials it was issued with (app/customers/credentials.py); tokens
    # from before the claim existed are of the first epoch.
    credential_epoch: int
    claims: dict[str, Any]


@dataclass(frozen=True, slots=True)
class AccountToken:
    """A verified account token: an account member acting for one account (app/accounts)."""

    token_id: str
    member_id: uuid.UUID
    account_id: uuid.UUID
    membership_id: uuid.UUID
    store_id: uuid.UUID
    issued_at: int
    expires_at: int
    credential_epoch: int
    # The password profile the member logged in or signed up with, carried on by renewals;
    # None in tokens signed before tokens named it.
    password_profile_id: uuid.UUID | None
    claims: dict[str, Any]


VerifiedToken = AccessToken | CustomerToken | AccountToken


def _access_token(claims: dict[str, Any]) -> AccessToken:
    return AccessToken(
        token_id=claims["jti"],
        client_id=claims["sub"],
        store_id=uuid.UUID(claims["store_id"]),
        scopes=frozenset(str(claims.get("scope", "")).split()),
        grant_type=str(claims.get("grant_type", "")),
        issued_at=int(claims["iat"]),
        expires_at=int(claims["exp"]),
        claims=claims,
    )


def _customer_token(claims: dict[str, Any]) -> CustomerToken:
    epoch = claims.get(CREDENTIAL_EPOCH_CLAIM, 0)
    if type(epoch) is not int:  # a bool is an int to isinstance
        raise ValueError("credential epoch")
    return CustomerToken(
        token_id=claims["jti"],
        customer_id=uuid.UUID(claims["sub"]),
        store_id=uuid.UUID(claims["store_id"]),
        issued_at=int(claims["iat"]),
        expires_at=int(claims["exp"]),
        credential_epoch=epoch,
        claims=claims,
    )


def _account_token(claims: dict[str, Any]) -> AccountToken:
    epoch = claims[CREDENTIAL_EPOCH_CLAIM]
    if type(epoch) is not int:
        raise ValueError("credential epoch")
    profile = claims.get(PASSWORD_PROFILE_CLAIM)
    return AccountToken(
        token_id=claims["jti"],
        member_id=uuid.UUID(claims["sub"]),
        account_id=uuid.UUID(claims["account_id"]),
        membership_id=uuid.UUID(claims["membership_id"]),
        store_id=uuid.UUID(claims["store_id"]),
        issued_at=int(claims["iat"]),
        expires_at=int(claims["exp"]),
        credential_epoch=epoch,
        password_profile_id=None if profile is None else uuid.UUID(profile),
        claims=claims,
    )


class TokenVerifier:
    """Verifies JWTs signed here, remembers good ones, and refuses revoked ones."""

    def __init__(
        self,
        keyring: KeyRing,
        revocations: RevocationList,
        *,
        issuer: str,
        audience: str,
    ) -> None:
        self._keyring = keyring
        self._revocations = revocations
        self._issuer = issuer
        self._audience = audience
        self._remembered: dict[tuple[str, str], VerifiedToken] = {}

    async def access_token(self, token: str) -> AccessToken:
        verified = await self._verify(token, ACCESS_TOKEN_TYPE, _access_token)
        assert isinstance(verified, AccessToken)
        if self._is_revoked(verified):
            raise InvalidTokenError()
        return verified

    async def customer_token(self, token: str) -> CustomerToken:
        verified = await self._verify(token, CUSTOMER_TOKEN_TYPE, _customer_token)
        assert isinstance(verified, CustomerToken)
        if self._is_revoked(verified):
            raise InvalidTokenError()
        return verified

    async def account_token(self, token: str) -> AccountToken:
        verified = await self._verify(token, ACCOUNT_TOKEN_TYPE, _account_token)
        assert isinstance(verified, AccountToken)
        if self._is_revoked(verified):
            raise InvalidTokenError()
        return verified

    def still_valid(self, verified: VerifiedToken) -> bool:
        """Whether a token verified earlier may still be used: not expired (to the second, as
        `exp` is checked) and not revoked since."""
        return time.time() < verified.expires_at and not self._is_revoked(verified)

    def _is_revoked(self, verified: VerifiedToken) -> bool:
        revocations = self._revocations
        if isinstance(verified, AccessToken):
            client = verified.client_id
            return revocations.is_revoked(verified.token_id, "client", client, verified.issued_at)
        if isinstance(verified, AccountToken):
            return self._is_revoked_account_token(verified)
        customer = str(verified.customer_id)
        return revocations.is_revoked(
            verified.token_id,
            "customer",
            customer,
            verified.issued_at,
            credential_epoch=verified.credential_epoch,
        )

    def _is_revoked_account_token(self, verified: AccountToken) -> bool:
        """The member deleted or their password changed; this membership removed; or the
        password profile they logged in with deleted."""
        revocations = self._revocations
        token_id, issued_at = verified.token_id, verified.issued_at
        member, membership = str(verified.member_id), str(verified.membership_id)
        profile = verified.password_profile_id
        return (
            revocations.is_revoked(
                token_id,
                "account_member",
                member,
                issued_at,
                credential_epoch=verified.credential_epoch,
            )
            or revocations.is_revoked(token_id, "membership", membership, issued_at)
            or (
                profile is not None
                and revocations.is_revoked(token_id, "password_profile", str(profile), issued_at)
            )
        )

    async def any_token(self, token: str) -> VerifiedToken | None:
        """An access, customer or account token valid now, or None (for introspection)."""
        for verify in (self.access_token, self.customer_token, self.account_token):
            try:
                return await verify(token)
            except InvalidTokenError:
                continue
        return None

    async def _verify(
        self,
        token: str,
        typ: str,
        parse: Callable[[dict[str, Any]], VerifiedToken],
    ) -> VerifiedToken:
        remembered = self._remembered.get((typ, token))
        if remembered is not None:
            if time.time() < remembered.expires_at:
                return remembered
            del self._remembered[(typ, token)]
        claims = await self._claims(token, typ)
        try:
            verified = parse(claims)
        except (KeyError, ValueError, TypeError, AttributeError) as error:  # malformed claims
            raise InvalidTokenError() from error
        self._remember((typ, token), verified)
        return verified

    async def _claims(self, token: str, typ: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
            if header.get("typ") != typ or not isinstance(header.get("kid"), str):
                raise InvalidTokenError()
            key = await self._keyring.verification_key(header["kid"])
            if key is None or header.get("alg") != key.algorithm_name:
                raise InvalidTokenError()
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=[key.algorithm_name],
                audience=self._audience,
                issuer=self._issuer,
                # `exp` to the second, no leeway: the issuer checking its own tokens shares its
                # own clock, and the SDKs renew once `expires` has passed. `iat` unchecked: a
                # replica whose clock runs a little ahead may issue one just in our future.
                options={"require": REQUIRED_CLAIMS, "verify_iat": False},
            )
        except jwt.PyJWTError as error:
            raise InvalidTokenError() from error
        return claims

    def _remember(self, key: tuple[str, str], verified: VerifiedToken) -> None:
        if len(self._remembered) >= MAX_REMEMBERED_TOKENS:
            self._remembered.pop(next(iter(self._remembered)))  # the oldest
        self._remembered[key] = verified
