"""`keyhouse audit`: what happened, for whom, by whom."""

from typing import Annotated

import typer

from app.cli.common import JsonFlag, fail, print_document, with_session
from app.observability import audit as audit_service

audit_cli = typer.Typer(
    no_args_is_help=True,
    help="Read the audit trail: clients, keys, logins, lockouts, resets, sign-ins.",
)
MAX_AUDIT_EVENTS_LISTED = 10_000


@audit_cli.command("list")
def audit_list(
    event: Annotated[str | None, typer.Option(help="Only this event, e.g. token.revoked.")] = None,
    limit: Annotated[int, typer.Option(help="The newest N events (1 to 10000).")] = 100,
    as_json: JsonFlag = False,
) -> None:
    """The newest audit events first."""
    if not 1 <= limit <= MAX_AUDIT_EVENTS_LISTED:
        fail("--limit is 1 to 10000")
    events = with_session(
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
    print_document(rows, as_json, "\n".join(lines))
