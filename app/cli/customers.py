"""`keyhouse customers`: shoppers an operator creates or deletes by hand."""

import uuid
from typing import Annotated

import typer
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from app.cli.common import JsonFlag, fail, print_document, read_secret, resolve_store, with_session
from app.customers import customers as customer_service
from app.runtime.passwords import PasswordHasher

customers_cli = typer.Typer(
    no_args_is_help=True, help="Create a shopper by hand, or delete one and end their sessions."
)


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
        fail("invalid " + ", ".join(f"{f} ({rules[f]})" if f in rules else f for f in fields))


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
        fail("--password-stdin is required: the password is read from stdin")
    data = _customer_in(email, name, read_secret("Password: "))
    data.email_verified = email_verified
    hasher = PasswordHasher(concurrency=1)

    async def create(session: AsyncSession) -> customer_service.Customer:
        return await customer_service.create_customer(
            session, hasher=hasher, store_id=await resolve_store(session, store), data=data
        )

    try:
        customer = with_session(create)
    finally:
        hasher.close()
    document = {
        "id": str(customer.id),
        "email": customer.email,
        "name": customer.name,
        "store_id": str(customer.store_id),
        "email_verified": customer.email_verified,
    }
    print_document(document, as_json, f"created customer {customer.id}")


@customers_cli.command("delete")
def customers_delete(customer_id: str, as_json: JsonFlag = False) -> None:
    """Delete a customer (their addresses too; orders stay) and revoke their customer tokens."""
    try:
        parsed_id = uuid.UUID(customer_id)
    except ValueError:
        fail("a customer id is a UUID")

    async def delete(session: AsyncSession) -> customer_service.Customer | None:
        customer = await session.get(customer_service.Customer, parsed_id)
        if customer is not None:
            await customer_service.delete_customer(session, customer=customer, actor="cli")
        return customer

    customer = with_session(delete)
    if customer is None:
        fail("no customer has that id")
    document = {"id": str(customer.id), "store_id": str(customer.store_id), "deleted": True}
    print_document(document, as_json, f"deleted customer {customer.id}")
