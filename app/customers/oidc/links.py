"""A shopper's own accounts at login providers: link one, list them, unlink one.

A link is how a provider's account joins a customer that sign-in may not link by email
(matching.py): the shopper proves the Keyhouse account is theirs with their customer token and
current password (checked like a login, behind the lockout), and the provider's account by
signing in there. The sign-in then ends in that customer (`ProviderSignIn.begin(link_to=…)`),
provided the provider's account is nobody else's and the customer's credentials did not change
meanwhile. Linking and unlinking move the customer's credential epoch (credentials.py).
"""

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession

from app.customers.credentials import change_credentials
from app.customers.customers import Customer
from app.customers.oidc.identities import identities_of
from app.customers.oidc.logins import LOGIN_SECONDS
from app.customers.oidc.providers import LoginProvider, find_login_provider
from app.http.errors import KeyhouseError, NotFoundError
from app.http.jsonapi import BadRequestError, ConflictError, Output, StorableText
from app.oauth.revocation import Revocation
from app.observability.audit import record

CODE_CHALLENGE = r"^[A-Za-z0-9_-]{43}$"  # the S256 of a verifier (RFC 7636 §4.2)
NO_CONTROL_CHARACTERS = r"^[^\x00-\x1f\x7f]*$"


class ProviderLinkIn(BaseModel):
    """`{"data": {"type": "provider_link", "provider", "current_password", "redirect_uri",
    "code_challenge", "code_challenge_method": "S256", "state"}}`: as a sign-in's start
    (`GET /oauth/customers/login/{provider}`), with the shopper's current password."""

    model_config = ConfigDict(extra="ignore")
    type: str = Field(pattern="^provider_link$")
    provider: str = Field(
        max_length=63, description="The login provider's name (`GET /v2/login-providers`)."
    )
    current_password: str = Field(max_length=1024)
    redirect_uri: StorableText = Field(
        max_length=2000,
        description="Where the browser comes back with a code: registered for the caller's "
        "client (`keyhouse clients create --redirect-uri`), compared exactly.",
    )
    code_challenge: str = Field(
        pattern=CODE_CHALLENGE,
        description="PKCE (RFC 7636): BASE64URL(SHA-256(verifier)) of a verifier the "
        "storefront keeps for the code's exchange.",
    )
    code_challenge_method: Literal["S256"]
    state: str | None = Field(
        default=None,
        max_length=500,
        pattern=NO_CONTROL_CHARACTERS,
        description="The storefront's own state, sent back with the code as it came.",
    )


class ProviderLinkRequestOut(Output):
    """A link under way (`link_request_json`): where to send the shopper's browser."""

    type: Literal["provider_link_request"]
    provider: str
    authorization_url: str
    expires_in: int


class ProviderLinkOut(Output):
    """A login provider linked to the customer (`link_json`)."""

    type: Literal["provider_link"]
    provider: str
    display_name: str
    linked_at: datetime


class UnknownProviderError(BadRequestError):
    default_detail = "This shop has no login provider of that name."


class ProviderAlreadyLinkedError(ConflictError):
    default_detail = (
        "Your account is already linked to this login provider; unlink it first to link "
        "another account there."
    )


class ProviderNotLinkedError(NotFoundError):
    default_detail = "This account is not linked to a login provider of that name."


class UnregisteredRedirectUriError(BadRequestError):
    default_detail = "This redirect URI is not registered for this client."


class LoginProviderUnavailableError(KeyhouseError):
    """The provider's discovery document could not be read, or no longer checks out."""

    status_code = 503
    title = "Service Unavailable"
    default_detail = "The login provider cannot be used at the moment; try again later."


async def provider_to_link(
    session: AsyncSession, *, customer: Customer, name: str
) -> LoginProvider:
    """The store's enabled provider `name`, where the customer holds no account yet."""
    provider = await find_login_provider(session, store_id=customer.store_id, name=name)
    if provider is None:
        raise UnknownProviderError()
    held = await identities_of(session, customer_id=customer.id)
    if any(linked.id == provider.id for _, linked in held):
        raise ProviderAlreadyLinkedError()
    return provider


def link_request_json(provider: LoginProvider, authorization_url: str) -> dict[str, Any]:
    return {
        "data": {
            "type": "provider_link_request",
            "provider": provider.name,
            "authorization_url": authorization_url,
            "expires_in": LOGIN_SECONDS,
        }
    }


async def provider_links(session: AsyncSession, *, customer_id: uuid.UUID) -> list[dict[str, Any]]:
    """The customer's linked providers, as `ProviderLinkOut`s."""
    return [
        {
            "type": "provider_link",
            "provider": provider.name,
            "display_name": provider.display_name,
            "linked_at": identity.created_at.isoformat(),
        }
        for identity, provider in await identities_of(session, customer_id=customer_id)
    ]


async def unlink_provider(
    session: AsyncSession,
    *,
    customer: Customer,
    name: str,
    actor: str,
    spared_token_id: str | None,
) -> Revocation:
    """Removes the customer's account at provider `name` and moves their credential epoch:
    their customer tokens but `spared_token_id` are refused (the caller applies the revocation
    returned)."""
    held = await identities_of(session, customer_id=customer.id)
    found = [(identity, provider) for identity, provider in held if provider.name == name]
    if not found:
        raise ProviderNotLinkedError()
    ((identity, provider),) = found
    await session.delete(identity)
    revocation = await change_credentials(
        session, customer=customer, spared_token_id=spared_token_id
    )
    record(
        session,
        "customer.provider_unlinked",
        store_id=customer.store_id,
        actor=actor,
        subject=str(customer.id),
        provider=provider.name,
    )
    await session.commit()
    return revocation
