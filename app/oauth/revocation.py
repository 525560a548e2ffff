"""Revoked tokens (RFC 7009), disabled clients and deleted customers, as every worker sees them.

A revocation is a row: one token by its `jti`, or every token of a subject (a client, a
customer) issued up to a cutoff. A row lives only as long as a token it refuses could still be
valid; then it is purged, so the table never grows beyond the tokens alive.

Each worker keeps all live rows in memory and polls the table for new ones every
`revocation_poll_seconds` (a quarter second by default), so checking a token costs dictionary
lookups, never a database round trip, and a revocation made by any worker or replica, or by the
CLI, is seen everywhere within the poll interval plus one query. Polling the shared database
needs no extra server and works the same on SQLite and PostgreSQL; `tests/oauth/
test_revocation_workers.py` measures the delay across two worker processes.
"""

from datetime import datetime
from typing import Literal

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, utcnow

RevocationKind = Literal["token", "client", "customer"]


class Revocation(Base):
    __tablename__ = "revocation"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    # A token's `jti`, a client id, or a customer id.
    value: Mapped[str] = mapped_column(String(64))
    # For subjects: tokens issued (`iat`) at or before this epoch second are refused.
    issued_before: Mapped[int | None]
    # Once every token this row could refuse has expired, the row is purged.
    expires_at: Mapped[datetime] = mapped_column(index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
