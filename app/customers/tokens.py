"""Customer tokens: a shopper's login, sent as `X-Moltin-Customer-Token` beside the bearer."""

import uuid
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.customers.customers import Customer
from app.http.jsonapi import Output, StorableText, without_nulls
from app.oauth.keys import KeyRing
from app.oauth.tokens import CREDENTIAL_EPOCH_CLAIM, CUSTOMER_TOKEN_TYPE, TokenSigner
from app.observability import metrics

# The fields each mechanism needs: a password login, or the code a provider sign-in sent the
# storefront back with (app/customers/oidc), named as the origin commerce API names them.
MECHANISM_FIELDS = {
    "password": ("email", "password"),
    "oidc": ("oauth_authorization_code", "oauth_redirect_uri", "oauth_code_verifier"),
}


def _one_mechanism(schema: dict[str, Any]) -> None:
    """The schema of a login: the fields of one mechanism or the other, never `null`."""
    without_nulls(schema)
    password = {"properties": {"authentication_mechanism": {"const": "password"}}}
    oidc = {"properties": {"authentication_mechanism": {"const": "oidc"}}}
    schema["anyOf"] = [
        {**password, "required": list(MECHANISM_FIELDS["password"])},
        {**oidc, "required": ["authentication_mechanism", *MECHANISM_FIELDS["oidc"]]},
    ]


class CustomerTokenRequest(BaseModel):
    """`{"data": {"type": "token", "email", "password"}}`, or with `"authentication_mechanism":
    "oidc"` the code, redirect URI and PKCE verifier of a sign-in with a login provider."""

    model_config = ConfigDict(extra="ignore", json_schema_extra=_one_mechanism)
    type: str = Field(pattern="^token$")
    authentication_mechanism: Literal["password", "oidc"] = "password"
    # Not checked as an email: whatever it is, an unknown email is the same 401 as a bad password.
    email: StorableText | None = Field(default=None, max_length=254)
    password: str | None = Field(default=None, max_length=1024)
    oauth_authorization_code: str | None = Field(
        default=None,
        max_length=64,
        pattern="^[A-Za-z0-9_-]+$",
        description="oidc: the `code` Keyhouse sent the storefront back with; single use, "
        "valid 60 seconds.",
    )
    oauth_redirect_uri: StorableText | None = Field(
        default=None,
        min_length=1,
        max_length=2000,
        description="oidc: the redirect URI the sign-in started with, exactly.",
    )
    # RFC 7636 §4.1: 43 to 128 unreserved characters.
    oauth_code_verifier: str | None = Field(
        default=None,
        min_length=43,
        max_length=128,
        pattern="^[A-Za-z0-9._~-]+$",
        description="oidc: the PKCE verifier whose S256 challenge the sign-in started with.",
    )

    @model_validator(mode="after")
    def _has_the_mechanism_fields(self) -> "CustomerTokenRequest":
        needed = MECHANISM_FIELDS[self.authentication_mechanism]
        missing = [name for name in needed if getattr(self, name) is None]
        if missing:
            verb = "is" if len(missing) == 1 else "are"
            raise ValueError(
                f"{' and '.join(missing)} {verb} required for authentication_mechanism "
                f"{self.authentication_mechanism}"
            )
        return self


class CustomerTokenOut(Output):
    """A customer token on the wire (`IssuedCustomerToken.document`)."""

    type: Literal["token"]
    id: str
    customer_id: uuid.UUID
    token: str
    expires: int
    expires_in: int


@dataclass(frozen=True, slots=True)
class IssuedCustomerToken:
    token_id: str
    customer_id: str
    token: str
    expires: int
    expires_in: int

    def document(self) -> dict[str, Any]:
        return {
            "data": {
                "type": "token",
                "id": self.token_id,
                "customer_id": self.customer_id,
                "token": self.token,
                "expires": self.expires,
                "expires_in": self.expires_in,
            }
        }


class CustomerTokenIssuer:
    """Signs customer tokens (`typ: customer+jwt`): the shopper is the subject."""

    def __init__(self, keyring: KeyRing, *, issuer: str, audience: str, ttl: int) -> None:
        self._signer = TokenSigner(
            keyring, issuer=issuer, audience=audience, typ=CUSTOMER_TOKEN_TYPE
        )
        self._ttl = ttl

    async def issue(self, customer: Customer, *, epoch: int | None = None) -> IssuedCustomerToken:
        """A token for `customer`, of the credential epoch read with the credentials that
        proved who they are: `epoch`, or the one loaded with `customer` (credentials.py)."""
        claims = {
            "store_id": str(customer.store_id),
            CREDENTIAL_EPOCH_CLAIM: customer.credential_epoch if epoch is None else epoch,
        }
        signed = await self._signer.sign(subject=str(customer.id), ttl=self._ttl, claims=claims)
        metrics.token_issued(metrics.CUSTOMER_GRANT)
        return IssuedCustomerToken(
            token_id=signed.token_id,
            customer_id=str(customer.id),
            token=signed.token,
            expires=signed.expires,
            expires_in=self._ttl,
        )
