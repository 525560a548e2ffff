"""The development server secret file, and the purpose-bound keys derived from the secret."""

import stat
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pydantic import SecretStr

from app.runtime.server_secret import ServerKeys, load_server_keys
from app.runtime.settings import Settings

SECRET = "a-server-secret-for-these-tests-0123456789"


def development(data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir, database_url="sqlite+aiosqlite://")


def test_development_secret_file_is_created_owner_only(tmp_path: Path) -> None:
    data_dir = tmp_path / "not-yet-there"
    settings = development(data_dir)
    load_server_keys(settings)
    secret_file = settings.server_secret_file
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert len(secret_file.read_bytes().strip()) >= 43  # at least 256 bits, URL-safe base64
    assert [path.name for path in data_dir.iterdir()] == [secret_file.name]  # no temp files


def test_development_secret_file_is_reused(tmp_path: Path) -> None:
    settings = development(tmp_path)
    first = load_server_keys(settings)
    contents = settings.server_secret_file.read_bytes()
    second = load_server_keys(development(tmp_path))
    assert second == first
    assert settings.server_secret_file.read_bytes() == contents


def test_an_existing_secret_file_is_what_the_keys_come_from(tmp_path: Path) -> None:
    (tmp_path / "keyhouse.secret").write_text(SECRET + "\n")
    from_file = load_server_keys(development(tmp_path))
    configured = load_server_keys(Settings(data_dir=tmp_path, server_secret=SecretStr(SECRET)))
    assert from_file == configured


def test_separate_data_dirs_get_separate_secrets(tmp_path: Path) -> None:
    one = load_server_keys(development(tmp_path / "one"))
    two = load_server_keys(development(tmp_path / "two"))
    assert one.client_secret_hmac != two.client_secret_hmac
    assert one.signing_key_encryption != two.signing_key_encryption


def test_processes_starting_together_agree_on_one_secret(tmp_path: Path) -> None:
    start = threading.Barrier(8)

    def load(_: int) -> ServerKeys:
        start.wait()
        return load_server_keys(development(tmp_path))

    with ThreadPoolExecutor(max_workers=8) as pool:
        keys = set(pool.map(load, range(8)))
    assert len(keys) == 1
    assert [path.name for path in tmp_path.iterdir()] == ["keyhouse.secret"]


def test_configured_secret_writes_no_file(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, server_secret=SecretStr(SECRET))
    assert load_server_keys(settings) == load_server_keys(settings)
    assert list(tmp_path.iterdir()) == []


def test_each_purpose_gets_its_own_key() -> None:
    keys = load_server_keys(Settings(server_secret=SecretStr(SECRET)))
    assert len(keys.client_secret_hmac) == len(keys.signing_key_encryption) == 32
    assert keys.client_secret_hmac != keys.signing_key_encryption
    assert SECRET.encode() not in (keys.client_secret_hmac, keys.signing_key_encryption)


def test_different_secrets_derive_different_keys() -> None:
    one = load_server_keys(Settings(server_secret=SecretStr(SECRET)))
    two = load_server_keys(Settings(server_secret=SecretStr(SECRET + "!")))
    assert one.client_secret_hmac != two.client_secret_hmac
    assert one.signing_key_encryption != two.signing_key_encryption
