"""The `keyhouse` command: thin over the same service functions as the routes.

`--json` prints exactly one JSON document on stdout; messages go to stderr. Scripts rely on
these command forms, so they stay stable.
"""

import asyncio
import getpass
import json
import logging
import logging.config
import os
import sys
import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from pydantic import ValidationError
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from app.customers import customers as customer_service
from app.customers.oidc import providers as login_provider_service
from app.http.errors import KeyhouseError
from app.oauth import clients as client_service
from app.oauth import keys as key_service
from app.oauth import stores as store_service
from app.oauth.secret_binding import bind_server_secret
from app.observability import audit as audit_service
from app.observability.logs import logging_config
from app.runtime.db import Database, is_unavailable, storage_fault
from app.runtime.passwords import ClientSecretHasher, PasswordHasher
from app.runtime.schema import upgrade_database
from app.runtime.server_secret import ServerKeys, existing_server_keys, secret_source
from app.runtime.serving import exec_server
from app.runtime.settings import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    ConfigurationError,
    Settings,
    get_settings,
    sqlite_file,
)

# No pretty tracebacks: they print local variables, and locals can hold secrets.
cli = typer.Typer(
    no_args_is_help=True, add_completion=False, help=__doc__, pretty_exceptions_enable=False
)
stores_cli = typer.Typer(no_args_is_help=True, help="Stores (tenants).")
clients_cli = typer.Typer(no_args_is_help=True, help="OAuth clients.")
customers_cli = typer.Typer(no_args_is_help=True, help="Customers (shoppers).")
keys_cli = typer.Typer(no_args_is_help=True, help="Token signing keys.")
audit_cli = typer.Typer(no_args_is_help=True, help="The audit trail.")
db_cli = typer.Typer(no_args_is_help=True, help="The database schema.")
cli.add_typer(stores_cli, name="stores")
cli.add_typer(clients_cli, name="clients")
cli.add_typer(customers_cli, name="customers")
cli.add_typer(keys_cli, name="keys")
cli.add_typer(audit_cli, name="audit")
cli.add_typer(db_cli, name="db")

T = TypeVar("T")
MAX_AUDIT_EVENTS_LISTED = 10_000
JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=1)


def _with_session(work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    async def run() -> T:
        database = Database(get_settings().database_url)
        try:
            async with database.sessions() as session:
                return await work(session)
        finally:
            await database.dispose()

    try:
        return asyncio.run(run())
    except KeyhouseError as error:
        _fail(error.detail)
    except ConfigurationError as error:  # a server secret the database does not know, say
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(code=2) from None


def _with_server_keys(work: Callable[[AsyncSession, ServerKeys], Awaitable[T]]) -> T:
    """`work` with the server secret's keys, once the database agrees that the secret is its
    own (app/oauth/secret_binding.py); on a mismatch, one line and nothing written."""

    async def bound(session: AsyncSession) -> T:
        return await work(session, await bind_server_secret(session, get_settings()))

    return _with_session(bound)


def _print(document: Any, as_json: bool, text: str) -> None:
    typer.echo(json.dumps(document, indent=None if as_json else 2) if as_json else text)


@db_cli.command("upgrade")
def db_upgrade() -> None:
    """Apply every pending migration."""
    settings = get_settings()
    logging.config.dictConfig(_log_config(settings))  # Alembic's lines, in the server's format
    upgrade_database(settings)


def _store_json(store: store_service.Store) -> dict[str, Any]:
    return {
        "id": str(store.id),
        "name": store.name,
        "allow_customer_signup": store.allow_customer_signup,
        "require_email_verification": store.require_email_verification,
    }


def _store_line(store: dict[str, Any]) -> str:
    settings = [
        "sign-up open" if store["allow_customer_signup"] else "sign-up closed",
        "verified emails required" if store["require_email_verification"] else "",
    ]
    return f"{store['id']}  {store['name']}  ({', '.join(filter(None, settings))})"


@stores_cli.command("create")
def stores_create(name: str, as_json: JsonFlag = False) -> None:
    """Create a store."""
    store = _with_session(lambda session: store_service.create_store(session, name=name))
    _print(_store_json(store), as_json, f"created store {store.id}")


@stores_cli.command("list")
def stores_list(as_json: JsonFlag = False) -> None:
    """List stores, oldest (the default) first, with their shopper settings."""
    stores = _with_session(store_service.list_stores)
    rows = [_store_json(store) for store in stores]
    _print(rows, as_json, "\n".join(_store_line(row) for row in rows))


@stores_cli.command("update")
def stores_update(
    store: Annotated[str, typer.Argument(help="The store's id.")],
    customer_signup: Annotated[
        bool | None,
        typer.Option(
            "--customer-signup/--no-customer-signup",
            help="Whether storefronts may sign shoppers up (and sign-in create them).",
        ),
    ] = None,
    require_email_verification: Annotated[
        bool | None,
        typer.Option(
            "--require-email-verification/--no-require-email-verification",
            help="Whether a password login needs a verified email first.",
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Change a store's shopper settings; what is not given stays as it is."""

    async def update(session: AsyncSession) -> store_service.Store:
        found = await store_service.get_store(
            session, store_id=await _resolve_store(session, store)
        )
        assert found is not None  # _resolve_store checked
        return await store_service.change_store_settings(
            session,
            store=found,
            allow_customer_signup=customer_signup,
            require_email_verification=require_email_verification,
        )

    row = _store_json(_with_session(update))
    _print(row, as_json, _store_line(row))


async def _resolve_store(session: AsyncSession, store: str | None) -> uuid.UUID:
    if store is None:
        return (await store_service.ensure_default_store(session)).id
    try:
        store_id = uuid.UUID(store)
    except ValueError:
        _fail("--store takes a store id (a UUID)")
    if await store_service.get_store(session, store_id=store_id) is None:
        _fail("no store has that id")
    return store_id


def _client_json(client: client_service.OAuthClient) -> dict[str, Any]:
    return {
        "client_id": client.id,
        "store_id": str(client.store_id),
        "name": client.name,
        "public": client.is_public,
        "grant_types": client.grant_types,
        "scope": " ".join(client.scopes),
        "origins": client.allowed_origins,
        "redirect_uris": client.redirect_uris,
        "ttl": client.token_ttl,
        "enabled": client.enabled,
        "created_at": client.created_at.isoformat(),
    }


@clients_cli.command("create")
def clients_create(
    name: Annotated[str, typer.Option("--name", help="A name for people to recognise.")],
    store: Annotated[str | None, typer.Option(help="Store id; default: the default store.")] = None,
    public: Annotated[bool, typer.Option("--public", help="No secret; implicit only.")] = False,
    scope: Annotated[
        str | None,
        typer.Option(help='The most it may ask for; default "read write", "read" if public.'),
    ] = None,
    origin: Annotated[
        list[str] | None, typer.Option("--origin", help="A browser origin; repeatable.")
    ] = None,
    grant: Annotated[
        list[str] | None, typer.Option("--grant", help="Allowed grant type; repeatable.")
    ] = None,
    ttl: Annotated[int | None, typer.Option(help="Token lifetime in seconds.")] = None,
    redirect_uri: Annotated[
        list[str] | None,
        typer.Option(
            "--redirect-uri",
            help="Where shoppers return after signing in with a login provider; repeatable.",
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Create a client. Its secret is printed now and never again."""

    async def create(session: AsyncSession, keys: ServerKeys) -> client_service.CreatedClient:
        return await client_service.create_client(
            session,
            hasher=ClientSecretHasher(keys.client_secret_hmac),
            store_id=await _resolve_store(session, store),
            name=name,
            public=public,
            scope=scope,
            grant_types=grant or (),
            origins=origin or (),
            redirect_uris=redirect_uri or (),
            token_ttl=ttl,
        )

    created = _with_server_keys(create)
    document = {
        "client_id": created.client.id,
        "client_secret": created.client_secret,
        "store_id": str(created.client.store_id),
    }
    text = "\n".join(f"{key}: {value}" for key, value in document.items())
    if created.client_secret:
        text += "\nThe secret is shown only this once; store it now."
    _print(document, as_json, text)


@clients_cli.command("list")
def clients_list(
    store: Annotated[str | None, typer.Option(help="Only this store's clients.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """List clients (never their secrets)."""

    async def list_all(session: AsyncSession) -> list[client_service.OAuthClient]:
        store_id = await _resolve_store(session, store) if store else None
        return await client_service.list_clients(session, store_id=store_id)

    rows = [_client_json(client) for client in _with_session(list_all)]
    lines = [
        f"{row['client_id']}  {'public' if row['public'] else 'confidential'}  "
        f"{'enabled' if row['enabled'] else 'disabled'}  {row['name']}"
        for row in rows
    ]
    _print(rows, as_json, "\n".join(lines))


@clients_cli.command("disable")
def clients_disable(client_id: str, as_json: JsonFlag = False) -> None:
    """Disable a client: it gets no new tokens, and its tokens stop working within a second."""
    lag = get_settings().client_cache_seconds + 1
    client = _with_session(
        lambda session: client_service.disable_client(
            session, client_id=client_id, issuing_lag_seconds=lag
        )
    )
    if client is None:
        _fail("no client has that id")
    _print(_client_json(client), as_json, f"disabled {client.id}")


@clients_cli.command("rotate-secret")
def clients_rotate_secret(
    client_id: str,
    grace: Annotated[
        int,
        typer.Option(help="Seconds the current secret keeps working (up to 30 days)."),
    ] = client_service.DEFAULT_SECRET_GRACE_SECONDS,
    as_json: JsonFlag = False,
) -> None:
    """Give a confidential client a new secret (printed now and never again); the current
    one keeps working for the grace period, so backends can switch without downtime."""
    rotated = _with_server_keys(
        lambda session, keys: client_service.rotate_client_secret(
            session,
            hasher=ClientSecretHasher(keys.client_secret_hmac),
            client_id=client_id,
            grace_seconds=grace,
        )
    )
    if rotated is None:
        _fail("no client has that id")
    expire_at = rotated.previous_expire_at
    document = {
        "client_id": rotated.client.id,
        "client_secret": rotated.client_secret,
        "store_id": str(rotated.client.store_id),
        "previous_secret_expires_at": expire_at.isoformat() if expire_at else None,
    }
    text = "\n".join(f"{key}: {value}" for key, value in document.items())
    _print(document, as_json, text + "\nThe secret is shown only this once; store it now.")


def _read_password() -> str:
    """One line from stdin; at a terminal, typed without echo."""
    if sys.stdin.isatty():
        return getpass.getpass("Password: ")
    return sys.stdin.readline().rstrip("\r\n")


def _customer_in(email: str, name: str | None, password: str) -> customer_service.CustomerIn:
    name = name if name is not None else email.strip().partition("@")[0][:200]
    try:
        return customer_service.CustomerIn(
            type="customer", name=name, email=email, password=password
        )
    except ValidationError as error:
        # Only field names are shown: the values may hold the password.
        fields = dict.fromkeys(str(problem["loc"][0]) for problem in error.errors())
        rules = {"password": "8 to 1024 characters", "name": "1 to 200 characters"}
        _fail("invalid " + ", ".join(f"{f} ({rules[f]})" if f in rules else f for f in fields))


@customers_cli.command("create")
def customers_create(
    email: Annotated[str, typer.Option("--email", help="The customer's email (login).")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin (one line).")
    ] = False,
    name: Annotated[str | None, typer.Option(help="Default: the email before '@'.")] = None,
    store: Annotated[str | None, typer.Option(help="Store id; default: the default store.")] = None,
    email_verified: Annotated[
        bool, typer.Option(help="The shop knows the shopper receives mail at this email.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Sign a customer up, as POST /v2/customers does."""
    if not password_stdin:
        # Never as an argument: arguments show in `ps` and in shell history.
        _fail("--password-stdin is required: the password is read from stdin")
    data = _customer_in(email, name, _read_password())
    data.email_verified = email_verified
    hasher = PasswordHasher(concurrency=1)

    async def create(session: AsyncSession) -> customer_service.Customer:
        return await customer_service.create_customer(
            session, hasher=hasher, store_id=await _resolve_store(session, store), data=data
        )

    try:
        customer = _with_session(create)
    finally:
        hasher.close()
    document = {
        "id": str(customer.id),
        "email": customer.email,
        "name": customer.name,
        "store_id": str(customer.store_id),
        "email_verified": customer.email_verified,
    }
    _print(document, as_json, f"created customer {customer.id}")


@customers_cli.command("delete")
def customers_delete(customer_id: str, as_json: JsonFlag = False) -> None:
    """Delete a customer (their addresses too; orders stay) and revoke their customer tokens."""
    try:
        parsed_id = uuid.UUID(customer_id)
    except ValueError:
        _fail("a customer id is a UUID")

    async def delete(session: AsyncSession) -> customer_service.Customer | None:
        customer = await session.get(customer_service.Customer, parsed_id)
        if customer is not None:
            await customer_service.delete_customer(session, customer=customer, actor="cli")
        return customer

    customer = _with_session(delete)
    if customer is None:
        _fail("no customer has that id")
    document = {"id": str(customer.id), "store_id": str(customer.store_id), "deleted": True}
    _print(document, as_json, f"deleted customer {customer.id}")


@keys_cli.command("list")
def keys_list(as_json: JsonFlag = False) -> None:
    """List signing keys and their state (never the private halves)."""
    keys = _with_session(key_service.list_signing_keys)
    rows = [
        {
            "kid": key.kid,
            "algorithm": key.algorithm,
            "created_at": key.created_at.isoformat(),
            "activated_at": key.activated_at.isoformat() if key.activated_at else None,
            "retired_at": key.retired_at.isoformat() if key.retired_at else None,
        }
        for key in keys
    ]
    _print(rows, as_json, "\n".join(f"{row['kid']}  {row['algorithm']}" for row in rows))


@keys_cli.command("rotate")
def keys_rotate(
    prepublication: Annotated[
        int,
        typer.Option(help="Seconds the new key is published before it signs."),
    ] = key_service.DEFAULT_PREPUBLICATION_SECONDS,
    as_json: JsonFlag = False,
) -> None:
    """Create a new signing key: published in the JWKS at once, signing after the
    pre-publication period; the keys it replaces stay published until their tokens expire."""
    if prepublication < 0:
        _fail("--prepublication is a number of seconds, 0 or more")
    settings = get_settings()
    rotated = _with_server_keys(
        lambda session, keys: key_service.rotate_signing_key(
            session,
            algorithm=settings.signing_algorithm,
            encryption_key=keys.signing_key_encryption,
            max_token_lifetime=max(client_service.MAX_TOKEN_TTL, settings.customer_token_ttl),
            prepublication_seconds=prepublication,
        )
    )
    new_key = rotated.new_key
    document = {
        "kid": new_key.kid,
        "algorithm": new_key.algorithm,
        "activates_at": new_key.activated_at.isoformat() if new_key.activated_at else None,
        "retiring": [
            {"kid": key.kid, "retires_at": key.retired_at.isoformat() if key.retired_at else None}
            for key in rotated.retiring
        ],
    }
    _print(document, as_json, f"new key {new_key.kid} signs from {document['activates_at']}")


@audit_cli.command("list")
def audit_list(
    event: Annotated[str | None, typer.Option(help="Only this event, e.g. token.revoked.")] = None,
    limit: Annotated[int, typer.Option(help="The newest N events (1 to 10000).")] = 100,
    as_json: JsonFlag = False,
) -> None:
    """The newest audit events first."""
    if not 1 <= limit <= MAX_AUDIT_EVENTS_LISTED:
        _fail("--limit is 1 to 10000")
    events = _with_session(
        lambda session: audit_service.list_events(session, event_name=event, limit=limit)
    )
    rows = [
        {"id": row.id, "occurred_at": row.occurred_at.isoformat(), **row.log_fields()}
        for row in events
    ]
    lines = [
        f"{row['occurred_at']}  {row['event']}  {row['actor'] or '-'}  {row['subject'] or '-'}"
        for row in rows
    ]
    _print(rows, as_json, "\n".join(lines))


def _without_password(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def _configuration(settings: Settings) -> dict[str, Any]:
    """What this process uses: database, data directory and server secret (never its value;
    the fingerprint the database compares, shortened)."""
    keys = existing_server_keys(settings)
    return {
        "environment": settings.environment,
        "database_url": _without_password(settings.database_url),
        "data_dir": str(settings.data_dir),
        "data_dir_from": settings.data_dir_source,
        "server_secret_from": secret_source(settings),
        "server_secret_fingerprint": keys.short_fingerprint if keys else None,
        "issuer": settings.issuer,
        "audience": settings.audience,
        "redis_url": _without_password(settings.redis_url) if settings.redis_url else None,
    }


@cli.command("config")
def show_config(as_json: JsonFlag = False) -> None:
    """Show which database, data directory and server secret a command run here would use."""
    document = _configuration(get_settings())
    width = max(map(len, document))
    text = "\n".join(f"{name:<{width}}  {value}" for name, value in document.items())
    _print(document, as_json, text)


async def _bootstrap(session: AsyncSession, keys: ServerKeys, settings: Settings) -> None:
    if settings.environment == "production":
        await _refuse_http_providers(session)
    await store_service.ensure_default_store(session)
    await key_service.ensure_signing_key(
        session,
        algorithm=settings.signing_algorithm,
        encryption_key=keys.signing_key_encryption,
    )


async def _refuse_http_providers(session: AsyncSession) -> None:
    """Production talks to login providers over https only: an enabled provider registered
    with an http issuer (on localhost, in development) stops the server before it serves."""
    insecure = await login_provider_service.insecure_login_providers(session)
    if insecure:
        _fail(
            f"login provider {insecure[0].id} has an http issuer, which production refuses: "
            "disable it (keyhouse login-providers disable ID) or register it with https"
        )


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = DEFAULT_HOST,
    port: Annotated[int, typer.Option(help="Port to listen on.")] = DEFAULT_PORT,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    access_log: Annotated[bool, typer.Option(help="Log every request.")] = True,
) -> None:
    """Serve Keyhouse. On the embedded SQLite default, migrations are applied first."""
    settings = get_settings()
    if settings.environment == "development" and "issuer" not in settings.model_fields_set:
        # In development the issuer is the address served; workers inherit it from here.
        os.environ["KEYHOUSE_ISSUER"] = f"http://{host}:{port}"
        get_settings.cache_clear()
        settings = get_settings()
    # Applied here for the migrations and the bootstrap, and by Uvicorn again in each worker.
    logging.config.dictConfig(_log_config(settings))
    configuration = _configuration(settings)
    logging.getLogger("keyhouse").info(
        "Keyhouse starts: database %s, data directory %s (%s), server secret from %s",
        configuration["database_url"],
        configuration["data_dir"],
        configuration["data_dir_from"],
        configuration["server_secret_from"],
        extra={"configuration": configuration},
    )
    try:
        if settings.is_sqlite:
            upgrade_database(settings)
        # The secret is checked against the database before anything is written or served.
        _with_server_keys(lambda session, keys: _bootstrap(session, keys, settings))
    except Exception as error:
        if not is_unavailable(error):
            raise
        _fail(_cannot_start(error, settings))
    logging.getLogger("keyhouse").info(
        "Keyhouse serving %s (token endpoint /oauth/access_token)",
        settings.issuer,
        extra={"issuer": settings.issuer, "workers": workers},
    )
    exec_server(host=host, port=port, workers=workers, access_log=access_log)


def _cannot_start(error: BaseException, settings: Settings) -> str:
    """One line on why the database stops `serve` from starting: no traceback, for an outage
    is no bug. It names the fault (a fixed string of SQLite, PostgreSQL or the C library)."""
    fault = storage_fault(error)
    if fault is None:
        return (
            f"the database is unreachable ({type(error).__name__}): start it or correct "
            "KEYHOUSE_DATABASE_URL, then start keyhouse serve again"
        )
    database_file = sqlite_file(settings.database_url)
    where = f"{database_file.parent}" if database_file else "the database server's disk"
    return (
        f"the database's storage refuses writes ({fault}): free space on {where} or make it "
        "writable, then start keyhouse serve again"
    )


def _log_config(settings: Settings) -> dict[str, Any]:
    return logging_config(level=settings.log_level, log_format=settings.log_format)


def main() -> None:
    try:
        cli()
    except ConfigurationError as error:
        typer.echo(f"error: {error}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)


# Its own module (app/customers/oidc/commands.py), which uses the helpers above.
from app.customers.oidc.commands import login_providers_cli  # noqa: E402

cli.add_typer(login_providers_cli, name="login-providers")
