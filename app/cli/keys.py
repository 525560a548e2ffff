"""`keyhouse keys`: the keys tokens are signed with."""

from typing import Annotated

import typer

from app.cli.common import JsonFlag, fail, print_document, with_server_keys, with_session
from app.oauth import clients as client_service
from app.oauth import keys as key_service
from app.runtime.settings import get_settings

keys_cli = typer.Typer(
    no_args_is_help=True,
    help="List the token signing keys, and rotate in a new one without downtime.",
)


@keys_cli.command("list")
def keys_list(as_json: JsonFlag = False) -> None:
    """List signing keys and their state (never the private halves)."""
    keys = with_session(key_service.list_signing_keys)
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
    print_document(rows, as_json, "\n".join(f"{row['kid']}  {row['algorithm']}" for row in rows))


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
        fail("--prepublication is a number of seconds, 0 or more")
    settings = get_settings()
    rotated = with_server_keys(
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
    print_document(
        document, as_json, f"new key {new_key.kid} signs from {document['activates_at']}"
    )
