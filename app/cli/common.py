"""What every `keyhouse` command shares: a database session (with the server secret's keys, once
the database agrees they are its own), one JSON document or lines for people, one-line errors,
and the store an option names."""

import asyncio
import getpass
import json
import sys
import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from app.http.errors import KeyhouseError
from app.oauth import stores as store_service
from app.oauth.secret_binding import bind_server_secret
from app.observability.logs import logging_config
from app.runtime.changes import redis_announcer
from app.runtime.db import Database
from app.runtime.server_secret import ServerKeys
from app.runtime.settings import ConfigurationError, Settings, get_settings

T = TypeVar("T")
JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]


def fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=1)


def with_session(work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    async def run() -> T:
        settings = get_settings()
        database = Database(settings.database_url)
        # Workers hear of what a command writes as they hear of their own writes.
        announcer = redis_announcer(settings, database.sessions)
        try:
            async with database.sessions() as session:
                return await work(session)
        finally:
            if announcer is not None:
                await announcer.close()
            await database.dispose()

    try:
        return asyncio.run(run())
    except KeyhouseError as error:
        fail(error.detail)
    except ConfigurationError as error:  # a server secret the database does not know, say
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(code=2) from None


def with_server_keys(work: Callable[[AsyncSession, ServerKeys], Awaitable[T]]) -> T:
    """`work` with the server secret's keys, once the database agrees that the secret is its
    own (app/oauth/secret_binding.py); on a mismatch, one line and nothing written."""

    async def bound(session: AsyncSession) -> T:
        return await work(session, await bind_server_secret(session, get_settings()))

    return with_session(bound)


def print_document(document: Any, as_json: bool, text: str) -> None:
    typer.echo(json.dumps(document, indent=None if as_json else 2) if as_json else text)


async def resolve_store(session: AsyncSession, store: str | None) -> uuid.UUID:
    if store is None:
        return (await store_service.ensure_default_store(session)).id
    try:
        store_id = uuid.UUID(store)
    except ValueError:
        fail("--store takes a store id (a UUID)")
    if await store_service.get_store(session, store_id=store_id) is None:
        fail("no store has that id")
    return store_id


def log_config(settings: Settings) -> dict[str, Any]:
    return logging_config(level=settings.log_level, log_format=settings.log_format)


def read_secret(prompt: str) -> str:
    """One line from stdin; at a terminal, typed without echo."""
    if sys.stdin.isatty():
        return getpass.getpass(prompt)
    return sys.stdin.readline().rstrip("\r\n")
