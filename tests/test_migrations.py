"""The migrations build, from an empty database, exactly the schema the models describe.

Alembic's env.py runs its own event loop, so these tests are synchronous. On PostgreSQL they use
a database of their own, created and dropped here, never the shared test database.
"""

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, make_url

from app.runtime.db import create_engine
from app.runtime.models import Base
from app.runtime.schema import alembic_config

from .conftest import POSTGRES_URL, postgres_admin


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL to a database with no tables at all."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'migrations.db'}"
        return
    if not POSTGRES_URL:
        pytest.skip("KEYHOUSE_TEST_DATABASE_URL is not set")
    server = make_url(POSTGRES_URL)
    # Named after the test database, so that runs against different test databases of one
    # server never drop each other's.
    name = f"{server.database}_migrations"
    # WITH (FORCE) ends sessions a failed earlier run may have left connected.
    drop = f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    asyncio.run(postgres_admin(POSTGRES_URL, [drop, f"CREATE DATABASE {name}"]))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(postgres_admin(POSTGRES_URL, [drop]))


def _config(url: str) -> Config:
    return alembic_config(url)  # built in code: leaves pytest's logging alone


def _inspect(url: str, work: Any) -> Any:
    async def run() -> Any:
        engine = create_engine(url)
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(work)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "target_metadata": Base.metadata}
    )
    return list(compare_metadata(context, Base.metadata))


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


def _revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def _head(config: Config) -> str | None:
    return ScriptDirectory.from_config(config).get_current_head()


def test_upgrade_from_empty_matches_the_models(empty_database_url: str) -> None:
    config = _config(empty_database_url)
    assert _inspect(empty_database_url, _tables) == set()
    command.upgrade(config, "head")
    assert _inspect(empty_database_url, _revision) == _head(config)
    assert _inspect(empty_database_url, _differences) == []


def test_downgrade_to_base_then_upgrade_again(empty_database_url: str) -> None:
    config = _config(empty_database_url)
    model_tables = set(Base.metadata.tables)
    command.upgrade(config, "head")
    assert _inspect(empty_database_url, _tables) == model_tables | {"alembic_version"}

    command.downgrade(config, "base")
    assert _inspect(empty_database_url, _tables) <= {"alembic_version"}
    assert _inspect(empty_database_url, _revision) is None

    command.upgrade(config, "head")
    assert _inspect(empty_database_url, _revision) == _head(config)
    assert _inspect(empty_database_url, _differences) == []


def test_migrations_form_a_single_line() -> None:
    script = ScriptDirectory.from_config(_config("sqlite+aiosqlite://"))
    assert len(script.get_heads()) == 1
    assert len(script.get_bases()) == 1
