"""Which server secret a database belongs to.

Client secrets are keyed, and signing keys encrypted, with keys derived from the server secret.
A process that reads another secret than the server's (another data directory, another
environment) would write credentials nobody can use and could not read the keys there are. So
the database records a fingerprint of its secret on first use (a key derived through HKDF,
never the secret), and `keyhouse serve`, each worker and every command that uses the secret
compare their own with it before they touch anything: on a mismatch they stop with one line
that says which secret they read and what the database expects, and write nothing.
"""

import hmac
from datetime import datetime

from sqlalchemy import CheckConstraint, String, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from app.oauth.keys import SigningKey, decrypts
from app.runtime.db import Base, utcnow
from app.runtime.server_secret import (
    SECRET_VARIABLE,
    SHOWN_FINGERPRINT_CHARACTERS,
    ServerKeys,
    existing_server_keys,
    load_server_keys,
)
from app.runtime.settings import ConfigurationError, Settings

FINGERPRINT_ROW = 1
ADVICE = (
    f"run with the same {SECRET_VARIABLE} or KEYHOUSE_DATA_DIR as the server "
    "(`keyhouse config` shows what each process uses)"
)


class ServerSecretFingerprint(Base):
    """One row: a keyed hash derived from the server secret (HKDF), never the secret itself."""

    __tablename__ = "server_secret_fingerprint"
    __table_args__ = (CheckConstraint("id = 1", name="one_row"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    fingerprint: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ServerSecretMismatchError(ConfigurationError):
    """The secret this process read is not the one the database belongs to."""


async def bind_server_secret(session: AsyncSession, settings: Settings) -> ServerKeys:
    """The keys of the configured secret, once the database agrees that it is its own.

    A database without a fingerprint takes this secret's, if the secret opens the signing keys
    it already has (a database from before fingerprints) or there are none yet. Commits.
    """
    recorded = await _recorded_fingerprint(session)
    if recorded is None:
        keys = load_server_keys(settings)
        await _prove(session, keys)
        recorded = await _record(session, keys)
    else:
        found = existing_server_keys(settings)
        if found is None:
            raise ServerSecretMismatchError(
                f"there is no server secret at {settings.server_secret_file}, but this database "
                f"was set up with one (fingerprint {_short(recorded)}): {ADVICE}"
            )
        keys = found
    if not hmac.compare_digest(recorded, keys.fingerprint):
        raise ServerSecretMismatchError(
            f"the server secret from {keys.source} (fingerprint {keys.short_fingerprint}) is "
            f"not the one this database was set up with (fingerprint {_short(recorded)}): {ADVICE}"
        )
    return keys


def _short(fingerprint: str) -> str:
    return fingerprint[:SHOWN_FINGERPRINT_CHARACTERS]


async def _recorded_fingerprint(session: AsyncSession) -> str | None:
    query = select(ServerSecretFingerprint.fingerprint).where(
        ServerSecretFingerprint.id == FINGERPRINT_ROW
    )
    return await session.scalar(query)


async def _prove(session: AsyncSession, keys: ServerKeys) -> None:
    """A database from before fingerprints: one of its signing keys must open with this
    secret, if it has any (a fresh database has none, and takes any secret)."""
    signing_keys = list(await session.scalars(select(SigningKey)))
    opened = (decrypts(key, encryption_key=keys.signing_key_encryption) for key in signing_keys)
    if signing_keys and not any(opened):
        raise ServerSecretMismatchError(
            f"the server secret from {keys.source} does not open this database's signing "
            f"keys: the database was set up with another secret; {ADVICE}"
        )


async def _record(session: AsyncSession, keys: ServerKeys) -> str:
    """Records this secret's fingerprint, or reads the one a concurrent process recorded."""
    session.add(ServerSecretFingerprint(id=FINGERPRINT_ROW, fingerprint=keys.fingerprint))
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        recorded = await _recorded_fingerprint(session)
        assert recorded is not None
        return recorded
    return keys.fingerprint
