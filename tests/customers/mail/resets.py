"""Password reset requests and confirmations through the HTTP API, and the mails they bring."""

import asyncio
from collections.abc import Awaitable, Callable
from email.message import EmailMessage

import httpx

from app.observability.audit import AuditEvent, list_events
from app.runtime.db import Database

from ...smtp import MailServer
from ..shoppers import headers

RESET_URL = "/v2/customers/password-reset"
CONFIRM_URL = "/v2/customers/password-reset/confirm"
NEW_PASSWORD = "a brand new passphrase"


async def ask_for_reset(http: httpx.AsyncClient, bearer: str, email: str) -> httpx.Response:
    body = {"data": {"type": "password_reset_request", "email": email}}
    return await http.post(RESET_URL, json=body, headers=headers(bearer))


async def confirm_reset(
    http: httpx.AsyncClient, bearer: str, token: str, password: str = NEW_PASSWORD
) -> httpx.Response:
    body = {"data": {"type": "password_reset", "token": token, "password": password}}
    return await http.post(CONFIRM_URL, json=body, headers=headers(bearer))


async def mails(server: MailServer, count: int) -> list[EmailMessage]:
    """The first `count` mails the server received, once they have arrived."""
    return await asyncio.to_thread(server.handler.wait_for, count)


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 10.0) -> None:
    """Returns once `check()` is true; fails after `within` seconds."""
    async with asyncio.timeout(within):
        while not await check():  # noqa: ASYNC110 (the database has no event to wait for)
            await asyncio.sleep(0.02)


async def audit_events(database: Database, event: str) -> list[AuditEvent]:
    async with database.sessions() as session:
        return await list_events(session, event_name=event)


async def audited(database: Database, event: str, count: int = 1) -> list[AuditEvent]:
    """The events of one kind, once there are `count` of them (the sender writes them late)."""

    async def enough() -> bool:
        return len(await audit_events(database, event)) >= count

    await eventually(enough)
    return await audit_events(database, event)
