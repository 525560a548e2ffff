"""A provider's client secret at rest: encrypted under a key of the server secret, bound to the
provider it belongs to."""

import uuid

import pytest
from cryptography.exceptions import InvalidTag

from app.customers.oidc.providers import LoginProvider, decrypt_secret, encrypt_secret
from app.runtime.server_secret import load_server_keys
from app.runtime.settings import Settings

from ...conftest import make_settings
from .fake_provider import CLIENT_SECRET


def test_the_secret_decrypts_only_for_its_provider_and_server_secret(settings: Settings) -> None:
    key = load_server_keys(settings).login_provider_secret_encryption
    provider = LoginProvider(id=uuid.uuid4())
    provider.client_secret_encrypted = encrypt_secret(
        CLIENT_SECRET, provider_id=provider.id, key=key
    )
    assert CLIENT_SECRET.encode() not in provider.client_secret_encrypted
    assert decrypt_secret(provider, key=key) == CLIENT_SECRET
    # Copied onto another provider's row, it does not decrypt.
    other = LoginProvider(id=uuid.uuid4(), client_secret_encrypted=provider.client_secret_encrypted)
    with pytest.raises(InvalidTag):
        decrypt_secret(other, key=key)
    # Nor under another server secret.
    elsewhere = make_settings(settings.database_url, settings.data_dir, server_secret="y" * 40)
    with pytest.raises(InvalidTag):
        decrypt_secret(provider, key=load_server_keys(elsewhere).login_provider_secret_encryption)
    # Each encryption is fresh (a random nonce).
    again = encrypt_secret(CLIENT_SECRET, provider_id=provider.id, key=key)
    assert again != provider.client_secret_encrypted
