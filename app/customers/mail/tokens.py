"""One-time mailed tokens: 256 random bits, mailed once, stored only as a keyed hash.

The raw token exists in the mail and nowhere else: the table holds an HMAC-SHA256 of it under a
key derived from the server secret, so neither a copy of the database nor its backups can be
used to reset a password or prove an address, nor to test guesses. Looking a token up by its
hash is a comparison an attacker cannot steer: without the key they cannot make a hash that
matches a prefix.

A token serves one purpose (`MailPurpose`) for one customer (and so one store), works once,
within its time to live, and ends when a newer one of the same purpose is issued for the same
customer. It carries the customer's credential epoch (app/customers/credentials.py) of when it
was issued: once the password, the email or a linked provider has changed, the token no longer
works, whatever else it says. Ended and expired tokens are kept a day past their expiry, so that
a late or second click is told why the link no longer works; then they are purged, and the
token is simply unknown.
"""

import hashlib
import hmac
import secrets
import uuid
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import ForeignKey, String, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from app.customers.customers import Customer
from app.customers.mail.outbox import MailPurpose
from app.http.errors import KeyhouseError
from app.runtime.db import Base, utcnow

TOKEN_BYTES = 32  # 256 bits
KEPT_AFTER_EXPIRY = timedelta(days=1)
EndReason = Literal["used", "superseded"]


class MailToken(Base):
    __tablename__ = "mail_token"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    # HMAC-SHA256 (hex) of the token; the token itself is never stored.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    purpose: Mapped[str] = mapped_column(String(32))
    store_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("store.id"))
    customer_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("customer.id", ondelete="CASCADE"), index=True
    )
    # The customer's credential epoch when the token was mailed: it works only while current.
    customer_epoch: Mapped[int]
    # The address the mail went to: the one the token proves, or an email change's new one.
    email: Mapped[str] = mapped_column(String(254))
    # An email change: the customer token that asked, kept valid when the change is confirmed.
    spared_token_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)
    ended_at: Mapped[datetime | None]
    end_reason: Mapped[str | None] = mapped_column(String(16))


class MailTokenHasher:
    """Keyed hashes of mailed tokens (and of the emails mail requests are counted by)."""

    def __init__(self, key: bytes) -> None:
        self._keyed = hmac.new(key, digestmod=hashlib.sha256)

    def hash(self, text: str) -> str:
        mac = self._keyed.copy()
        mac.update(text.encode("utf-8", "surrogatepass"))
        return mac.hexdigest()


class MailTokenRefusedError(KeyhouseError):
    """A mailed token that cannot be used; `reason` names why, for the audit trail. The
    detail names the token as its route knows it ("password reset token")."""

    reason = "unknown"

    def __init__(self, token_name: str = "token") -> None:  # noqa: S107 (words, not a secret)
        super().__init__(self.default_detail.format(token=token_name))


class InvalidMailTokenError(MailTokenRefusedError):
    """A token never issued (or purged since): no such link, as for another store's. A 404,
    not a 400: the request is well formed, and no schema can tell a token that exists."""

    status_code = 404
    title = "Not Found"
    default_detail = "This {token} is not valid."


class ForeignMailTokenError(MailTokenRefusedError):
    status_code = 404
    title = "Not Found"
    default_detail = "This {token} belongs to another store."
    reason = "other_store"


class UsedMailTokenError(MailTokenRefusedError):
    status_code = 409
    title = "Conflict"
    default_detail = "This {token} has been used already."
    reason = "used"


class SupersededMailTokenError(UsedMailTokenError):
    default_detail = "A newer {token} was sent since this one: use the newest."
    reason = "superseded"


class OutdatedMailTokenError(UsedMailTokenError):
    default_detail = (
        "The account's password, email or sign-in changed since this {token} was sent: "
        "ask for a new link."
    )
    reason = "credentials_changed"


class ExpiredMailTokenError(MailTokenRefusedError):
    status_code = 410
    title = "Gone"
    default_detail = "This {token} has expired: ask for a new link."
    reason = "expired"


async def issue_mail_token(
    session: AsyncSession,
    *,
    hasher: MailTokenHasher,
    purpose: MailPurpose,
    customer: Customer,
    email: str,
    ttl: int,
    spared_token_id: str | None = None,
) -> str:
    """A new token for `customer`, ending their unused ones of the same purpose; returns the
    raw token, to be mailed. The caller commits."""
    now = utcnow()
    await _end_unused(session, customer_id=customer.id, purpose=purpose, now=now)
    raw = secrets.token_urlsafe(TOKEN_BYTES)
    session.add(
        MailToken(
            token_hash=hasher.hash(raw),
            purpose=purpose,
            store_id=customer.store_id,
            customer_id=customer.id,
            customer_epoch=customer.credential_epoch,
            email=email,
            spared_token_id=spared_token_id,
            created_at=now,
            expires_at=now + timedelta(seconds=ttl),
        )
    )
    return raw


async def _end_unused(
    session: AsyncSession, *, customer_id: uuid.UUID, purpose: str, now: datetime
) -> None:
    await session.execute(
        update(MailToken)
        .where(
            MailToken.customer_id == customer_id,
            MailToken.purpose == purpose,
            MailToken.ended_at.is_(None),
        )
        .values(ended_at=now, end_reason="superseded")
        .execution_options(synchronize_session=False)
    )


async def usable_token(
    session: AsyncSession,
    *,
    hasher: MailTokenHasher,
    token: str,
    purposes: tuple[MailPurpose, ...],
    store_id: uuid.UUID,
    token_name: str,
) -> tuple[MailToken, Customer]:
    """The token's row and customer if it may be used now; else raises the error that says
    why (another store's token says no more than that, whatever its state)."""
    query = (
        select(MailToken, Customer)
        .join(Customer, Customer.id == MailToken.customer_id)
        .where(MailToken.token_hash == hasher.hash(token))
    )
    found = (await session.execute(query)).first()
    if found is None or found[0].purpose not in purposes:
        raise InvalidMailTokenError(token_name)
    row, customer = found[0], found[1]
    if row.store_id != store_id:
        raise ForeignMailTokenError(token_name)
    if row.end_reason == "superseded":
        raise SupersededMailTokenError(token_name)
    if row.ended_at is not None:
        raise UsedMailTokenError(token_name)
    if row.expires_at <= utcnow():
        raise ExpiredMailTokenError(token_name)
    if row.customer_epoch != customer.credential_epoch:
        raise OutdatedMailTokenError(token_name)
    return row, customer


async def redeem(session: AsyncSession, row: MailToken) -> bool:
    """Marks the token used, and ends the customer's other ones of its purpose; False if
    another request used it first (the update is conditional: of two racing requests, one
    wins)."""
    now = utcnow()
    used = await session.execute(
        update(MailToken)
        .where(MailToken.id == row.id, MailToken.ended_at.is_(None))
        .values(ended_at=now, end_reason="used")
        .execution_options(synchronize_session=False)
    )
    if used.rowcount != 1:  # type: ignore[attr-defined]
        return False
    await _end_unused(session, customer_id=row.customer_id, purpose=row.purpose, now=now)
    return True


async def purge_mail_tokens(session: AsyncSession) -> None:
    """Forgets tokens a day past their expiry. The caller commits."""
    forgotten = MailToken.expires_at <= utcnow() - KEPT_AFTER_EXPIRY
    await session.execute(delete(MailToken).where(forgotten))
