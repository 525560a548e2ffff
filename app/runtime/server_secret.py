"""The server secret and the purpose-bound keys derived from it.

One secret per deployment; each use gets its own key through HKDF so that, say, the key that
encrypts signing keys is never the key that hashes client secrets. The secret comes from
`KEYHOUSE_SERVER_SECRET` or, in development, from a file in the data directory that the first
process to need it creates.
"""

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from app.runtime.settings import Settings

SECRET_VARIABLE = "KEYHOUSE_SERVER_SECRET"  # noqa: S105 (a variable's name)
# How much of a fingerprint people are shown: enough to tell two secrets apart.
SHOWN_FINGERPRINT_CHARACTERS = 12


@dataclass(frozen=True, slots=True)
class ServerKeys:
    """Keys derived from the server secret, one per purpose, and where the secret came from."""

    client_secret_hmac: bytes = field(repr=False)
    signing_key_encryption: bytes = field(repr=False)
    # Keys the hashes of failed login attempts (app/runtime/ratelimit.py), so counters hold no
    # password.
    login_attempt_hmac: bytes = field(repr=False)
    # Encrypts the client secrets of external OpenID providers (app/customers/oidc/providers.py).
    login_provider_secret_encryption: bytes = field(repr=False)
    # Derives a provider login's nonce and PKCE verifier from its state (oidc/logins.py).
    login_state_hmac: bytes = field(repr=False)
    # Keys the stored hashes of one-time password reset tokens (app/customers/mail/tokens.py).
    password_reset_token_hmac: bytes = field(repr=False)
    # Recorded by the database, which thereby knows its secret (app/oauth/secret_binding.py).
    fingerprint: str
    # `KEYHOUSE_SERVER_SECRET`, or the file it was read from: for error messages.
    source: str = field(compare=False)

    @property
    def short_fingerprint(self) -> str:
        return self.fingerprint[:SHOWN_FINGERPRINT_CHARACTERS]


def _derive(secret: bytes, purpose: str) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"keyhouse", info=purpose.encode())
    return hkdf.derive(secret)


def _create(path: Path) -> None:
    """Creates the development secret file (owner-only), unless another process just did."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # Write a private temporary file, then link it into place: the link either creates the
    # whole file or fails because another process already did, so nobody reads half a secret.
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(secrets.token_urlsafe(48).encode() + b"\n")
    try:
        os.link(temporary, path)
    except FileExistsError:
        pass
    finally:
        temporary.unlink()


def secret_source(settings: Settings) -> str:
    """Where the secret is read from, in words."""
    if settings.server_secret is not None:
        return SECRET_VARIABLE
    return f"the file {settings.server_secret_file}"


def load_server_keys(settings: Settings) -> ServerKeys:
    """The keys of the configured secret; in development the secret file is created first if
    it is missing."""
    keys = _keys(settings, create=True)
    assert keys is not None
    return keys


def existing_server_keys(settings: Settings) -> ServerKeys | None:
    """The keys of the configured secret, or None while its file does not exist."""
    return _keys(settings, create=False)


def _keys(settings: Settings, *, create: bool) -> ServerKeys | None:
    if settings.server_secret is not None:
        secret = settings.server_secret.get_secret_value().encode()
    else:
        path = settings.server_secret_file
        if not path.exists():
            if not create:
                return None
            _create(path)
        secret = path.read_bytes().strip()
    return ServerKeys(
        client_secret_hmac=_derive(secret, "client-secret-hmac"),
        signing_key_encryption=_derive(secret, "signing-key-encryption"),
        login_attempt_hmac=_derive(secret, "login-attempt-hmac"),
        login_provider_secret_encryption=_derive(secret, "login-provider-secret-encryption"),
        login_state_hmac=_derive(secret, "login-state-hmac"),
        password_reset_token_hmac=_derive(secret, "password-reset-token-hmac"),
        fingerprint=_derive(secret, "server-secret-fingerprint").hex(),
        source=secret_source(settings),
    )
