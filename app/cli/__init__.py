"""`keyhouse`: run the token server, and manage its stores, clients, shoppers, keys and audit trail.

Every command reads the same `KEYHOUSE_*` settings as the server (`keyhouse config` shows which
database, data directory and server secret that means), and calls the same service functions as
the HTTP routes. With `--json` a command prints exactly one JSON document on stdout, for scripts;
messages and errors go to stderr, one line each.
"""

import sys

import typer

from app.cli.accounts import accounts_cli, password_profiles_cli
from app.cli.audit import audit_cli
from app.cli.clients import clients_cli
from app.cli.customers import customers_cli
from app.cli.db import db_cli
from app.cli.keys import keys_cli
from app.cli.login_providers import login_providers_cli
from app.cli.serve import serve, show_config
from app.cli.stores import stores_cli
from app.runtime.settings import ConfigurationError

HELP = (
    "Run the Keyhouse token server, and manage its stores, clients, shoppers, signing keys and "
    "audit trail.\n\n"
    "Every command reads the server's KEYHOUSE_* settings (keyhouse config shows which database, "
    "data directory and server secret they name). With --json a command prints one JSON "
    "document, for scripts; errors are one line on stderr."
)

# No pretty tracebacks: they print local variables, and locals can hold secrets.
cli = typer.Typer(
    no_args_is_help=True, add_completion=False, help=HELP, pretty_exceptions_enable=False
)
cli.command("serve")(serve)
cli.command("config")(show_config)
cli.add_typer(stores_cli, name="stores")
cli.add_typer(clients_cli, name="clients")
cli.add_typer(customers_cli, name="customers")
cli.add_typer(login_providers_cli, name="login-providers")
cli.add_typer(accounts_cli, name="accounts")
cli.add_typer(password_profiles_cli, name="password-profiles")
cli.add_typer(keys_cli, name="keys")
cli.add_typer(audit_cli, name="audit")
cli.add_typer(db_cli, name="db")


def main() -> None:
    try:
        cli()
    except ConfigurationError as error:
        typer.echo(f"error: {error}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
