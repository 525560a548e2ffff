"""`keyhouse accounts` and `keyhouse password-profiles`: what an operator sets up once for
account members (app/accounts): the realm's settings, a password profile, an account, and a
member's membership of it. The same service functions as the routes."""

import uuid
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts import accounts as account_service
from app.accounts import memberships as membership_service
from app.accounts import password_profiles as profile_service
from app.accounts.members import get_member
from app.accounts.realms import (
    MAX_TOKEN_TIMEOUT,
    MIN_TOKEN_TIMEOUT,
    AccountRealm,
    RealmSettingsUpdate,
    realm_of_store,
    update_settings,
)
from app.cli.common import JsonFlag, fail, print_document, resolve_store, with_session
from app.http.errors import KeyhouseError

accounts_cli = typer.Typer(
    no_args_is_help=True,
    help="Set up account members' logins: the realm's settings, accounts and memberships.",
)
password_profiles_cli = typer.Typer(
    no_args_is_help=True, help="Create the password profiles account members log in with."
)
StoreOption = Annotated[str | None, typer.Option(help="Store id; default: the default store.")]


def _uuid(value: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        fail(f"{what} is a UUID")


def _settings_document(realm: AccountRealm) -> dict[str, Any]:
    return {
        "realm_id": str(realm.id),
        "store_id": str(realm.store_id),
        "enable_self_signup": realm.enable_self_signup,
        "auto_create_account_for_account_members": realm.auto_create_account_for_account_members,
        "account_member_self_management": realm.account_member_self_management,
        "account_management_authentication_token_timeout_secs": realm.token_timeout_seconds,
    }


@accounts_cli.command("settings")
def accounts_settings(
    store: StoreOption = None,
    self_signup: Annotated[
        bool | None, typer.Option("--self-signup/--no-self-signup", help="Members sign up.")
    ] = None,
    auto_create_account: Annotated[
        bool | None,
        typer.Option(
            "--auto-create-account/--no-auto-create-account",
            help="A self-signed-up member gets an account of their own.",
        ),
    ] = None,
    self_management: Annotated[
        str | None, typer.Option(help="disabled, or update_only: members change their password.")
    ] = None,
    token_timeout: Annotated[
        int | None,
        typer.Option(help=f"Account token lifetime, {MIN_TOKEN_TIMEOUT} to {MAX_TOKEN_TIMEOUT} s."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Show the store's account realm and its settings, changing those given."""
    try:
        data = RealmSettingsUpdate.model_validate(
            {
                "type": "account_authentication_settings",
                "enable_self_signup": self_signup,
                "auto_create_account_for_account_members": auto_create_account,
                "account_member_self_management": self_management,
                "account_management_authentication_token_timeout_secs": token_timeout,
            }
        )
    except ValidationError as error:
        fields = dict.fromkeys(str(problem["loc"][0]) for problem in error.errors())
        fail("invalid " + ", ".join(fields))

    async def change(session: AsyncSession) -> AccountRealm:
        realm = await realm_of_store(session, store_id=await resolve_store(session, store))
        return await update_settings(session, realm=realm, data=data)

    realm = with_session(change)
    print_document(_settings_document(realm), as_json, f"account realm {realm.id}")


@accounts_cli.command("create")
def accounts_create(
    name: Annotated[str, typer.Option("--name", help="The account's name.")],
    legal_name: Annotated[str | None, typer.Option(help="Default: the name.")] = None,
    store: StoreOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Create an account, as POST /v2/accounts does."""
    try:
        data = account_service.AccountIn(type="account", name=name, legal_name=legal_name)
    except ValidationError:
        fail("invalid name or legal name (1 to 200 characters)")

    async def create(session: AsyncSession) -> account_service.Account:
        store_id = await resolve_store(session, store)
        return await account_service.create_account(session, store_id=store_id, data=data)

    account = with_session(create)
    document = {
        "id": str(account.id),
        "name": account.name,
        "legal_name": account.legal_name,
        "store_id": str(account.store_id),
    }
    print_document(document, as_json, f"created account {account.id}")


@accounts_cli.command("add-member")
def accounts_add_member(
    account_id: str,
    member: Annotated[str, typer.Option("--member", help="The account member's id.")],
    as_json: JsonFlag = False,
) -> None:
    """Make an account member a member of the account, as POST …/account-memberships does."""
    parsed_account, parsed_member = _uuid(account_id, "an account id"), _uuid(member, "--member")

    async def add(session: AsyncSession) -> membership_service.AccountMembership:
        account = await session.get(account_service.Account, parsed_account)
        if account is None:
            fail("no account has that id")
        realm = await realm_of_store(session, store_id=account.store_id)
        if await get_member(session, realm_id=realm.id, member_id=parsed_member) is None:
            fail("no account member of the account's store has that id")
        try:
            return await membership_service.create_membership(
                session, account_id=account.id, member_id=parsed_member
            )
        except KeyhouseError as error:
            fail(error.detail)

    membership = with_session(add)
    document = {
        "id": str(membership.id),
        "account_id": str(membership.account_id),
        "account_member_id": str(membership.member_id),
    }
    print_document(document, as_json, f"added member {parsed_member} to account {account_id}")


@password_profiles_cli.command("create")
def password_profiles_create(
    name: Annotated[str, typer.Option("--name", help="The profile's name.")],
    username_format: Annotated[
        str, typer.Option(help="email: usernames are emails; any: anything.")
    ] = "any",
    store: StoreOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Create a password profile in the store's account realm."""
    try:
        data = profile_service.PasswordProfileIn.model_validate(
            {"type": "password_profile", "name": name, "username_format": username_format}
        )
    except ValidationError:
        fail("invalid name (1 to 200 characters) or username format (email or any)")

    async def create(session: AsyncSession) -> profile_service.PasswordProfile:
        realm = await realm_of_store(session, store_id=await resolve_store(session, store))
        return await profile_service.create_profile(session, realm_id=realm.id, data=data)

    profile = with_session(create)
    document = {
        "id": str(profile.id),
        "realm_id": str(profile.realm_id),
        "name": profile.name,
        "username_format": profile.username_format,
    }
    print_document(document, as_json, f"created password profile {profile.id}")
