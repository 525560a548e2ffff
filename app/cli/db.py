"""`keyhouse db`: bring the database schema up to date."""

import logging
import logging.config

import typer

from app.cli.common import log_config
from app.runtime.schema import upgrade_database
from app.runtime.settings import get_settings

db_cli = typer.Typer(
    no_args_is_help=True, help="Bring the database schema up to date (migrations)."
)


@db_cli.command("upgrade")
def db_upgrade() -> None:
    """Apply every pending migration."""
    settings = get_settings()
    logging.config.dictConfig(log_config(settings))  # Alembic's lines, in the server's format
    upgrade_database(settings)
