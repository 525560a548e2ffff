"""Signing keys: generated here, private halves encrypted at rest, public halves in the JWKS.

A key is published (in `/.well-known/jwks.json`) from creation until retirement, and signs
only between activation and retirement, so resource servers can learn a key before they meet
a token signed with it (RFC 7517, RFC 7638 thumbprints as `kid`).

Rotation (`rotate_signing_key`) creates a key that activates only after a pre-publication
period. Every worker publishes it at once: the write is announced to every worker
(app/runtime/changes.py) and the key ring follows the revocation list's poll (`KeyRing.follow`),
so the served JWKS has it within milliseconds, or a poll interval without a push; resource
servers cache the JWKS for `JWKS_MAX_AGE_SECONDS`, so by the end of the period everyone has
seen it. The newest active key signs; older keys stop signing when it activates and stay
published until every token they signed has expired (`retired_at`, set in the future at
rotation).
"""

import json
import logging
import os
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_der_private_key,
)
from jwt import PyJWK
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from jwt.utils import base64url_encode
from sqlalchemy import JSON, LargeBinary, String, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from app.oauth.jws import CompactSigner, PrivateKey
from app.observability.audit import record
from app.runtime.changes import announce
from app.runtime.db import Base, Database, is_unavailable, utcnow

logger = logging.getLogger("keyhouse.keys")

KEYRING_REFRESH_SECONDS = 30.0
KEYRING_RETRY_SECONDS = 2.0  # after a refresh failed because the database was away
JWKS_MAX_AGE_SECONDS = 300  # Cache-Control on the JWKS (router.py)
# A new key waits this long before signing: every cache of the JWKS has seen it by then.
DEFAULT_PREPUBLICATION_SECONDS = JWKS_MAX_AGE_SECONDS + 60
UNKNOWN_KID_REFRESH_SECONDS = 1.0
# Resource servers that verify tokens elsewhere may allow for clock skew past `exp`: retired
# keys stay published this much longer.
RETIREMENT_MARGIN_SECONDS = 300
NONCE_BYTES = 12


class SigningKey(Base):
    __tablename__ = "signing_key"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    algorithm: Mapped[str] = mapped_column(String(16))
    public_jwk: Mapped[dict[str, Any]] = mapped_column(JSON)
    # AES-256-GCM under a key derived from the server secret: nonce || ciphertext, kid as AAD.
    private_key_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    activated_at: Mapped[datetime | None]
    # From then on the key is no longer published; None while no newer key replaces it.
    retired_at: Mapped[datetime | None]

    def is_published(self, now: datetime) -> bool:
        return self.retired_at is None or self.retired_at > now

    def may_sign(self, now: datetime) -> bool:
        return self.activated_at is not None and self.activated_at <= now and self.is_published(now)


announce(SigningKey, "keys")


def _generate_private_key(algorithm: str) -> PrivateKey:
    if algorithm == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if algorithm == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=3072)
    raise ValueError(f"unsupported signing algorithm {algorithm}")


def _public_jwk(private_key: PrivateKey) -> dict[str, Any]:
    if isinstance(private_key, ec.EllipticCurvePrivateKey):
        jwk: dict[str, Any] = ECAlgorithm.to_jwk(private_key.public_key(), as_dict=True)
    else:
        jwk = RSAAlgorithm.to_jwk(private_key.public_key(), as_dict=True)
    # We publish `use: sig`; RFC 7517 §4.3 says not to send `key_ops` beside it.
    jwk.pop("key_ops", None)
    return jwk


def jwk_thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638: SHA-256 over the required members in lexicographic order."""
    required = {"EC": ("crv", "kty", "x", "y"), "RSA": ("e", "kty", "n")}[jwk["kty"]]
    canonical = json.dumps({name: jwk[name] for name in required}, separators=(",", ":"))
    digest = hashes.Hash(hashes.SHA256())
    digest.update(canonical.encode())
    return base64url_encode(digest.finalize()).decode()


def _encrypt(private_key: PrivateKey, *, kid: str, key: bytes) -> bytes:
    der = private_key.private_bytes(Encoding.DER, PrivateFormat.PKCS8, NoEncryption())
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, der, kid.encode())


def _decrypt(blob: bytes, *, kid: str, key: bytes) -> PrivateKey:
    der = AESGCM(key).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], kid.encode())
    private_key = load_der_private_key(der, password=None)
    assert isinstance(private_key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey))
    return private_key


def decrypts(key: SigningKey, *, encryption_key: bytes) -> bool:
    """Whether `encryption_key` opens this key's private half (proof of the server secret)."""
    try:
        _decrypt(key.private_key_encrypted, kid=key.kid, key=encryption_key)
    except InvalidTag:
        return False
    return True


def _new_signing_key(
    *, algorithm: str, encryption_key: bytes, activated_at: datetime | None
) -> SigningKey:
    private_key = _generate_private_key(algorithm)
    jwk = _public_jwk(private_key)
    kid = jwk_thumbprint(jwk)
    return SigningKey(
        kid=kid,
        algorithm=algorithm,
        public_jwk={**jwk, "kid": kid, "use": "sig", "alg": algorithm},
        private_key_encrypted=_encrypt(private_key, kid=kid, key=encryption_key),
        activated_at=activated_at,
    )


async def create_signing_key(
    session: AsyncSession, *, algorithm: str, encryption_key: bytes, activate: bool = True
) -> SigningKey:
    key = _new_signing_key(
        algorithm=algorithm,
        encryption_key=encryption_key,
        activated_at=utcnow() if activate else None,
    )
    session.add(key)
    record(session, "key.created", actor="cli", subject=key.kid, algorithm=algorithm)
    await session.commit()
    return key


@dataclass(frozen=True, slots=True)
class RotatedKeys:
    new_key: SigningKey
    retiring: list[SigningKey]


async def rotate_signing_key(
    session: AsyncSession,
    *,
    algorithm: str,
    encryption_key: bytes,
    max_token_lifetime: int,
    prepublication_seconds: int = DEFAULT_PREPUBLICATION_SECONDS,
) -> RotatedKeys:
    """A new key, published now and signing after `prepublication_seconds`; the keys it
    replaces stay published until `max_token_lifetime` after that (plus a margin)."""
    now = utcnow()
    activates_at = now + timedelta(seconds=prepublication_seconds)
    new_key = _new_signing_key(
        algorithm=algorithm, encryption_key=encryption_key, activated_at=activates_at
    )
    retires_at = activates_at + timedelta(seconds=max_token_lifetime + RETIREMENT_MARGIN_SECONDS)
    published = select(SigningKey).where(
        or_(SigningKey.retired_at.is_(None), SigningKey.retired_at > now)
    )
    retiring = [key for key in await session.scalars(published) if key.activated_at is not None]
    for key in retiring:
        if key.retired_at is None or key.retired_at > retires_at:
            key.retired_at = retires_at
    session.add(new_key)
    record(
        session,
        "key.rotated",
        actor="cli",
        subject=new_key.kid,
        algorithm=algorithm,
        activates_at=activates_at.isoformat(),
        retiring=",".join(key.kid for key in retiring),
    )
    await session.commit()
    return RotatedKeys(new_key=new_key, retiring=retiring)


async def list_signing_keys(session: AsyncSession) -> list[SigningKey]:
    query = select(SigningKey).order_by(SigningKey.created_at, SigningKey.kid)
    return list(await session.scalars(query))


async def ensure_signing_key(
    session: AsyncSession, *, algorithm: str, encryption_key: bytes
) -> SigningKey:
    """The newest key that may sign now, created first if there is none."""
    now = utcnow()
    query = (
        select(SigningKey)
        .where(
            SigningKey.activated_at <= now,
            or_(SigningKey.retired_at.is_(None), SigningKey.retired_at > now),
        )
        .order_by(SigningKey.activated_at.desc())
        .limit(1)
    )
    active = (await session.scalars(query)).first()
    if active is not None:
        return active
    return await create_signing_key(session, algorithm=algorithm, encryption_key=encryption_key)


async def _version(session: AsyncSession) -> tuple[object, ...]:
    """Changes whenever a key is added (keys are never deleted)."""
    query = select(func.count(), func.max(SigningKey.created_at))
    return tuple((await session.execute(query)).one())


@dataclass(frozen=True, slots=True)
class ActiveKey:
    """The key that signs new tokens, decrypted, with its signer ready."""

    kid: str
    algorithm: str
    private_key: PrivateKey
    signer: CompactSigner


class KeyRing:
    """This worker's view of the signing keys, re-read from the database every 30 seconds and
    whenever a key is added; while the database is away, the keys it read last go on serving."""

    def __init__(self, database: Database, *, encryption_key: bytes) -> None:
        self._database = database
        self._encryption_key = encryption_key
        self._active: ActiveKey | None = None
        self._jwks: dict[str, Any] = {"keys": []}
        self._verification_keys: dict[str, PyJWK] = {}
        self._loaded_at = float("-inf")
        self._retry_at = float("-inf")  # after a failed refresh, the next try
        self._version: tuple[object, ...] | None = None  # of the keys read last
        self._announced = False  # a change to the keys was announced since they were read

    def fresh_active_key(self) -> ActiveKey | None:
        """The signing key without an await, while the ring is fresh (the busy path)."""
        if time.monotonic() - self._loaded_at < KEYRING_REFRESH_SECONDS:
            return self._active
        return None

    async def active_key(self) -> ActiveKey:
        await self._refresh_if_stale()
        if self._active is None:
            raise LookupError("no active signing key; run `keyhouse serve` or `keyhouse keys`")
        return self._active

    async def jwks(self) -> dict[str, Any]:
        await self._refresh_if_stale()
        return self._jwks

    async def verification_key(self, kid: str) -> PyJWK | None:
        """The published key with this `kid`; an unknown one prompts an early re-read."""
        await self._refresh_if_stale()
        key = self._verification_keys.get(kid)
        if key is None and time.monotonic() - self._loaded_at >= UNKNOWN_KID_REFRESH_SECONDS:
            # Maybe another worker just created it; re-reading is bounded to once a second.
            await self.refresh()
            key = self._verification_keys.get(kid)
        return key

    async def _refresh_if_stale(self) -> None:
        now = time.monotonic()
        if now - self._loaded_at < KEYRING_REFRESH_SECONDS or now < self._retry_at:
            return
        try:
            await self.refresh()
        except Exception as error:
            # Keys change only with a pre-publication period of minutes, so while the
            # database is away the keys already read keep signing and verifying.
            never_loaded = self._loaded_at == float("-inf")
            if never_loaded or not is_unavailable(error):
                raise
            self._retry_at = now + KEYRING_RETRY_SECONDS
            logger.warning("key ring: database unavailable, serving the keys read before")

    def changed(self) -> None:
        """A write to the keys was announced: the next `follow` re-reads them."""
        self._announced = True

    async def follow(self, session: AsyncSession) -> None:
        """Re-reads the keys if any was added since they were read last (a rotation by any
        worker, replica or command), or a change was announced. Called on every poll of the
        revocation list, so the JWKS of every worker shows a new key as fast as a revocation."""
        if self._announced:
            try:
                await self.refresh()
            except Exception:
                self._announced = True  # still to be read, at the next poll
                raise
        elif self._version is not None and await _version(session) != self._version:
            await self.refresh()

    async def refresh(self) -> None:
        self._announced = False  # first: an announcement during the read is read again
        now = utcnow()
        async with self._database.sessions() as session:
            version = await _version(session)  # first: a key added meanwhile is read again
            keys = [key for key in await list_signing_keys(session) if key.is_published(now)]
        self._version = version
        signing = [key for key in keys if key.may_sign(now)]
        newest = max(signing, key=lambda key: key.activated_at or now, default=None)
        if newest is not None and (self._active is None or self._active.kid != newest.kid):
            self._active = self._activate(newest)
        self._jwks = {"keys": [key.public_jwk for key in keys]}
        self._verification_keys = {key.kid: PyJWK(key.public_jwk) for key in keys}
        self._loaded_at = time.monotonic()

    def _activate(self, key: SigningKey) -> ActiveKey:
        private_key = _decrypt(key.private_key_encrypted, kid=key.kid, key=self._encryption_key)
        signer = CompactSigner(private_key=private_key, algorithm=key.algorithm, kid=key.kid)
        return ActiveKey(
            kid=key.kid, algorithm=key.algorithm, private_key=private_key, signer=signer
        )
