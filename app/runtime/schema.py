"""The database schema: Alembic's migrations, run from the installed package.

The scripts live at the top of the repository (`migrations/`, with `alembic.ini` beside them for
developers who run `alembic` itself) and are installed as the package `app.migrations`, so
`keyhouse db upgrade` and `keyhouse serve` find them from any directory, with no `alembic.ini`.
"""

from importlib import resources

from alembic import command
from alembic.config import Config

from app.runtime.settings import Settings, sqlite_file


def alembic_config(database_url: str) -> Config:
    """Alembic's config, built in code around the packaged scripts. It names no ini file, so
    migrations/env.py leaves logging as the caller set it up."""
    config = Config()
    config.set_main_option("script_location", str(resources.files("app.migrations")))
    config.set_main_option("path_separator", "os")
    config.attributes["database_url"] = database_url
    return config


def upgrade_database(settings: Settings) -> None:
    """Applies every pending migration (creating a SQLite database's directory first)."""
    database_file = sqlite_file(settings.database_url)
    if database_file is not None:
        database_file.parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(settings.database_url), "head")
