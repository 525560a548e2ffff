"""A database knows which server secret it belongs to: a process with another secret (another
data directory, another environment) is refused with one clear line and writes nothing."""

import asyncio
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from pydantic import SecretStr
from sqlalchemy import func, select

from app.main import create_app
from app.oauth.clients import OAuthClient
from app.oauth.keys import SigningKey, create_signing_key
from app.oauth.secret_binding import (
    ServerSecretFingerprint,
    ServerSecretMismatchError,
    bind_server_secret,
)
from app.runtime.db import Database
from app.runtime.schema import alembic_config
from app.runtime.server_secret import load_server_keys
from app.runtime.settings import Settings

from ..conftest import POSTGRES_URL, TEST_SERVER_SECRET, make_settings
from ..serve import serving

KEYHOUSE = Path(sys.executable).with_name("keyhouse")
OTHER_SECRET = SecretStr("another-server-secret-" + "y" * 32)


async def bind(database: Database, settings: Settings) -> str:
    async with database.sessions() as session:
        return (await bind_server_secret(session, settings)).fingerprint


async def count(database: Database, column: Any) -> int:
    async with database.sessions() as session:
        return int(await session.scalar(select(func.count(column))) or 0)


async def test_the_first_process_records_its_secret_and_the_same_secret_is_accepted_again(
    database: Database, settings: Settings
) -> None:
    assert await count(database, ServerSecretFingerprint.id) == 0
    first = await bind(database, settings)
    assert await bind(database, settings) == first
    assert await count(database, ServerSecretFingerprint.id) == 1
    assert first == load_server_keys(settings).fingerprint
    assert TEST_SERVER_SECRET.get_secret_value() not in first


async def test_another_secret_is_refused_with_both_fingerprints_and_never_the_secret(
    database: Database, settings: Settings, tmp_path: Path
) -> None:
    recorded = await bind(database, settings)
    other = make_settings(settings.database_url, tmp_path, server_secret=OTHER_SECRET)
    with pytest.raises(ServerSecretMismatchError) as refused:
        await bind(database, other)
    message = str(refused.value)
    assert "KEYHOUSE_SERVER_SECRET" in message
    assert recorded[:12] in message
    assert load_server_keys(other).fingerprint[:12] in message
    for secret in (OTHER_SECRET, TEST_SERVER_SECRET):
        assert secret.get_secret_value() not in message
    assert "\n" not in message


async def test_a_missing_secret_file_is_not_created_for_a_database_that_has_a_secret(
    database: Database, settings: Settings, tmp_path: Path
) -> None:
    await bind(database, settings)
    elsewhere = tmp_path / "elsewhere"
    without_secret = make_settings(settings.database_url, elsewhere, server_secret=None)
    with pytest.raises(ServerSecretMismatchError, match="there is no server secret at"):
        await bind(database, without_secret)
    assert not elsewhere.exists()


async def test_concurrent_first_processes_agree_on_one_fingerprint(
    database: Database, settings: Settings
) -> None:
    fingerprints = await asyncio.gather(*(bind(database, settings) for _ in range(4)))
    assert len(set(fingerprints)) == 1
    assert await count(database, ServerSecretFingerprint.id) == 1


async def test_an_app_with_another_secret_does_not_start_and_writes_nothing(
    database: Database, settings: Settings, tmp_path: Path
) -> None:
    await bind(database, settings)
    application = create_app(
        make_settings(settings.database_url, tmp_path, server_secret=OTHER_SECRET)
    )
    with pytest.raises(ServerSecretMismatchError):
        async with application.router.lifespan_context(application):
            pass
    assert await count(database, SigningKey.kid) == 0


# A database from before fingerprints (revision 0005)


@pytest.fixture
def legacy_database_url(tmp_path: Path) -> str:
    """A SQLite database at revision 0005 with a signing key under the test secret, then
    upgraded to the head: it has keys, but no fingerprint yet."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'legacy.db'}"
    command.upgrade(alembic_config(url), "0005")

    async def add_key() -> None:
        database = Database(url)
        async with database.sessions() as session:
            encryption_key = load_server_keys(make_settings(url, tmp_path)).signing_key_encryption
            await create_signing_key(session, algorithm="ES256", encryption_key=encryption_key)
        await database.dispose()

    asyncio.run(add_key())
    command.upgrade(alembic_config(url), "head")
    return url


def test_a_legacy_database_takes_the_fingerprint_of_the_secret_that_opens_its_keys(
    legacy_database_url: str, tmp_path: Path
) -> None:
    async def check() -> None:
        database = Database(legacy_database_url)
        try:
            other = make_settings(legacy_database_url, tmp_path, server_secret=OTHER_SECRET)
            with pytest.raises(ServerSecretMismatchError, match="does not open"):
                await bind(database, other)
            assert await count(database, ServerSecretFingerprint.id) == 0

            own = make_settings(legacy_database_url, tmp_path)
            assert await bind(database, own) == load_server_keys(own).fingerprint
            with pytest.raises(ServerSecretMismatchError, match="is not the one"):
                await bind(database, other)
        finally:
            await database.dispose()

    asyncio.run(check())


# The running server and the command line


def keyhouse(environment: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(KEYHOUSE), *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def client_count(served_database: str) -> int:
    async def counted() -> int:
        database = Database(served_database)
        try:
            return await count(database, OAuthClient.id)
        finally:
            await database.dispose()

    return asyncio.run(counted())


def test_commands_with_another_secret_than_the_server_are_refused_and_write_nothing(
    tmp_path: Path, database_url: str
) -> None:
    # On SQLite, `serve` migrates a database of its own in its data dir.
    served_sqlite = f"sqlite+aiosqlite:///{tmp_path / 'served' / 'keyhouse.db'}"
    served_database = database_url if POSTGRES_URL else served_sqlite
    environment = {"KEYHOUSE_DATABASE_URL": served_database}
    with serving(tmp_path, workers=1, environment=environment) as served:
        assert served.get("/healthz").status_code == 200
        base = {
            **{k: v for k, v in os.environ.items() if not k.startswith("KEYHOUSE_")},
            "KEYHOUSE_DATABASE_URL": served_database,
        }
        with_other_secret = base | {"KEYHOUSE_SERVER_SECRET": OTHER_SECRET.get_secret_value()}
        with_other_data_dir = base | {"KEYHOUSE_DATA_DIR": str(tmp_path / "other")}
        before = client_count(served_database)
        for environment_used in (with_other_secret, with_other_data_dir):
            for args in (
                ["clients", "create", "--name", "backend", "--json"],
                ["keys", "rotate", "--json"],
            ):
                result = keyhouse(environment_used, *args)
                assert result.returncode == 2, result
                assert result.stdout == ""
                assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
                assert "KEYHOUSE_SERVER_SECRET" in result.stderr
                assert OTHER_SECRET.get_secret_value() not in result.stderr
        assert client_count(served_database) == before
        assert not (tmp_path / "other").exists()  # no stray secret file either

        same = base | {"KEYHOUSE_SERVER_SECRET": TEST_SERVER_SECRET.get_secret_value()}
        created = keyhouse(same, "clients", "create", "--name", "backend", "--json")
        assert created.returncode == 0, created.stderr
        assert client_count(served_database) == before + 1


def test_serve_with_another_secret_stops_with_one_line(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith("KEYHOUSE_")},
        "KEYHOUSE_DATA_DIR": str(data_dir),
        "KEYHOUSE_LOG_FORMAT": "text",
    }
    assert keyhouse(environment, "db", "upgrade").returncode == 0
    assert keyhouse(environment, "clients", "create", "--name", "x").returncode == 0
    other = environment | {"KEYHOUSE_SERVER_SECRET": OTHER_SECRET.get_secret_value()}
    result = keyhouse(other, "serve", "--port", "1")  # refused before it binds a port
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1].startswith("error: the server secret from")
    with sqlite3.connect(data_dir / "keyhouse.db") as connection:
        (keys,) = connection.execute("SELECT count(*) FROM signing_key").fetchone()
    assert keys == 0  # the client's command made none, and serve wrote nothing
