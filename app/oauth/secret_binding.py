"""Which server secret a database belongs to.

Client secrets are keyed, and signing keys encrypted, with keys derived from the server secret.
A process that reads another secret than the server's (another data directory, another
environment) would write credentials nobody can use and could not read the keys there are, so
the database records a fingerprint of its secret on first use and every process compares its own
before it touches anything the secret protects.
"""

from datetime import datetime

from sqlalchemy import CheckConstraint, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, utcnow


class ServerSecretFingerprint(Base):
    """One row: a keyed hash derived from the server secret (HKDF), never the secret itself."""

    __tablename__ = "server_secret_fingerprint"
    __table_args__ = (CheckConstraint("id = 1", name="one_row"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    fingerprint: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
