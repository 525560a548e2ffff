"""`keyhouse stores`: the shops this server serves, and their shopper settings."""

from typing import Annotated, Any

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from app.cli.common import JsonFlag, print_document, resolve_store, with_session
from app.oauth import stores as store_service

stores_cli = typer.Typer(
    no_args_is_help=True,
    help="Create and list stores (tenants); set whether their shoppers may sign up, and whether "
    "they must verify their email before a password login.",
)


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
    store = with_session(lambda session: store_service.create_store(session, name=name))
    print_document(_store_json(store), as_json, f"created store {store.id}")


@stores_cli.command("list")
def stores_list(as_json: JsonFlag = False) -> None:
    """List stores, oldest (the default) first, with their shopper settings."""
    stores = with_session(store_service.list_stores)
    rows = [_store_json(store) for store in stores]
    print_document(rows, as_json, "\n".join(_store_line(row) for row in rows))


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
        found = await store_service.get_store(session, store_id=await resolve_store(session, store))
        assert found is not None  # _resolve_store checked
        return await store_service.change_store_settings(
            session,
            store=found,
            allow_customer_signup=customer_signup,
            require_email_verification=require_email_verification,
        )

    row = _store_json(with_session(update))
    print_document(row, as_json, _store_line(row))
