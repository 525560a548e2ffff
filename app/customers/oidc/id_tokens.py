"""Verifying a provider's ID token (OpenID Connect Core §3.1.3.7), with joserfc.

The signature is checked against the provider's published keys with the algorithms its metadata
lists (asymmetric only), and the claims with joserfc's registry: `iss` is the provider, `aud`
holds our client id, `exp` has not passed, `iat` and `sub` are there, and `nonce` is the one this
login sent. Nothing here parses or compares those by hand.

joserfc is imported with the first ID token a worker verifies, not at start-up (0.9 MiB per
worker otherwise held for nothing where no store has a login provider).
"""

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from app.customers.oidc.discovery import ProviderMetadata, ProviderResponseError
from app.customers.oidc.provider_client import ProviderClient

if TYPE_CHECKING:
    from joserfc import jwt
    from joserfc.errors import ClaimError
    from joserfc.jwk import KeySet

LEEWAY_SECONDS = 60  # clock skew between Keyhouse and the provider
CHECKED_CLAIMS = ("iss", "aud", "azp", "exp", "iat", "nbf", "sub", "nonce")


class InvalidIdTokenError(ProviderResponseError):
    """An ID token that failed verification; `reason` names the check (`id_token_aud`, …)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason, "The login provider's answer could not be verified.")


@dataclass(frozen=True, slots=True)
class ProviderIdentity:
    """Who the provider says the shopper is: `sub`, and the profile claims we use."""

    subject: str
    email: str | None
    email_verified: bool
    name: str | None


def _claims_registry(metadata: ProviderMetadata, *, client_id: str, nonce: str) -> Any:
    from joserfc import jwt

    return jwt.JWTClaimsRegistry(
        leeway=LEEWAY_SECONDS,
        iss={"essential": True, "value": metadata.issuer},
        aud={"essential": True, "value": client_id},
        azp={"value": client_id},  # when present, it must be us (§3.1.3.7 item 5)
        exp={"essential": True},
        iat={"essential": True},
        sub={"essential": True},
        nonce={"essential": True, "value": nonce},
    )


def _reason(error: "ClaimError") -> str:
    from joserfc.errors import ExpiredTokenError

    if isinstance(error, ExpiredTokenError):
        return "id_token_exp"
    # joserfc names the failing claims; only names we asked it to check are passed on.
    named = [claim for claim in error.claim.split(",") if claim in CHECKED_CLAIMS]
    return f"id_token_{named[0]}" if named else "id_token_claims"


def _decode(token: str, keys: "KeySet", metadata: ProviderMetadata) -> "jwt.Token":
    from joserfc import jwt
    from joserfc.errors import InvalidKeyIdError, JoseError

    try:
        return jwt.decode(token, keys, algorithms=list(metadata.signing_algorithms))
    except InvalidKeyIdError:
        raise
    except (JoseError, ValueError, TypeError) as error:
        raise InvalidIdTokenError("id_token_signature") from error


async def verify_id_token(
    token: str,
    *,
    provider_client: ProviderClient,
    metadata: ProviderMetadata,
    client_id: str,
    nonce: str,
) -> dict[str, Any]:
    """The ID token's claims, once its signature and claims are verified."""
    from joserfc.errors import ClaimError, InvalidKeyIdError

    try:
        decoded = _decode(token, await provider_client.keys(metadata), metadata)
    except InvalidKeyIdError:
        # A key the cached set does not know: the provider may have rotated its keys.
        keys = await provider_client.keys(metadata, unknown_kid=True)
        try:
            decoded = _decode(token, keys, metadata)
        except InvalidKeyIdError as error:
            raise InvalidIdTokenError("id_token_signature") from error
    claims = decoded.claims
    try:
        _claims_registry(metadata, client_id=client_id, nonce=nonce).validate(claims)
    except ClaimError as error:
        raise InvalidIdTokenError(_reason(error)) from error
    audience = claims["aud"]
    if isinstance(audience, list) and len(audience) > 1 and "azp" not in claims:
        raise InvalidIdTokenError("id_token_azp")  # §3.1.3.7 item 4
    return claims


def _text(value: object, limit: int) -> str | None:
    if not isinstance(value, str) or not value.strip() or "\x00" in value:
        return None
    return value.strip()[:limit]


def identity_of(id_claims: dict[str, Any], userinfo: dict[str, Any] | None) -> ProviderIdentity:
    """The shopper's identity: `sub` from the ID token; `email` and `email_verified` together
    from one source, the ID token if it names an email, else UserInfo; never one claim from
    each, which would let one source's `email_verified` vouch for the other's address. UserInfo
    counts only if its `sub` is the ID token's (Core §5.3.4); otherwise it is ignored."""
    subject = _text(id_claims["sub"], 255)
    if subject is None or subject != id_claims["sub"]:
        raise InvalidIdTokenError("id_token_sub")
    same_user = userinfo if userinfo is not None and userinfo.get("sub") == subject else {}
    email_source = id_claims if id_claims.get("email") is not None else same_user
    return ProviderIdentity(
        subject=subject,
        email=_text(email_source.get("email"), 254),
        # Only a JSON true: some providers send "true" as text, but guessing here is what
        # account takeovers through unverified emails are made of.
        email_verified=email_source.get("email_verified") is True,
        name=_text(id_claims.get("name"), 200) or _text(same_user.get("name"), 200),
    )
