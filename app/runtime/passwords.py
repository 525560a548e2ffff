"""Hashing and verifying secrets and passwords.

Client secrets are machine-generated with 256 bits of entropy, so a slow hash buys nothing
against guessing and would cap the token endpoint at a few requests a second: they are stored
as HMAC-SHA256 under a key derived from the server secret, which also means a stolen database
alone cannot be used to test candidate secrets.
"""

import asyncio
import hashlib
import hmac
import secrets
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from passlib.context import CryptContext  # type: ignore[import-untyped]

T = TypeVar("T")

CLIENT_SECRET_BYTES = 32  # 256 bits


def generate_client_secret() -> str:
    # token_urlsafe draws from A-Z a-z 0-9 - _, which form-urlencoding leaves unchanged, so the
    # secret reads the same whether or not a client encodes it for HTTP Basic (RFC 6749 §2.3.1).
    return secrets.token_urlsafe(CLIENT_SECRET_BYTES)


class ClientSecretHasher:
    """Keyed hashes of client secrets, compared in constant time."""

    def __init__(self, key: bytes) -> None:
        # Keyed once: a copy of it hashes in 0.8 µs, against 1.4 µs for `hmac.digest`, which
        # looks the digest up and keys a new context on every call (every client_credentials).
        self._keyed = hmac.new(key, digestmod=hashlib.sha256)
        # Compared against when a client is unknown, so that costs what a wrong secret costs.
        self._decoy = self.hash(secrets.token_urlsafe(CLIENT_SECRET_BYTES))

    def hash(self, secret: str) -> str:
        mac = self._keyed.copy()
        mac.update(secret.encode())
        return mac.hexdigest()

    def matches(self, secret: str, stored_hashes: Iterable[str]) -> bool:
        """True if `secret` matches any stored hash; always does at least one comparison."""
        candidate = self.hash(secret)
        found = False
        compared = False
        for stored in stored_hashes:
            compared = True
            found |= hmac.compare_digest(candidate, stored)
        if not compared:
            hmac.compare_digest(candidate, self._decoy)
        return found


# Customer passwords: argon2id (RFC 9106) through the passlib API (libpass). 32 MiB, 2 passes,
# 1 lane: about 40 ms per hash or verification on the development machine (2026-11, 2 cores),
# within the tens of milliseconds a login may cost, and above OWASP's 19 MiB / 2 passes.
# Hashes in older parameters or schemes verify, then `needs_update` has them re-hashed.
ARGON2_MEMORY_KIB = 32_768
ARGON2_TIME_COST = 2
ARGON2_PARALLELISM = 1

password_context = CryptContext(
    schemes=["argon2", "pbkdf2_sha256"],
    deprecated=["pbkdf2_sha256"],
    argon2__type="ID",
    argon2__memory_cost=ARGON2_MEMORY_KIB,
    argon2__time_cost=ARGON2_TIME_COST,
    argon2__parallelism=ARGON2_PARALLELISM,
)


@dataclass(frozen=True, slots=True)
class PasswordCheck:
    matches: bool
    # A fresh hash when the stored one used older parameters or an older scheme.
    upgraded_hash: str | None


class PasswordHasher:
    """Slow, salted password hashing, run off the event loop on a bounded pool of threads.

    At most `concurrency` hashes run at once (argon2 releases the GIL), so a flood of logins
    holds at most that many 32 MiB buffers and leaves the event loop a core to serve others.
    """

    def __init__(self, concurrency: int) -> None:
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="password")
        # Verified against when there is no stored hash, so an unknown email costs the same.
        self._decoy = password_context.hash(secrets.token_urlsafe(16))

    async def hash(self, password: str) -> str:
        return await self._run(password_context.hash, password)

    async def check(self, password: str, stored_hash: str | None) -> PasswordCheck:
        if stored_hash is None:
            await self._run(password_context.verify, password, self._decoy)
            return PasswordCheck(matches=False, upgraded_hash=None)
        matches, upgraded = await self._run(
            password_context.verify_and_update, password, stored_hash
        )
        return PasswordCheck(matches=matches, upgraded_hash=upgraded if matches else None)

    async def _run(self, function: Callable[..., T], *args: str) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, function, *args)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
