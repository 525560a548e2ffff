"""One-time password reset tokens: 256 random bits, mailed once, stored only as a keyed hash.

The raw token exists in the mail and nowhere else: the table holds an HMAC-SHA256 of it under a
key derived from the server secret, so neither a copy of the database nor its backups can be
used to reset a password, nor to test guesses. Looking a token up by its hash is a comparison
an attacker cannot steer: without the key they cannot make a hash that matches a prefix.

A token is bound to one customer (and so one store), works once, for `KEYHOUSE_PASSWORD_RESET_
TTL` seconds, and ends when a newer one is issued for the same customer. Ended and expired
tokens are kept a day past their expiry, so that a late or second click is told why the link no
longer works; then they are purged, and the token is simply unknown.
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
from app.db import Base, utcnow
from app.errors import KeyhouseError

TOKEN_BYTES = 32  # 256 bits
KEPT_AFTER_EXPIRY = timedelta(days=1)
EndReason = Literal["used", "superseded"]


class PasswordResetToken(Base):
    __tablename__ = "password_reset_token"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    # HMAC-SHA256 (hex) of the token; the token itself is never stored.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    store_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("store.id"))
    customer_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("customer.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)
    ended_at: Mapped[datetime | None]
    end_reason: Mapped[str | None] = mapped_column(String(16))


class ResetTokenHasher:
    """Keyed hashes of reset tokens (and of the emails reset requests are counted by)."""

    def __init__(self, key: bytes) -> None:
        self._keyed = hmac.new(key, digestmod=hashlib.sha256)

    def hash(self, text: str) -> str:
        mac = self._keyed.copy()
        mac.update(text.encode("utf-8", "surrogatepass"))
        return mac.hexdigest()


class ResetTokenRefusedError(KeyhouseError):
    """A reset token that cannot set a password; `reason` names why, for the audit trail."""

    reason = "unknown"


class InvalidResetTokenError(ResetTokenRefusedError):
    status_code = 400
    title = "Bad Request"
    default_detail = "This password reset token is not valid."


class ForeignResetTokenError(ResetTokenRefusedError):
    status_code = 404
    title = "Not Found"
    default_detail = "This password reset token belongs to another store."
    reason = "other_store"


class UsedResetTokenError(ResetTokenRefusedError):
    status_code = 409
    title = "Conflict"
    default_detail = "This password reset token has been used already."
    reason = "used"


class SupersededResetTokenError(UsedResetTokenError):
    default_detail = "A newer password reset link was sent since this one: use the newest."
    reason = "superseded"


class ExpiredResetTokenError(ResetTokenRefusedError):
    status_code = 410
    title = "Gone"
    default_detail = "This password reset token has expired: ask for a new link."
    reason = "expired"


async def issue_reset_token(
    session: AsyncSession, *, hasher: ResetTokenHasher, customer: Customer, ttl: int
) -> str:
    """A new token for `customer`, ending their unused ones; returns the raw token, to be
    mailed. The caller commits."""
    now = utcnow()
    await _end_unused(session, customer_id=customer.id, now=now, reason="superseded")
    raw = secrets.token_urlsafe(TOKEN_BYTES)
    session.add(
        PasswordResetToken(
            token_hash=hasher.hash(raw),
            store_id=customer.store_id,
            customer_id=customer.id,
            created_at=now,
            expires_at=now + timedelta(seconds=ttl),
        )
    )
    return raw


async def _end_unused(
    session: AsyncSession, *, customer_id: uuid.UUID, now: datetime, reason: EndReason
) -> int:
    ended = await session.execute(
        update(PasswordResetToken)
        .where(PasswordResetToken.customer_id == customer_id, PasswordResetToken.ended_at.is_(None))
        .values(ended_at=now, end_reason=reason)
        .execution_options(synchronize_session=False)
    )
    return int(ended.rowcount)  # type: ignore[attr-defined]


async def usable_token(
    session: AsyncSession, *, hasher: ResetTokenHasher, token: str, store_id: uuid.UUID
) -> PasswordResetToken:
    """The token's row if it may set a password now; else raises the error that says why
    (another store's token says no more than that, whatever its state)."""
    query = select(PasswordResetToken).where(PasswordResetToken.token_hash == hasher.hash(token))
    row = (await session.scalars(query)).first()
    if row is None:
        raise InvalidResetTokenError()
    if row.store_id != store_id:
        raise ForeignResetTokenError()
    if row.end_reason == "superseded":
        raise SupersededResetTokenError()
    if row.ended_at is not None:
        raise UsedResetTokenError()
    if row.expires_at <= utcnow():
        raise ExpiredResetTokenError()
    return row


async def redeem(session: AsyncSession, row: PasswordResetToken) -> bool:
    """Marks the token used, and ends the customer's other ones; False if another request
    used it first (the update is conditional, so of two racing requests one wins)."""
    now = utcnow()
    used = await session.execute(
        update(PasswordResetToken)
        .where(PasswordResetToken.id == row.id, PasswordResetToken.ended_at.is_(None))
        .values(ended_at=now, end_reason="used")
        .execution_options(synchronize_session=False)
    )
    if used.rowcount != 1:  # type: ignore[attr-defined]
        return False
    await _end_unused(session, customer_id=row.customer_id, now=now, reason="superseded")
    return True


async def purge_reset_tokens(session: AsyncSession) -> None:
    """Forgets tokens a day past their expiry. The caller commits."""
    forgotten = PasswordResetToken.expires_at <= utcnow() - KEPT_AFTER_EXPIRY
    await session.execute(delete(PasswordResetToken).where(forgotten))
