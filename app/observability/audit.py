"""The audit trail: security-relevant events, as table rows and as structured log lines.

`record()` adds an event to the caller's session, so the event is written in the same
transaction as the change it describes, and is logged (logger `keyhouse.audit`) only once that
transaction commits: the log never tells of a change that was rolled back.

Details are fixed names chosen by the code and values that are never secret: ids, names, email
addresses, counts. A secret, a password or a whole token must never be passed here.
"""

import logging
import uuid
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import JSON, String, event, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, Session, mapped_column

from app.runtime.db import Base, Database, utcnow

logger = logging.getLogger("keyhouse.audit")

AuditEventName = Literal[
    "client.created",
    "client.disabled",
    "client.secret_rotated",
    "key.created",
    "store.settings_changed",
    "key.rotated",
    "token.revoked",
    "customer.deleted",
    "customer.login_failed",
    "customer.lockout_started",
    # Sign-in with an external OpenID provider (app/customers/oidc).
    "login_provider.created",
    "login_provider.disabled",
    "customer.provider_login",
    "customer.provider_login_failed",
    "customer.provider_linked",
    "customer.provider_created",
    "customer.provider_code_replayed",
    "customer.password_reset_mailed",
    "customer.password_reset_unknown_email",
    "customer.password_reset_mail_failed",
    "customer.password_reset",
    "customer.password_reset_refused",
    "customer.password_changed",
    # Credentials and verified emails (app/customers/credentials.py, app/customers/mail).
    "customer.credentials_changed",
    "customer.email_verification_mailed",
    "customer.email_verification_skipped",
    "customer.email_verification_mail_failed",
    "customer.email_verified",
    "customer.email_verification_refused",
    "customer.email_change_requested",
    "customer.email_change_mailed",
    "customer.email_change_cancelled",
    "customer.email_change_mail_failed",
    "customer.email_changed",
    "customer.provider_unlinked",
    # Account members (app/accounts): the same lockout as customers'.
    "account_member.login_failed",
    "account_member.lockout_started",
]

PENDING = "keyhouse.audit.pending"


class AuditEvent(Base):
    __tablename__ = "audit_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    event: Mapped[str] = mapped_column(String(40), index=True)
    # No foreign keys: the trail outlives the clients, customers and keys it mentions.
    store_id: Mapped[uuid.UUID | None]
    # Who did it: a client id, "cli" for the operator's command line, or None.
    actor: Mapped[str | None] = mapped_column(String(200))
    # What it was done to: a client id, a customer id or email, a key id, a token id.
    subject: Mapped[str | None] = mapped_column(String(254))
    # The network address of the request, if there was one.
    address: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    def log_fields(self) -> dict[str, Any]:
        return {
            "event": self.event,
            "store_id": str(self.store_id) if self.store_id else None,
            "actor": self.actor,
            "subject": self.subject,
            "address": self.address,
            "details": self.details,
        }


def record(
    session: AsyncSession,
    event_name: AuditEventName,
    /,
    *,
    store_id: uuid.UUID | None = None,
    actor: str | None = None,
    subject: str | None = None,
    address: str | None = None,
    **details: str | int | float | bool | None,
) -> AuditEvent:
    """Adds an event to `session`; it is written and logged when the session commits."""
    audit_event = AuditEvent(
        event=event_name,
        store_id=store_id,
        actor=actor,
        subject=subject,
        address=address,
        details=details,
    )
    session.add(audit_event)
    session.sync_session.info.setdefault(PENDING, []).append(audit_event)
    return audit_event


async def record_now(
    database: Database,
    event_name: AuditEventName,
    /,
    **fields: Any,
) -> None:
    """Records an event in a transaction of its own (for events that change nothing else)."""
    async with database.sessions() as session:
        record(session, event_name, **fields)
        await session.commit()


async def list_events(
    session: AsyncSession, *, event_name: str | None = None, limit: int = 100
) -> list[AuditEvent]:
    """The newest events first, optionally of one kind."""
    query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
    if event_name is not None:
        query = query.where(AuditEvent.event == event_name)
    return list(await session.scalars(query))


@event.listens_for(Session, "after_commit")
def _log_committed(session: Session) -> None:
    for committed in session.info.pop(PENDING, []):
        logger.info("audit %s", committed.event, extra=committed.log_fields())


@event.listens_for(Session, "after_rollback")
def _forget_rolled_back(session: Session) -> None:
    session.info.pop(PENDING, None)
