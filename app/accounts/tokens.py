"""Account tokens (Elastic Path's account management authentication tokens): one per account a
member belongs to, each an RFC 9068-style JWT of the store's keys (`typ: account+jwt`) naming the
member (`sub`), the account, the membership and the member's credential epoch."""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.accounts.accounts import Account
from app.accounts.members import AccountMember
from app.accounts.memberships import AccountMembership
from app.accounts.passwords import MIN_PASSWORD_LENGTH
from app.customers.emails import Email
from app.http.jsonapi import Links, ListMeta, Output, StorableText
from app.oauth.keys import KeyRing
from app.oauth.tokens import (
    ACCOUNT_TOKEN_TYPE,
    CREDENTIAL_EPOCH_CLAIM,
    PASSWORD_PROFILE_CLAIM,
    TokenSigner,
)
from app.observability import metrics

TOKEN_TYPE = "account_management_authentication_token"  # noqa: S105 (a type)
ACCOUNT_GRANT = "account_member"
MECHANISM_FIELDS = {
    "password": ("password_profile_id", "username", "password"),
    "self_signup": ("password_profile_id", "username", "password", "name", "email"),
    # With the current account token beside the access token: switching accounts, renewal.
    "account_management_authentication_token": (),
}


def _one_mechanism(schema: dict[str, Any]) -> None:
    """The schema of a login: for each mechanism, the fields it needs, present and not `null`
    (the others may be left out or `null`, which the server reads as left out)."""
    properties = schema["properties"]

    def given(name: str) -> dict[str, Any]:
        options = [option for option in properties[name]["anyOf"] if option != {"type": "null"}]
        return options[0] if len(options) == 1 else {"anyOf": options}

    def field(mechanism: str, name: str) -> dict[str, Any]:
        if mechanism == "self_signup" and name == "password":  # a new password: the rule applies
            return {**given(name), "minLength": MIN_PASSWORD_LENGTH}
        return given(name)

    schema["oneOf"] = [
        {
            "properties": {
                "authentication_mechanism": {"const": mechanism},
                **{name: field(mechanism, name) for name in fields},
            },
            "required": ["authentication_mechanism", *fields],
        }
        for mechanism, fields in MECHANISM_FIELDS.items()
    ]


class AccountTokenRequest(BaseModel):
    """`{"data": {"type": "account_management_authentication_token", "authentication_mechanism":
    "password", "password_profile_id", "username", "password"}}`, or `self_signup` with the new
    member's `name` and `email` too, or `account_management_authentication_token` alone."""

    model_config = ConfigDict(extra="ignore", json_schema_extra=_one_mechanism)
    type: str = Field(pattern=f"^{TOKEN_TYPE}$")
    authentication_mechanism: Literal[
        "password", "self_signup", "account_management_authentication_token"
    ]
    password_profile_id: uuid.UUID | None = None
    # Not checked further at a login: whatever they are, an unknown username or a short password
    # is the same 401 as a bad password. A self sign-up's new password is held to the rule.
    username: StorableText | None = Field(default=None, min_length=1, max_length=254)
    password: str | None = Field(default=None, min_length=1, max_length=1024)
    name: StorableText | None = Field(default=None, min_length=1, max_length=200)
    email: Email | None = None

    @model_validator(mode="after")
    def _has_the_mechanism_fields(self) -> "AccountTokenRequest":
        needed = MECHANISM_FIELDS[self.authentication_mechanism]
        missing = [name for name in needed if getattr(self, name) is None]
        if missing:
            raise ValueError(
                f"{', '.join(missing)} required for authentication_mechanism "
                f"{self.authentication_mechanism}"
            )
        short = self.password is not None and len(self.password) < MIN_PASSWORD_LENGTH
        if self.authentication_mechanism == "self_signup" and short:
            raise ValueError(f"a new password has at least {MIN_PASSWORD_LENGTH} characters")
        return self


class AccountTokenOut(Output):
    type: Literal["account_management_authentication_token"]
    account_id: uuid.UUID
    account_name: str
    token: str
    expires: datetime


class AccountTokensMeta(ListMeta):
    account_member_id: uuid.UUID


class AccountTokensOut(Output):
    """The answer: one token per account, and the member they are for."""

    data: list[AccountTokenOut]
    links: Links
    meta: AccountTokensMeta


@dataclass(frozen=True, slots=True)
class IssuedAccountToken:
    account_id: str
    account_name: str
    token: str
    token_id: str
    expires: int

    def json(self) -> dict[str, Any]:
        expires = datetime.fromtimestamp(self.expires, UTC).isoformat().replace("+00:00", "Z")
        return {
            "type": TOKEN_TYPE,
            "account_id": self.account_id,
            "account_name": self.account_name,
            "token": self.token,
            "expires": expires,
        }


class AccountTokenIssuer:
    """Signs account tokens with the key ring's active key; the realm says how long they live."""

    def __init__(self, keyring: KeyRing, *, issuer: str, audience: str) -> None:
        self._signer = TokenSigner(
            keyring, issuer=issuer, audience=audience, typ=ACCOUNT_TOKEN_TYPE
        )

    async def issue(
        self,
        member: AccountMember,
        memberships: list[tuple[AccountMembership, Account]],
        *,
        store_id: uuid.UUID,
        epoch: int,
        password_profile_id: uuid.UUID | None,
        ttl: int,
    ) -> list[IssuedAccountToken]:
        """One token per membership, of the credential epoch read with the password checked,
        naming the password profile logged in with (deleting it ends the tokens)."""
        issued = []
        for membership, account in memberships:
            claims: dict[str, Any] = {
                "store_id": str(store_id),
                "account_id": str(account.id),
                "membership_id": str(membership.id),
                CREDENTIAL_EPOCH_CLAIM: epoch,
            }
            if password_profile_id is not None:
                claims[PASSWORD_PROFILE_CLAIM] = str(password_profile_id)
            signed = await self._signer.sign(subject=str(member.id), ttl=ttl, claims=claims)
            metrics.token_issued(ACCOUNT_GRANT)
            issued.append(
                IssuedAccountToken(
                    account_id=str(account.id),
                    account_name=account.name,
                    token=signed.token,
                    token_id=signed.token_id,
                    expires=signed.expires,
                )
            )
        return issued
