"""What revocation and introspection may do with a token, and the introspection answer."""

import time
from typing import Any

from app.oauth.errors import InvalidRequestError
from app.oauth.registry import ClientRecord
from app.oauth.requests import TokenRequest
from app.oauth.verification import AccessToken, AccountToken, VerifiedToken

MISSING_TOKEN = "The token parameter is missing."  # noqa: S105 (a message)
# Claims worth telling a resource server (RFC 7662 §2.2); all of them are in the token anyway.
ACCESS_TOKEN_CLAIMS = ("scope", "client_id", "sub", "aud", "iss", "exp", "iat", "jti")
CUSTOMER_TOKEN_CLAIMS = ("sub", "aud", "iss", "exp", "iat", "jti")


def token_parameter(request: TokenRequest) -> str:
    token = request.params.get("token")
    if token is None:
        raise InvalidRequestError(MISSING_TOKEN)
    return token


def may_revoke(client: ClientRecord, token: VerifiedToken) -> bool:
    """An access token only by the client it was issued to (RFC 7009 §2.1); a customer token
    or an account token by any client of the shopper's store (the storefront logging its
    shopper out)."""
    if isinstance(token, AccessToken):
        return token.client_id == client.client_id
    return token.store_id == client.store_id


def introspection_response(client: ClientRecord, token: VerifiedToken | None) -> dict[str, Any]:
    """RFC 7662 §2.2: the token's claims if it is active and of the caller's store; else only
    `active: false`, whatever the reason (RFC 7662 §2.2 asks not to say why)."""
    if token is None or token.store_id != client.store_id or token.expires_at <= time.time():
        return {"active": False}
    names: tuple[str, ...]
    kind_specific: dict[str, str]
    if isinstance(token, AccessToken):
        names, token_type = ACCESS_TOKEN_CLAIMS, "Bearer"
        kind_specific = {"grant_type": token.grant_type}
    elif isinstance(token, AccountToken):
        names, token_type = CUSTOMER_TOKEN_CLAIMS, "account_management_authentication_token"
        kind_specific = {
            "account_id": str(token.account_id),
            "account_member_id": str(token.member_id),
        }
    else:
        names, token_type = CUSTOMER_TOKEN_CLAIMS, "customer"
        kind_specific = {"customer_id": str(token.customer_id)}
    return {
        "active": True,
        **{name: token.claims[name] for name in names if name in token.claims},
        "token_type": token_type,
        "store_id": str(token.store_id),
        **kind_specific,
    }
