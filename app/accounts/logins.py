"""An account member's login (`password`) and self sign-up (`self_signup`), behind the same
lockout and rate limits as customers' logins (app/customers/lockout.py)."""

import uuid

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.accounts import new_account
from app.accounts.members import AccountMember, new_member
from app.accounts.memberships import create_membership
from app.accounts.password_profiles import PasswordProfile
from app.accounts.passwords import (
    USERNAME_TAKEN,
    authenticate_member,
    check_username,
    new_password,
)
from app.accounts.realms import AccountRealm
from app.customers.customers import release_connection
from app.customers.lockout import LoginGuard, record_failed_login
from app.http.errors import KeyhouseError
from app.http.jsonapi import ConflictError
from app.oauth.verification import REALM
from app.observability import metrics
from app.runtime.passwords import PasswordHasher


class MemberCredentialsError(KeyhouseError):
    """Unknown username, wrong password or a profile not of this store: one answer for all."""

    status_code = 401
    title = "Unauthorized"
    default_detail = "The username or password is incorrect."

    def response_headers(self) -> dict[str, str]:
        return {**self.headers, "WWW-Authenticate": f"Bearer {REALM}"}


class SelfSignupDisabledError(KeyhouseError):
    status_code = 403
    title = "Forbidden"
    default_detail = "This store's account members cannot sign themselves up."


async def log_in_member(
    session: AsyncSession,
    *,
    hasher: PasswordHasher,
    guard: LoginGuard,
    store_id: uuid.UUID,
    profile_id: uuid.UUID,
    profile: PasswordProfile | None,
    username: str,
    password: str,
    host: str,
) -> tuple[AccountMember, int]:
    """The member and their credential epoch; `MemberCredentialsError` otherwise, counted and
    audited as a failed customer login is. A locked attempt is a 429 before any hashing.

    `profile` is the realm's profile of `profile_id`, or None: a profile of no one, or of another
    store, costs the hash and counts as a wrong password does, so it answers as late and it
    gives no more guesses."""
    attempt = await guard.admit(
        store_id=store_id,
        email=username,
        password=password,
        host=host,
        password_profile_id=profile_id,
    )
    found = await authenticate_member(
        session,
        hasher=hasher,
        profile_id=profile.id if profile is not None else None,
        username=username,
        password=password,
    )
    if found is not None:
        await guard.succeeded(attempt)
        return found
    failure = await guard.failed(attempt)
    record_failed_login(session, attempt, failure, window=guard.window)
    await session.commit()
    metrics.login_failed(failure.lockouts)
    raise MemberCredentialsError()


async def sign_up_member(
    session: AsyncSession,
    *,
    hasher: PasswordHasher,
    guard: LoginGuard,
    realm: AccountRealm,
    profile: PasswordProfile,
    name: str,
    email: str,
    username: str,
    password: str,
    host: str,
) -> AccountMember:
    """A new member with a username and password in `profile`, and an account of their own
    (named after them) if the realm creates one; all in one commit. 409 if the username is
    taken, counted as a failed login (not audited as one): the lockout limits how fast anyone
    may ask which usernames are taken, and a locked sign-up is a 429 before any hashing."""
    if not realm.enable_self_signup:
        raise SelfSignupDisabledError()
    check_username(profile, username)  # before the hash, as every refusal that needs none
    # "Taken" tells that a member has the username: asked no faster than a login could be.
    attempt = await guard.admit(
        store_id=realm.store_id,
        email=username,
        password=password,
        host=host,
        password_profile_id=profile.id,
    )
    await release_connection(session)
    password_hash = await hasher.hash(password)
    member = new_member(realm_id=realm.id, name=name, email=email)
    session.add(member)
    session.add(
        new_password(
            member_id=member.id, profile=profile, username=username, password_hash=password_hash
        )
    )
    try:
        if realm.auto_create_account_for_account_members:
            account = new_account(store_id=realm.store_id, name=name)
            session.add(account)
            await session.flush()  # the account and member, before the membership naming them
            await create_membership(
                session, account_id=account.id, member_id=member.id, commit=False
            )
        await session.commit()
    except IntegrityError as error:  # the username's unique constraint decides races
        await session.rollback()
        await guard.failed(attempt)
        raise ConflictError(USERNAME_TAKEN) from error
    await guard.succeeded(attempt)
    return member
