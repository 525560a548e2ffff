"""A sign-in through a provider, from the storefront's request to the code it exchanges.

One row per sign-in (`provider_login`), in three steps, each allowed once:

1. started: a random `state` (stored as its SHA-256 only) binds the provider, the storefront's
   client and redirect URI, its own `state` and its PKCE challenge. The `nonce` and the PKCE
   verifier sent to the provider are derived from `state` with a key of the server secret,
   so the row holds nothing that would let a database reader finish the sign-in;
2. returned: the provider sent the browser back (`claim_return` consumes the state at once,
   before anything is asked of the provider, so a replayed callback gets nowhere);
3. exchanged: the storefront traded the short-lived Keyhouse code for a customer token (a
   replayed code revokes the token the first exchange issued, RFC 6749 §4.1.2).
"""

import base64
import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ForeignKey, String, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from app.customers.oidc.providers import LoginProvider
from app.runtime.db import Base, utcnow

LOGIN_SECONDS = 600  # from the storefront's request to the provider's answer
CODE_SECONDS = 60  # from the provider's answer to the storefront's exchange
KEPT_FOR = timedelta(days=1)  # rows are purged a day after they started
STATE_BYTES = 32
CODE_BYTES = 32


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def digest(value: str) -> str:
    """SHA-256, hex: how states and codes (256 random bits each) are stored and looked up."""
    return hashlib.sha256(value.encode()).hexdigest()


def s256(code_verifier: str) -> str:
    """RFC 7636 §4.2: the S256 challenge of a verifier."""
    return b64url(hashlib.sha256(code_verifier.encode("ascii")).digest())


class ProviderLogin(Base):
    __tablename__ = "provider_login"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    store_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("store.id"))
    provider_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("login_provider.id", ondelete="CASCADE")
    )
    client_id: Mapped[str] = mapped_column(String(64))
    redirect_uri: Mapped[str] = mapped_column(String(2000))
    client_state: Mapped[str | None] = mapped_column(String(500))
    code_challenge: Mapped[str] = mapped_column(String(43))
    state_hash: Mapped[str] = mapped_column(String(64), unique=True)
    started_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    expires_at: Mapped[datetime]
    returned_at: Mapped[datetime | None]
    customer_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("customer.id", ondelete="CASCADE")
    )
    # The customer's credential epoch once the sign-in found (or linked) them: the code gives a
    # token only while it is current.
    customer_epoch: Mapped[int | None]
    # A link, not a sign-in: the logged-in shopper whose account the provider's user joins.
    link_customer_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("customer.id", ondelete="CASCADE")
    )
    code_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    code_expires_at: Mapped[datetime | None]
    exchanged_at: Mapped[datetime | None]
    # The customer token the code was exchanged for, revoked if the code comes again.
    token_id: Mapped[str | None] = mapped_column(String(64))
    token_expires: Mapped[int | None]  # epoch seconds, as the token's `exp`


class LoginSecrets:
    """Derives a sign-in's `nonce` and PKCE verifier from its `state` (HMAC-SHA256)."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def _derive(self, purpose: bytes, state: str) -> str:
        return b64url(hmac.digest(self._key, purpose + b"\x00" + state.encode(), "sha256"))

    def nonce(self, state: str) -> str:
        return self._derive(b"nonce", state)

    def code_verifier(self, state: str) -> str:
        return self._derive(b"pkce", state)  # 43 characters of base64url (RFC 7636 §4.1)


async def start_login(
    session: AsyncSession,
    *,
    provider: LoginProvider,
    client_id: str,
    redirect_uri: str,
    client_state: str | None,
    code_challenge: str,
    link_customer_id: uuid.UUID | None = None,
    customer_epoch: int | None = None,
) -> str:
    """Records a new sign-in and returns its `state`; rows older than a day go first. A link
    (links.py) names its customer, and the credential epoch it must still be in at the end."""
    now = utcnow()
    await session.execute(delete(ProviderLogin).where(ProviderLogin.started_at < now - KEPT_FOR))
    state = secrets.token_urlsafe(STATE_BYTES)
    session.add(
        ProviderLogin(
            store_id=provider.store_id,
            provider_id=provider.id,
            client_id=client_id,
            redirect_uri=redirect_uri,
            client_state=client_state,
            code_challenge=code_challenge,
            state_hash=digest(state),
            started_at=now,
            expires_at=now + timedelta(seconds=LOGIN_SECONDS),
            link_customer_id=link_customer_id,
            customer_epoch=customer_epoch,
        )
    )
    await session.commit()
    return state


@dataclass(frozen=True, slots=True)
class ClaimedReturn:
    """The sign-in a callback's `state` names; `refusal` says why it cannot go on, if so."""

    login: ProviderLogin
    refusal: str | None  # "used", "expired" or None


async def claim_return(session: AsyncSession, *, state: str) -> ClaimedReturn | None:
    """Consumes the sign-in's state, once, in a transaction of its own; None if unknown."""
    now = utcnow()
    state_hash = digest(state)
    claimed = await session.execute(
        update(ProviderLogin)
        .where(
            ProviderLogin.state_hash == state_hash,
            ProviderLogin.returned_at.is_(None),
            ProviderLogin.expires_at > now,
        )
        .values(returned_at=now)
    )
    query = select(ProviderLogin).where(ProviderLogin.state_hash == state_hash)
    login = (await session.scalars(query)).first()
    await session.commit()
    if login is None:
        return None
    if claimed.rowcount == 1:  # type: ignore[attr-defined]
        return ClaimedReturn(login, None)
    return ClaimedReturn(login, "expired" if login.returned_at is None else "used")


def issue_code(login: ProviderLogin, *, customer_id: uuid.UUID, epoch: int) -> str:
    """The Keyhouse code for the storefront, recorded on the sign-in (the caller commits):
    it gives a token of the customer's credential epoch `epoch`, and only while it is current."""
    code = secrets.token_urlsafe(CODE_BYTES)
    login.customer_id = customer_id
    login.customer_epoch = epoch
    login.code_hash = digest(code)
    login.code_expires_at = utcnow() + timedelta(seconds=CODE_SECONDS)
    return code
