"""Which customer a provider's shopper is: found by (provider, `sub`), linked, created, or none.

A shopper the provider names with a `sub` Keyhouse knows is that customer. A shopper new to the
provider needs an email the provider says it verified (id_tokens.py says where that comes from),
and then:

- no customer has the email: one is created, its email verified (the provider verified it), if
  the store takes sign-ups (`allow_customer_signup`) at all;
- a customer has it: the provider's account is linked to them only if all of these hold: the
  operator made the provider the authority for the email (`link_by_email`, or its domain in
  `email_domains`), the customer verified the email with Keyhouse, and the customer has no
  account at any provider yet. Otherwise the sign-in is refused (`account_exists`), and no
  second customer of that email is made either: the shopper signs in with their password and
  links the provider from their account (links.py).

Without these rules anyone could take over an account by email: sign up unverified with the
victim's address and wait for the victim's first provider sign-in to link to it (then read what
the victim does, with the old token or password); or register with a provider that asserts
addresses it does not own. A link, by email or from the shopper's account, moves the customer's
credential epoch: every customer token issued before it is refused (credentials.py).
"""

import secrets
import uuid
from dataclasses import dataclass
from enum import Enum

from sqlalchemy.ext.asyncio import AsyncSession

from app.customers.credentials import change_credentials
from app.customers.customers import Customer, find_by_email
from app.customers.emails import is_email
from app.customers.oidc.discovery import ProviderResponseError
from app.customers.oidc.id_tokens import ProviderIdentity
from app.customers.oidc.identities import CustomerIdentity, identities_of, linked_customer
from app.customers.oidc.logins import ProviderLogin
from app.customers.oidc.providers import LoginProvider
from app.oauth.revocation import Revocation
from app.oauth.stores import Store
from app.runtime.db import utcnow
from app.runtime.passwords import PasswordHasher

ACCOUNT_EXISTS = (
    "An account with this email already exists: sign in with your password, then link this "
    "login provider from your account."
)
SIGN_UP_CLOSED = "This shop opens no new accounts here: sign in with an existing account."
LINKED_ELSEWHERE = "This email's account is linked to another account at this login provider."
LINKED_TO_ANOTHER = "This account at the login provider is linked to another customer of this shop."
ALREADY_LINKED = (
    "Your account is linked to another account at this login provider: unlink that one first."
)
LINK_OUTDATED = (
    "Your account's password, email or sign-ins changed since this link began: start again "
    "from your account."
)


class Outcome(Enum):
    FOUND = "found"
    LINKED = "linked"
    CREATED = "created"


@dataclass(frozen=True, slots=True)
class ResolvedCustomer:
    customer: Customer
    outcome: Outcome
    # A link's: the customer's earlier tokens, refused once the sign-in has committed.
    revocation: Revocation | None = None


class IdentityRefusedError(ProviderResponseError):
    """The provider's shopper cannot be matched to a customer, nor made one."""


def _usable_email(identity: ProviderIdentity) -> str:
    if identity.email is None or not is_email(identity.email):
        raise IdentityRefusedError(
            "no_email", "The login provider did not share an email address; it is needed here."
        )
    if not identity.email_verified:
        raise IdentityRefusedError(
            "email_not_verified",
            "The login provider has not verified your email address; verify it there first.",
        )
    return identity.email


async def _new_customer(
    *, hasher: PasswordHasher, provider: LoginProvider, identity: ProviderIdentity, email: str
) -> Customer:
    return Customer(
        id=uuid.uuid4(),
        store_id=provider.store_id,
        name=identity.name or email.partition("@")[0][:200],
        email=email,
        email_key=email.lower(),
        # 256 random bits nobody ever sees: a password login fails for this customer at a
        # wrong password's cost, until the shopper sets a password of their own.
        password_hash=await hasher.hash(secrets.token_urlsafe(32)),
        email_verified_at=utcnow(),  # by the provider, which the sign-in required
        credential_epoch=0,  # now, not at the flush: the sign-in's code records it
    )


async def _check_linkable(
    session: AsyncSession, *, provider: LoginProvider, customer: Customer, email: str
) -> None:
    """Refuses to link `customer` by email unless every rule of the module's holds."""
    linked = [linked for _, linked in await identities_of(session, customer_id=customer.id)]
    if any(other.id == provider.id for other in linked):
        raise IdentityRefusedError("linked_elsewhere", LINKED_ELSEWHERE)
    if linked or not customer.email_verified or not provider.vouches_for(email):
        raise IdentityRefusedError("account_exists", ACCOUNT_EXISTS)


async def _link(
    session: AsyncSession, *, provider: LoginProvider, customer: Customer, subject: str
) -> Revocation:
    revocation = await change_credentials(session, customer=customer)
    session.add(CustomerIdentity(provider_id=provider.id, customer_id=customer.id, subject=subject))
    return revocation


async def resolve_customer(
    session: AsyncSession,
    *,
    hasher: PasswordHasher,
    provider: LoginProvider,
    identity: ProviderIdentity,
) -> ResolvedCustomer:
    """The customer this provider's shopper is, linking or creating one in the session. The
    caller commits, so a customer never exists without its link; a race with another sign-in
    of the same shopper or email ends in an `IntegrityError` or a `CredentialsChangedError`
    there, and a second try finds the customer."""
    linked = await linked_customer(session, provider=provider, subject=identity.subject)
    if linked is not None:
        link, found = linked
        link.last_login_at = utcnow()
        return ResolvedCustomer(found, Outcome.FOUND)
    email = _usable_email(identity)
    existing = await find_by_email(session, store_id=provider.store_id, email=email)
    if existing is not None:
        await _check_linkable(session, provider=provider, customer=existing, email=email)
        revocation = await _link(
            session, provider=provider, customer=existing, subject=identity.subject
        )
        return ResolvedCustomer(existing, Outcome.LINKED, revocation)
    store = await session.get(Store, provider.store_id)
    if store is None or not store.allow_customer_signup:
        raise IdentityRefusedError("sign_up_closed", SIGN_UP_CLOSED)
    created = await _new_customer(hasher=hasher, provider=provider, identity=identity, email=email)
    session.add(created)
    session.add(
        CustomerIdentity(provider_id=provider.id, customer_id=created.id, subject=identity.subject)
    )
    return ResolvedCustomer(created, Outcome.CREATED)


async def link_customer(
    session: AsyncSession,
    *,
    provider: LoginProvider,
    identity: ProviderIdentity,
    customer_id: uuid.UUID,
    epoch: int,
) -> ResolvedCustomer:
    """The link a logged-in shopper asked for (links.py): the provider's account joins theirs
    if it is nobody else's, they hold no other account there, and their credentials are still
    those of `epoch`, the one read with the password they gave when they asked. No email
    rule applies: the shopper proved both accounts are theirs."""
    customer = await session.get(Customer, customer_id, populate_existing=True)
    if customer is None or customer.credential_epoch != epoch:
        raise IdentityRefusedError("link_outdated", LINK_OUTDATED)
    linked = await linked_customer(session, provider=provider, subject=identity.subject)
    if linked is not None:
        link, owner = linked
        if owner.id != customer.id:
            raise IdentityRefusedError("linked_to_another", LINKED_TO_ANOTHER)
        link.last_login_at = utcnow()  # linked already, by a link that finished first
        return ResolvedCustomer(customer, Outcome.FOUND)
    held = await identities_of(session, customer_id=customer.id)
    if any(other.id == provider.id for _, other in held):
        raise IdentityRefusedError("already_linked", ALREADY_LINKED)
    revocation = await _link(
        session, provider=provider, customer=customer, subject=identity.subject
    )
    return ResolvedCustomer(customer, Outcome.LINKED, revocation)


async def customer_for(
    session: AsyncSession,
    *,
    hasher: PasswordHasher,
    login: ProviderLogin,
    provider: LoginProvider,
    identity: ProviderIdentity,
) -> ResolvedCustomer:
    """The customer a sign-in ends in: the one a link started from their account is for, or
    whoever the provider's shopper is (found, linked or created)."""
    if login.link_customer_id is not None and login.customer_epoch is not None:
        return await link_customer(
            session,
            provider=provider,
            identity=identity,
            customer_id=login.link_customer_id,
            epoch=login.customer_epoch,
        )
    return await resolve_customer(session, hasher=hasher, provider=provider, identity=identity)
