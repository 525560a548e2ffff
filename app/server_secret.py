"""The server secret and the purpose-bound keys derived from it.

One secret per deployment; each use gets its own key through HKDF so that, say, the key that
encrypts signing keys is never the key that hashes client secrets.
"""

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from app.settings import Settings


@dataclass(frozen=True, slots=True)
class ServerKeys:
    """Keys derived from the server secret, one per purpose."""

    client_secret_hmac: bytes
    signing_key_encryption: bytes
    # Keys the hashes of failed login attempts (app/ratelimit.py), so counters hold no password.
    login_attempt_hmac: bytes
    # Encrypts the client secrets of external OpenID providers (app/customers/oidc/providers.py).
    login_provider_secret_encryption: bytes
    # Derives a provider login's nonce and PKCE verifier from its state (oidc/logins.py).
    login_state_hmac: bytes


def _derive(secret: bytes, purpose: str) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"keyhouse", info=purpose.encode())
    return hkdf.derive(secret)


def _read_or_create(path: Path) -> bytes:
    """Reads the development secret, creating it (owner-only) on first run."""
    if path.exists():
        return path.read_bytes().strip()
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
    return path.read_bytes().strip()


def load_server_keys(settings: Settings) -> ServerKeys:
    if settings.server_secret is not None:
        secret = settings.server_secret.get_secret_value().encode()
    else:
        secret = _read_or_create(settings.server_secret_file)
    return ServerKeys(
        client_secret_hmac=_derive(secret, "client-secret-hmac"),
        signing_key_encryption=_derive(secret, "signing-key-encryption"),
        login_attempt_hmac=_derive(secret, "login-attempt-hmac"),
        login_provider_secret_encryption=_derive(secret, "login-provider-secret-encryption"),
        login_state_hmac=_derive(secret, "login-state-hmac"),
    )
