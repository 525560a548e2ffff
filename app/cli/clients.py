"""`keyhouse clients`: the storefronts and backends that get tokens."""

from typing import Annotated, Any

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from app.cli.common import (
    JsonFlag,
    fail,
    print_document,
    resolve_store,
    with_server_keys,
    with_session,
)
from app.oauth import clients as client_service
from app.runtime.passwords import ClientSecretHasher
from app.runtime.server_secret import ServerKeys
from app.runtime.settings import get_settings

clients_cli = typer.Typer(
    no_args_is_help=True,
    help="Register storefronts (public) and backends (with a secret); list and disable them; "
    "rotate a backend's secret without downtime.",
)


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
            store_id=await resolve_store(session, store),
            name=name,
            public=public,
            scope=scope,
            grant_types=grant or (),
            origins=origin or (),
            redirect_uris=redirect_uri or (),
            token_ttl=ttl,
        )

    created = with_server_keys(create)
    document = {
        "client_id": created.client.id,
        "client_secret": created.client_secret,
        "store_id": str(created.client.store_id),
    }
    text = "\n".join(f"{key}: {value}" for key, value in document.items())
    if created.client_secret:
        text += "\nThe secret is shown only this once; store it now."
    print_document(document, as_json, text)


@clients_cli.command("list")
def clients_list(
    store: Annotated[str | None, typer.Option(help="Only this store's clients.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """List clients (never their secrets)."""

    async def list_all(session: AsyncSession) -> list[client_service.OAuthClient]:
        store_id = await resolve_store(session, store) if store else None
        return await client_service.list_clients(session, store_id=store_id)

    rows = [_client_json(client) for client in with_session(list_all)]
    lines = [
        f"{row['client_id']}  {'public' if row['public'] else 'confidential'}  "
        f"{'enabled' if row['enabled'] else 'disabled'}  {row['name']}"
        for row in rows
    ]
    print_document(rows, as_json, "\n".join(lines))


@clients_cli.command("disable")
def clients_disable(client_id: str, as_json: JsonFlag = False) -> None:
    """Disable a client: it gets no new tokens, and its tokens stop working within a second."""
    lag = get_settings().client_cache_seconds + 1
    client = with_session(
        lambda session: client_service.disable_client(
            session, client_id=client_id, issuing_lag_seconds=lag
        )
    )
    if client is None:
        fail("no client has that id")
    print_document(_client_json(client), as_json, f"disabled {client.id}")


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
    rotated = with_server_keys(
        lambda session, keys: client_service.rotate_client_secret(
            session,
            hasher=ClientSecretHasher(keys.client_secret_hmac),
            client_id=client_id,
            grace_seconds=grace,
        )
    )
    if rotated is None:
        fail("no client has that id")
    expire_at = rotated.previous_expire_at
    document = {
        "client_id": rotated.client.id,
        "client_secret": rotated.client_secret,
        "store_id": str(rotated.client.store_id),
        "previous_secret_expires_at": expire_at.isoformat() if expire_at else None,
    }
    text = "\n".join(f"{key}: {value}" for key, value in document.items())
    print_document(document, as_json, text + "\nThe secret is shown only this once; store it now.")
