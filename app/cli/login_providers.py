"""`keyhouse login-providers`: an operator registers, lists and disables a store's providers."""

import uuid
from typing import Annotated, Any

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from app.cli.common import (
    JsonFlag,
    fail,
    print_document,
    read_secret,
    resolve_store,
    with_server_keys,
    with_session,
)
from app.customers.oidc import providers as service
from app.customers.oidc.provider_client import ProviderClient
from app.customers.oidc.sign_in import CALLBACK_PATH
from app.runtime.server_secret import ServerKeys
from app.runtime.settings import get_settings

login_providers_cli = typer.Typer(
    no_args_is_help=True,
    help="Let a store's shoppers sign in with an OpenID provider: register one, list, disable; "
    "and whether it may link accounts by email.",
)


def _provider_json(provider: service.LoginProvider) -> dict[str, Any]:
    return {
        "id": str(provider.id),
        "store_id": str(provider.store_id),
        "name": provider.name,
        "display_name": provider.display_name,
        "issuer": provider.issuer,
        "client_id": provider.client_id,
        "scope": provider.scope,
        "enabled": provider.enabled,
        # Whether its shoppers may be linked by email to existing customers: of every domain,
        # or of these domains only (neither: never).
        "link_by_email": provider.link_by_email,
        "email_domains": provider.domains,
        # What the operator registers at the provider as the client's redirect URI.
        "callback_url": get_settings().issuer + CALLBACK_PATH,
        "created_at": provider.created_at.isoformat(),
    }


@login_providers_cli.command("create")
def login_providers_create(
    name: Annotated[str, typer.Option("--name", help="Lower-case letters, digits and '-'.")],
    issuer: Annotated[str, typer.Option("--issuer", help="The provider's issuer URL.")],
    client_id: Annotated[str, typer.Option("--client-id", help="Keyhouse's id there.")],
    client_secret_stdin: Annotated[
        bool, typer.Option("--client-secret-stdin", help="Read the client secret from stdin.")
    ] = False,
    store: Annotated[str | None, typer.Option(help="Store id; default: the default store.")] = None,
    scope: Annotated[str, typer.Option(help="Scopes to ask for.")] = service.DEFAULT_SCOPE,
    display_name: Annotated[
        str | None, typer.Option("--display-name", help="For the sign-in button; default: name.")
    ] = None,
    link_by_email: Annotated[
        bool,
        typer.Option(
            "--link-by-email",
            help="Link a shopper new to this provider to the store's customer of the same "
            "verified email, whatever its domain: only for a provider that owns every address "
            "it vouches for. Default: never linked by email.",
        ),
    ] = False,
    email_domain: Annotated[
        list[str] | None,
        typer.Option(
            "--email-domain",
            help="Link by email only for this domain, which the provider is the authority "
            "for (repeatable; exact, subdomains listed apart).",
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Register a provider, once its discovery document has been read and checked."""
    if not client_secret_stdin:
        # Never as an argument: arguments show in `ps` and in shell history.
        fail("--client-secret-stdin is required: the client secret is read from stdin")
    client_secret = read_secret("Client secret: ")

    async def create(session: AsyncSession, keys: ServerKeys) -> service.LoginProvider:
        provider_client = ProviderClient.for_environment(get_settings().environment)
        try:
            return await service.create_login_provider(
                session,
                provider_client=provider_client,
                encryption_key=keys.login_provider_secret_encryption,
                store_id=await resolve_store(session, store),
                name=name,
                issuer=issuer,
                client_id=client_id,
                client_secret=client_secret,
                scope=scope,
                display_name=display_name,
                link_by_email=link_by_email,
                email_domains=email_domain or (),
            )
        finally:
            await provider_client.close()

    provider = with_server_keys(create)  # the database's own secret encrypts the client's
    document = _provider_json(provider)
    text = f"created login provider {provider.id}\nredirect URI to register at the provider: "
    print_document(document, as_json, text + document["callback_url"])


@login_providers_cli.command("list")
def login_providers_list(
    store: Annotated[str | None, typer.Option(help="Only this store's providers.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """List login providers (never their client secrets)."""

    async def list_all(session: AsyncSession) -> list[service.LoginProvider]:
        store_id = await resolve_store(session, store) if store else None
        return await service.list_login_providers(session, store_id=store_id)

    rows = [_provider_json(provider) for provider in with_session(list_all)]
    lines = [
        f"{row['id']}  {'enabled' if row['enabled'] else 'disabled'}  {row['name']}  "
        f"{row['issuer']}  links by email: {_linking(row)}"
        for row in rows
    ]
    print_document(rows, as_json, "\n".join(lines))


def _linking(row: dict[str, Any]) -> str:
    if row["link_by_email"]:
        return "any domain"
    return ",".join(row["email_domains"]) or "never"


@login_providers_cli.command("disable")
def login_providers_disable(provider_id: str, as_json: JsonFlag = False) -> None:
    """Disable a provider: no new sign-ins through it; its customers keep their accounts."""
    try:
        parsed_id = uuid.UUID(provider_id)
    except ValueError:
        fail("a login provider id is a UUID")
    provider = with_session(
        lambda session: service.disable_login_provider(session, provider_id=parsed_id)
    )
    if provider is None:
        fail("no login provider has that id")
    print_document(_provider_json(provider), as_json, f"disabled {provider.id}")
