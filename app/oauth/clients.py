"""OAuth clients and their secrets (RFC 6749 §2), and the operator's service functions."""

import secrets
import string
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import JSON, ForeignKey, String, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column, relationship, selectinload

from app.oauth.errors import InvalidClientMetadataError, InvalidScopeError
from app.oauth.revocation import revoke_subject
from app.oauth.scopes import READ, SUPPORTED_SCOPES, format_scope, parse_scope
from app.observability.audit import record
from app.runtime.changes import announce
from app.runtime.db import Base, utcnow
from app.runtime.passwords import ClientSecretHasher, generate_client_secret

IMPLICIT = "implicit"
CLIENT_CREDENTIALS = "client_credentials"
GRANT_TYPES = (CLIENT_CREDENTIALS, IMPLICIT)
MAX_TOKEN_TTL = 86_400
CLIENT_ID_ALPHABET = string.ascii_letters + string.digits
CLIENT_ID_LENGTH = 32
DEFAULT_SECRET_GRACE_SECONDS = 86_400
MAX_SECRET_GRACE_SECONDS = 30 * 86_400
MAX_REDIRECT_URI_LENGTH = 2000
OPERATOR = "cli"  # the audit trail's actor for the operator's command line


class OAuthClient(Base):
    __tablename__ = "oauth_client"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    store_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("store.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    is_public: Mapped[bool]
    grant_types: Mapped[list[str]] = mapped_column(JSON)
    scopes: Mapped[list[str]] = mapped_column(JSON)
    allowed_origins: Mapped[list[str]] = mapped_column(JSON)
    # Where a storefront may have a shopper sent back after signing in with an external
    # OpenID provider (app/customers/oidc): exact strings, compared as they are.
    redirect_uris: Mapped[list[str]] = mapped_column(JSON, default=list, server_default="[]")
    # Seconds; None means the server default (KEYHOUSE_TOKEN_TTL).
    token_ttl: Mapped[int | None]
    enabled: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    secrets: Mapped[list["ClientSecret"]] = relationship(
        back_populates="client", lazy="raise", cascade="all, delete-orphan"
    )


class ClientSecret(Base):
    """One secret of a confidential client; several may be valid while one is rotated out."""

    __tablename__ = "client_secret"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[str] = mapped_column(
        ForeignKey("oauth_client.id", ondelete="CASCADE"), index=True
    )
    secret_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Set when the secret is being rotated out; None means it does not expire.
    expires_at: Mapped[datetime | None]

    client: Mapped[OAuthClient] = relationship(back_populates="secrets", lazy="raise")


# Every worker forgets its cached copy when a client or its secrets change (app/oauth/registry.py).
announce(OAuthClient, "clients")
announce(ClientSecret, "clients")


@dataclass(frozen=True, slots=True)
class CreatedClient:
    """A new client, with its secret in clear: the only time anyone sees it."""

    client: OAuthClient
    client_secret: str | None


@dataclass(frozen=True, slots=True)
class RotatedSecret:
    """A client's new secret in clear (shown once), and when the older ones stop working."""

    client: OAuthClient
    client_secret: str
    previous_expire_at: datetime | None


def new_client_id() -> str:
    """32 letters and digits (190 random bits). No `-`: an id starting with one would read as
    an option to the `keyhouse` command, and no `_`: ids are easy to select and copy whole."""
    return "".join(secrets.choice(CLIENT_ID_ALPHABET) for _ in range(CLIENT_ID_LENGTH))


def normalize_origin(origin: str) -> str:
    """A browser Origin (`scheme://host[:port]`) in the form browsers send it."""
    parts = urlsplit(origin.strip())
    well_formed = (
        parts.scheme in ("http", "https")
        and parts.hostname
        and not (parts.username or parts.password or parts.query or parts.fragment)
        and parts.path in ("", "/")
    )
    if not well_formed:
        raise InvalidClientMetadataError("An origin must look like https://shop.example.com.")
    default_port = {"http": 80, "https": 443}[parts.scheme]
    port = f":{parts.port}" if parts.port and parts.port != default_port else ""
    return f"{parts.scheme}://{parts.hostname}{port}"


LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


def checked_redirect_uri(uri: str) -> str:
    """An absolute https URL (http only on a loopback host, for development) without a
    fragment or credentials (RFC 6749 §3.1.2, RFC 9700 §2.1), kept exactly as given."""
    parts = urlsplit(uri)
    secure = parts.scheme == "https" or (
        parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS
    )
    if not (secure and parts.hostname) or "#" in uri or parts.username or parts.password:
        raise InvalidClientMetadataError(
            "A redirect URI is an https URL (http only on localhost) without a fragment."
        )
    if len(uri) > MAX_REDIRECT_URI_LENGTH or not uri.isprintable() or " " in uri:
        raise InvalidClientMetadataError("A redirect URI is at most 2000 printable characters.")
    return uri


def _grant_types(*, public: bool, requested: Iterable[str]) -> list[str]:
    chosen = set(requested) or ({IMPLICIT} if public else set(GRANT_TYPES))
    if not chosen <= set(GRANT_TYPES):
        raise InvalidClientMetadataError("Grant types are client_credentials and implicit.")
    if public and chosen != {IMPLICIT}:
        raise InvalidClientMetadataError("A public client has no secret: implicit only.")
    return sorted(chosen)


def _allowed_scopes(scope: str | None, *, public: bool) -> frozenset[str]:
    if scope is None:
        # A public client only ever gets implicit tokens, which carry `read` at most.
        return frozenset({READ}) if public else frozenset(SUPPORTED_SCOPES)
    try:
        return parse_scope(scope)
    except InvalidScopeError as error:
        raise InvalidClientMetadataError("Scopes are read and write.") from error


def _validated_ttl(ttl: int | None) -> int | None:
    if ttl is not None and not 1 <= ttl <= MAX_TOKEN_TTL:
        raise InvalidClientMetadataError("The token lifetime is 1 to 86400 seconds.")
    return ttl


async def create_client(
    session: AsyncSession,
    *,
    hasher: ClientSecretHasher,
    store_id: uuid.UUID,
    name: str,
    public: bool = False,
    scope: str | None = None,
    grant_types: Iterable[str] = (),
    origins: Iterable[str] = (),
    redirect_uris: Iterable[str] = (),
    token_ttl: int | None = None,
) -> CreatedClient:
    if not name.strip() or len(name) > 200:
        raise InvalidClientMetadataError("A client name is 1 to 200 characters.")
    client = OAuthClient(
        id=new_client_id(),
        store_id=store_id,
        name=name.strip(),
        is_public=public,
        grant_types=_grant_types(public=public, requested=grant_types),
        scopes=format_scope(_allowed_scopes(scope, public=public)).split(),
        allowed_origins=sorted({normalize_origin(origin) for origin in origins}),
        redirect_uris=sorted({checked_redirect_uri(uri) for uri in redirect_uris}),
        token_ttl=_validated_ttl(token_ttl),
    )
    secret = None if public else generate_client_secret()
    if secret is not None:
        client.secrets = [ClientSecret(secret_hash=hasher.hash(secret))]
    else:
        client.secrets = []
    session.add(client)
    record(
        session,
        "client.created",
        store_id=store_id,
        actor=OPERATOR,
        subject=client.id,
        client_name=client.name,
        public=public,
    )
    await session.commit()
    return CreatedClient(client=client, client_secret=secret)


async def list_clients(
    session: AsyncSession, *, store_id: uuid.UUID | None = None
) -> list[OAuthClient]:
    query = select(OAuthClient).order_by(OAuthClient.created_at, OAuthClient.id)
    if store_id is not None:
        query = query.where(OAuthClient.store_id == store_id)
    return list(await session.scalars(query))


async def disable_client(
    session: AsyncSession, *, client_id: str, issuing_lag_seconds: float
) -> OAuthClient | None:
    """Stops the client getting tokens and revokes every token it has: workers notice within
    their client cache time (`issuing_lag_seconds`), and tokens issued until then are refused
    too."""
    client = await session.get(OAuthClient, client_id)
    if client is None:
        return None
    client.enabled = False
    revoke_subject(
        session,
        kind="client",
        subject=client.id,
        max_token_lifetime=MAX_TOKEN_TTL,
        issuing_lag_seconds=issuing_lag_seconds,
    )
    record(session, "client.disabled", store_id=client.store_id, actor=OPERATOR, subject=client.id)
    await session.commit()
    return client


async def rotate_client_secret(
    session: AsyncSession,
    *,
    hasher: ClientSecretHasher,
    client_id: str,
    grace_seconds: int = DEFAULT_SECRET_GRACE_SECONDS,
) -> RotatedSecret | None:
    """Adds a new secret; the current ones keep working for `grace_seconds`, then fail.

    Secrets already past their grace are deleted here, so rows do not pile up.
    """
    if not 0 <= grace_seconds <= MAX_SECRET_GRACE_SECONDS:
        raise InvalidClientMetadataError("The grace period is 0 to 2592000 seconds.")
    query = (
        select(OAuthClient)
        .where(OAuthClient.id == client_id)
        .options(selectinload(OAuthClient.secrets))
    )
    client = (await session.scalars(query)).first()
    if client is None:
        return None
    if client.is_public:
        raise InvalidClientMetadataError("A public client has no secret to rotate.")
    now = utcnow()
    grace_ends = now + timedelta(seconds=grace_seconds)
    kept: list[ClientSecret] = []
    for old in client.secrets:
        if old.expires_at is not None and old.expires_at <= now:
            continue  # already dead: dropped (delete-orphan)
        if old.expires_at is None or old.expires_at > grace_ends:
            old.expires_at = grace_ends
        kept.append(old)
    secret = generate_client_secret()
    client.secrets = [*kept, ClientSecret(secret_hash=hasher.hash(secret))]
    record(
        session,
        "client.secret_rotated",
        store_id=client.store_id,
        actor=OPERATOR,
        subject=client.id,
        grace_seconds=grace_seconds,
    )
    await session.commit()
    previous_expire_at = grace_ends if kept else None
    return RotatedSecret(client=client, client_secret=secret, previous_expire_at=previous_expire_at)
