"""Client secrets: generated with 256 bits, stored as keyed hashes, matched in constant time."""

import re
import time
import uuid

import pytest

from app.oauth.registry import ClientRecord
from app.runtime.passwords import ClientSecretHasher, generate_client_secret

KEY = b"k" * 32
URL_SAFE = re.compile(r"[A-Za-z0-9_-]+")


@pytest.fixture
def hasher() -> ClientSecretHasher:
    return ClientSecretHasher(KEY)


def record(*secret_hashes: tuple[str, float | None]) -> ClientRecord:
    """A client whose secrets expire the given seconds from now (None: never)."""
    now = time.time()
    store_id = uuid.uuid4()
    return ClientRecord(
        client_id="client",
        store_id=store_id,
        store_claim=str(store_id),
        is_public=False,
        enabled=True,
        grant_types=frozenset({"client_credentials"}),
        scopes=frozenset({"read"}),
        allowed_origins=frozenset(),
        token_ttl=None,
        secret_hashes=tuple(
            (digest, now + offset if offset is not None else None)
            for digest, offset in secret_hashes
        ),
    )


def test_generated_secrets_have_256_bits_in_url_safe_characters() -> None:
    secrets = {generate_client_secret() for _ in range(200)}
    assert len(secrets) == 200
    for secret in secrets:
        assert len(secret) == 43  # token_urlsafe(32): 32 bytes, unpadded base64url
        assert URL_SAFE.fullmatch(secret)


def test_hash_is_keyed_and_never_the_secret(hasher: ClientSecretHasher) -> None:
    secret = generate_client_secret()
    digest = hasher.hash(secret)
    assert secret not in digest
    assert re.fullmatch(r"[0-9a-f]{64}", digest)  # fits client_secret.secret_hash
    assert digest == hasher.hash(secret)
    assert digest != ClientSecretHasher(b"other key" * 4).hash(secret)


def test_matches_the_right_secret(hasher: ClientSecretHasher) -> None:
    secret = generate_client_secret()
    assert hasher.matches(secret, [hasher.hash(secret)])


@pytest.mark.parametrize(
    "presented",
    ["", "wrong", "almost-" + "x" * 36],
)
def test_rejects_a_wrong_secret(hasher: ClientSecretHasher, presented: str) -> None:
    assert not hasher.matches(presented, [hasher.hash(generate_client_secret())])


def test_rejects_the_stored_hash_presented_as_the_secret(hasher: ClientSecretHasher) -> None:
    stored = hasher.hash(generate_client_secret())
    assert not hasher.matches(stored, [stored])


def test_rejects_when_nothing_is_stored(hasher: ClientSecretHasher) -> None:
    assert not hasher.matches(generate_client_secret(), [])


def test_another_servers_hash_does_not_match(hasher: ClientSecretHasher) -> None:
    secret = generate_client_secret()
    assert not hasher.matches(secret, [ClientSecretHasher(b"x" * 32).hash(secret)])


def test_any_of_several_stored_hashes_matches(hasher: ClientSecretHasher) -> None:
    old, new, stranger = (generate_client_secret() for _ in range(3))
    stored = [hasher.hash(old), hasher.hash(new)]
    assert hasher.matches(old, stored)
    assert hasher.matches(new, stored)
    assert hasher.matches(new, iter(stored))  # any iterable, consumed once
    assert not hasher.matches(stranger, stored)


def test_expired_secrets_are_not_offered(hasher: ClientSecretHasher) -> None:
    expired, rotating, current = (generate_client_secret() for _ in range(3))
    client = record(
        (hasher.hash(expired), -1.0),
        (hasher.hash(rotating), 3600.0),
        (hasher.hash(current), None),
    )
    valid = client.valid_secret_hashes(time.time())
    assert valid == [hasher.hash(rotating), hasher.hash(current)]
    assert not hasher.matches(expired, valid)
    assert hasher.matches(rotating, valid)
    assert hasher.matches(current, valid)


def test_a_secret_expires_at_its_expiry_instant(hasher: ClientSecretHasher) -> None:
    client = record((hasher.hash("secret"), 300.0))
    (expires_at,) = [expires for _, expires in client.secret_hashes]
    assert expires_at is not None
    assert client.valid_secret_hashes(expires_at - 0.001)
    assert client.valid_secret_hashes(expires_at) == []
    assert client.valid_secret_hashes(expires_at + 86_400) == []
