"""Customer tokens: a shopper's login, sent as `X-Moltin-Customer-Token` beside the bearer."""

import uuid
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app import metrics
from app.customers.customers import Customer
from app.jsonapi import Output, StorableText
from app.oauth.keys import KeyRing
from app.oauth.tokens import CUSTOMER_TOKEN_TYPE, TokenSigner


class CustomerTokenRequest(BaseModel):
    """`{"data": {"type": "token", "email", "password", "authentication_mechanism"}}`."""

    model_config = ConfigDict(extra="ignore")
    type: str = Field(pattern="^token$")
    # Not checked as an email: whatever it is, an unknown email is the same 401 as a bad password.
    email: StorableText = Field(max_length=254)
    password: str = Field(max_length=1024)
    authentication_mechanism: str = Field(default="password", pattern="^password$")


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

    async def issue(self, customer: Customer) -> IssuedCustomerToken:
        signed = await self._signer.sign(
            subject=str(customer.id), ttl=self._ttl, claims={"store_id": str(customer.store_id)}
        )
        metrics.token_issued(metrics.CUSTOMER_GRANT)
        return IssuedCustomerToken(
            token_id=signed.token_id,
            customer_id=str(customer.id),
            token=signed.token,
            expires=signed.expires,
            expires_in=self._ttl,
        )
