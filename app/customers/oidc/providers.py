"""A store's login providers: external OpenID providers its shoppers may sign in with.

An operator registers one with its issuer, and the client id and secret the provider gave
Keyhouse. The issuer's discovery document is read and checked before anything is saved. The
client secret is encrypted at rest (AES-256-GCM under a key derived from the server secret, the
provider's id as associated data), as signing keys are: Keyhouse must send it to the provider,
so it cannot be hashed.

By default a provider's shopper is never linked to an existing customer by email: only where the
operator says the provider is the authority for the email (`link_by_email` for every domain, or
`email_domains`), since a provider that vouches for addresses it does not own would otherwise
hand out the store's accounts (matching.py).
"""

import os
import re
import uuid
from collections.abc import Sequence
from datetime import datetime

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import ForeignKey, LargeBinary, String, UniqueConstraint, false, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from app.customers.oidc.discovery import ProviderError, is_secure_url
from app.customers.oidc.provider_client import ProviderClient
from app.http.jsonapi import BadRequestError, ConflictError, Page, fetch_page
from app.oauth.clients import OPERATOR
from app.observability.audit import record
from app.runtime.db import Base, utcnow

# The name is the provider's path segment: /oauth/customers/login/{name}.
NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
RESERVED_NAMES = frozenset({"callback"})  # /oauth/customers/login/callback is taken
DEFAULT_SCOPE = "openid email profile"
SCOPE_PATTERN = re.compile(
    r"[\x21\x23-\x5b\x5d-\x7e]+( [\x21\x23-\x5b\x5d-\x7e]+)*"
)  # RFC 6749 §3.3
NONCE_BYTES = 12
# A domain an email may have: lower-case ASCII labels (IDNs as punycode), at least two of them.
EMAIL_DOMAIN_PATTERN = re.compile(
    r"(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
)
MAX_EMAIL_DOMAINS = 2000  # characters, space-separated, as the column holds them


class LoginProvider(Base):
    __tablename__ = "login_provider"
    __table_args__ = (UniqueConstraint("store_id", "name"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    store_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("store.id"), index=True)
    name: Mapped[str] = mapped_column(String(63))
    display_name: Mapped[str] = mapped_column(String(100))
    issuer: Mapped[str] = mapped_column(String(2000))
    client_id: Mapped[str] = mapped_column(String(255))
    # nonce || AES-256-GCM ciphertext, the provider's id as associated data.
    client_secret_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    scope: Mapped[str] = mapped_column(String(500))
    enabled: Mapped[bool] = mapped_column(default=True)
    # Whether a shopper new to this provider may be linked to the store's customer of the same
    # (verified) email: for every domain, or only for `email_domains` (space-separated), the
    # domains this provider is the authority for. Neither: never linked by email.
    link_by_email: Mapped[bool] = mapped_column(default=False, server_default=false())
    email_domains: Mapped[str | None] = mapped_column(String(2000))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    @property
    def domains(self) -> list[str]:
        return (self.email_domains or "").split()

    def vouches_for(self, email: str) -> bool:
        """Whether the operator made this provider the authority for `email`, so that its
        shopper may be linked to the store's customer of that email (exact domains only: a
        subdomain is listed on its own)."""
        return self.link_by_email or email.rpartition("@")[2].lower() in self.domains


class ProviderSetupError(BadRequestError):
    """A provider that cannot be registered: bad settings, or an issuer that cannot be used."""


def encrypt_secret(secret: str, *, provider_id: uuid.UUID, key: bytes) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, secret.encode(), provider_id.bytes)


def decrypt_secret(provider: LoginProvider, *, key: bytes) -> str:
    blob = provider.client_secret_encrypted
    aead = AESGCM(key)
    return aead.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], provider.id.bytes).decode()


def _checked(
    *,
    name: str,
    display_name: str | None,
    issuer: str,
    client_id: str,
    client_secret: str,
    loopback_http: bool,
) -> None:
    if not NAME_PATTERN.fullmatch(name) or name in RESERVED_NAMES:
        raise ProviderSetupError(
            "A provider name is 1 to 63 lower-case letters, digits and '-' (not 'callback')."
        )
    if display_name is not None and not 1 <= len(display_name.strip()) <= 100:
        raise ProviderSetupError("A display name is 1 to 100 characters.")
    if len(issuer) > 2000 or not is_secure_url(issuer, loopback_http=True):
        raise ProviderSetupError("The issuer is an https URL (http only on localhost).")
    if not is_secure_url(issuer, loopback_http=loopback_http):
        raise ProviderSetupError("The issuer is an https URL: production refuses http.")
    if not 1 <= len(client_id) <= 255 or not client_id.isprintable():
        raise ProviderSetupError("A client id is 1 to 255 printable characters.")
    if not 1 <= len(client_secret) <= 1000:
        raise ProviderSetupError("A client secret is 1 to 1000 characters.")


def checked_domains(domains: Sequence[str], *, link_by_email: bool) -> str | None:
    """The domains as the column holds them (lower case, space-separated, each once), or None."""
    if domains and link_by_email:
        raise ProviderSetupError(
            "Link by email for every domain or for a list of domains, not both."
        )
    checked = list(dict.fromkeys(domain.strip().lower() for domain in domains))
    if not all(EMAIL_DOMAIN_PATTERN.fullmatch(domain) for domain in checked):
        raise ProviderSetupError(
            "An email domain is a domain name such as example.com (no '@', no wildcard)."
        )
    joined = " ".join(checked)
    if len(joined) > MAX_EMAIL_DOMAINS:
        raise ProviderSetupError("The email domains take at most 2000 characters in all.")
    return joined or None


def _checked_scope(scope: str) -> str:
    scope = " ".join(scope.split())
    if not SCOPE_PATTERN.fullmatch(scope) or "openid" not in scope.split() or len(scope) > 500:
        raise ProviderSetupError("The scope is space-separated and includes openid.")
    return scope


async def create_login_provider(
    session: AsyncSession,
    *,
    provider_client: ProviderClient,
    encryption_key: bytes,
    store_id: uuid.UUID,
    name: str,
    issuer: str,
    client_id: str,
    client_secret: str,
    scope: str = DEFAULT_SCOPE,
    display_name: str | None = None,
    link_by_email: bool = False,
    email_domains: Sequence[str] = (),
) -> LoginProvider:
    """Registers a provider once its discovery document has been read and checked; its
    shoppers are linked by email to existing customers only as `link_by_email` (any domain)
    or `email_domains` say."""
    issuer = issuer.strip()
    _checked(
        name=name,
        display_name=display_name,
        issuer=issuer,
        client_id=client_id,
        client_secret=client_secret,
        loopback_http=provider_client.loopback_http,
    )
    domains = checked_domains(email_domains, link_by_email=link_by_email)
    try:
        metadata = await provider_client.discover(issuer)
    except ProviderError as error:
        raise ProviderSetupError(f"The issuer's discovery failed: {error.detail}") from error
    provider = LoginProvider(
        id=uuid.uuid4(),
        store_id=store_id,
        name=name,
        display_name=(display_name or name).strip(),
        issuer=metadata.issuer,
        client_id=client_id,
        scope=_checked_scope(scope),
        link_by_email=link_by_email,
        email_domains=domains,
    )
    provider.client_secret_encrypted = encrypt_secret(
        client_secret, provider_id=provider.id, key=encryption_key
    )
    session.add(provider)
    record(
        session,
        "login_provider.created",
        store_id=store_id,
        actor=OPERATOR,
        subject=str(provider.id),
        name=name,
        issuer=provider.issuer,
        link_by_email=link_by_email,
        email_domains=domains,
    )
    try:
        await session.commit()
    except IntegrityError as error:
        await session.rollback()
        raise ConflictError("This store already has a login provider of that name.") from error
    return provider


async def list_login_providers(
    session: AsyncSession, *, store_id: uuid.UUID | None = None, enabled_only: bool = False
) -> list[LoginProvider]:
    query = select(LoginProvider).order_by(LoginProvider.created_at, LoginProvider.id)
    if store_id is not None:
        query = query.where(LoginProvider.store_id == store_id)
    if enabled_only:
        query = query.where(LoginProvider.enabled.is_(True))
    return list(await session.scalars(query))


async def insecure_login_providers(session: AsyncSession) -> list[LoginProvider]:
    """Enabled providers whose issuer is not https: what production cannot serve."""
    providers = await list_login_providers(session, enabled_only=True)
    return [p for p in providers if not is_secure_url(p.issuer, loopback_http=False)]


async def page_of_providers(
    session: AsyncSession, *, store_id: uuid.UUID, page: Page
) -> tuple[list[LoginProvider], int]:
    """A page of the store's enabled providers, for storefronts to offer."""
    return await fetch_page(
        session,
        LoginProvider,
        where=[LoginProvider.store_id == store_id, LoginProvider.enabled.is_(True)],
        page=page,
        order_by=[LoginProvider.created_at, LoginProvider.id],
    )


async def find_login_provider(
    session: AsyncSession, *, store_id: uuid.UUID, name: str
) -> LoginProvider | None:
    """The store's enabled provider of this name, or None."""
    if not NAME_PATTERN.fullmatch(name):
        return None
    query = select(LoginProvider).where(
        LoginProvider.store_id == store_id,
        LoginProvider.name == name,
        LoginProvider.enabled.is_(True),
    )
    return (await session.scalars(query)).first()


async def disable_login_provider(
    session: AsyncSession, *, provider_id: uuid.UUID
) -> LoginProvider | None:
    """No new sign-ins through it, nor the end of one already under way. Customers it
    created or linked keep their accounts and their customer tokens."""
    provider = await session.get(LoginProvider, provider_id)
    if provider is None:
        return None
    provider.enabled = False
    record(
        session,
        "login_provider.disabled",
        store_id=provider.store_id,
        actor=OPERATOR,
        subject=str(provider.id),
        name=provider.name,
    )
    await session.commit()
    return provider
