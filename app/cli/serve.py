"""`keyhouse serve` and `keyhouse config`: run the server, and say what it would use."""

import logging
import logging.config
import os
from typing import Annotated, Any

import typer
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from app.cli.common import JsonFlag, fail, log_config, print_document, with_server_keys
from app.customers.oidc import providers as login_provider_service
from app.oauth import keys as key_service
from app.oauth import stores as store_service
from app.runtime.db import is_unavailable, storage_fault
from app.runtime.schema import upgrade_database
from app.runtime.server_secret import ServerKeys, existing_server_keys, secret_source
from app.runtime.serving import exec_server
from app.runtime.settings import DEFAULT_HOST, DEFAULT_PORT, Settings, get_settings, sqlite_file


def _without_password(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def configuration(settings: Settings) -> dict[str, Any]:
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


def show_config(as_json: JsonFlag = False) -> None:
    """Show which database, data directory and server secret a command run here would use."""
    document = configuration(get_settings())
    width = max(map(len, document))
    text = "\n".join(f"{name:<{width}}  {value}" for name, value in document.items())
    print_document(document, as_json, text)


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
        fail(
            f"login provider {insecure[0].id} has an http issuer, which production refuses: "
            "disable it (keyhouse login-providers disable ID) or register it with https"
        )


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
    logging.config.dictConfig(log_config(settings))
    described = configuration(settings)
    logging.getLogger("keyhouse").info(
        "Keyhouse starts: database %s, data directory %s (%s), server secret from %s",
        described["database_url"],
        described["data_dir"],
        described["data_dir_from"],
        described["server_secret_from"],
        extra={"configuration": described},
    )
    try:
        if settings.is_sqlite:
            upgrade_database(settings)
        # The secret is checked against the database before anything is written or served.
        with_server_keys(lambda session, keys: _bootstrap(session, keys, settings))
    except Exception as error:
        if not is_unavailable(error):
            raise
        fail(_cannot_start(error, settings))
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
