"""Hashing and verifying secrets.

Client secrets are machine-generated with 256 bits of entropy, so a slow hash buys nothing
against guessing and would cap the token endpoint at a few requests a second: they are stored
as HMAC-SHA256 under a key derived from the server secret, which also means a stolen database
alone cannot be used to test candidate secrets.
"""

import hashlib
import hmac
import secrets
from collections.abc import Iterable

CLIENT_SECRET_BYTES = 32  # 256 bits


def generate_client_secret() -> str:
    # token_urlsafe draws from A-Z a-z 0-9 - _, which form-urlencoding leaves unchanged, so the
    # secret reads the same whether or not a client encodes it for HTTP Basic (RFC 6749 §2.3.1).
    return secrets.token_urlsafe(CLIENT_SECRET_BYTES)


class ClientSecretHasher:
    """Keyed hashes of client secrets, compared in constant time."""

    def __init__(self, key: bytes) -> None:
        self._key = key
        # Compared against when a client is unknown, so that costs what a wrong secret costs.
        self._decoy = self.hash(secrets.token_urlsafe(CLIENT_SECRET_BYTES))

    def hash(self, secret: str) -> str:
        return hmac.new(self._key, secret.encode(), hashlib.sha256).hexdigest()

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
