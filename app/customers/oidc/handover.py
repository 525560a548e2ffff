"""The storefront's side of the hand-over: a Keyhouse code for a customer token.

`POST /v2/customers/tokens` with `"authentication_mechanism": "oidc"` brings the code the
callback put in the redirect, the redirect URI it came to, and the PKCE verifier whose S256
challenge the storefront sent when it started. The code must be the caller's (the same client,
hence the same store), unexpired and unused, its provider still enabled, and the customer's
credentials those the sign-in found (its credential epoch, moved by a link in the sign-in
itself); it gives the same customer token as a password login, of that epoch. A code that
comes a second time revokes the token of its first exchange: someone else may hold the code,
and the shopper can sign in again.
"""

import hmac
import uuid

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.customers.customers import Customer
from app.customers.oidc.logins import ProviderLogin, digest, s256
from app.customers.oidc.providers import LoginProvider
from app.customers.tokens import CustomerTokenIssuer, IssuedCustomerToken
from app.http.errors import KeyhouseError
from app.oauth.revocation import RevocationList, revoke_token
from app.observability.audit import record
from app.runtime.db import utcnow


class InvalidLoginCodeError(KeyhouseError):
    """A login code that cannot be exchanged; the detail says which check failed."""

    status_code = 400
    title = "Bad Request"
    default_detail = "The login code is not valid."


class UnknownLoginCodeError(InvalidLoginCodeError):
    """A code never issued to this store (or its customer deleted since): no such login, a
    404 as for an unknown mailed token. The request is well formed, and no schema can tell a
    code that exists."""

    status_code = 404
    title = "Not Found"


USED = "The login code has already been used; sign in again."
EXPIRED = "The login code has expired; sign in again."
NOT_YOURS = "The login code was issued to another client or for another redirect URI."
WRONG_VERIFIER = "The code verifier does not match the code challenge the sign-in started with."
PROVIDER_DISABLED = "The login provider of this code has been disabled since; sign in another way."
CREDENTIALS_CHANGED = (
    "The account's password, email or sign-ins changed since this sign-in; sign in again."
)


async def _login_of(session: AsyncSession, code: str) -> ProviderLogin | None:
    query = select(ProviderLogin).where(ProviderLogin.code_hash == digest(code))
    return (await session.scalars(query)).first()


async def _refuse_replay(
    session: AsyncSession, login: ProviderLogin, *, revocations: RevocationList, address: str
) -> InvalidLoginCodeError:
    """Revokes what the first exchange issued, records the replay, and returns the error."""
    await session.refresh(login)  # a concurrent exchange may have just written its token
    revoked = None
    if login.token_id is not None and login.token_expires is not None:
        revoked = revoke_token(session, token_id=login.token_id, expires_at=login.token_expires)
    record(
        session,
        "customer.provider_code_replayed",
        store_id=login.store_id,
        actor=login.client_id,
        subject=str(login.customer_id),
        address=address,
        revoked_token=login.token_id,
    )
    await session.commit()
    if revoked is not None:
        revocations.apply(revoked)  # this worker at once; the others at their next poll
    return InvalidLoginCodeError(USED)


def _check_binding(
    login: ProviderLogin, *, client_id: str, redirect_uri: str, code_verifier: str
) -> None:
    if login.client_id != client_id or login.redirect_uri != redirect_uri:
        raise InvalidLoginCodeError(NOT_YOURS)
    if not hmac.compare_digest(s256(code_verifier), login.code_challenge):
        raise InvalidLoginCodeError(WRONG_VERIFIER)


async def _customer_of(session: AsyncSession, login: ProviderLogin) -> Customer:
    """The code's customer, if its provider is still enabled and their credentials have not
    changed since the sign-in (a token of an older epoch would be refused anyway)."""
    provider = await session.get(LoginProvider, login.provider_id)
    if provider is None or not provider.enabled:
        raise InvalidLoginCodeError(PROVIDER_DISABLED)
    customer = await session.get(Customer, login.customer_id)
    if customer is None:  # deleted since the callback
        raise UnknownLoginCodeError()
    if login.customer_epoch is None or customer.credential_epoch != login.customer_epoch:
        raise InvalidLoginCodeError(CREDENTIALS_CHANGED)
    return customer


async def exchange_login_code(
    session: AsyncSession,
    *,
    issuer: CustomerTokenIssuer,
    revocations: RevocationList,
    client_id: str,
    store_id: uuid.UUID,
    code: str,
    redirect_uri: str,
    code_verifier: str,
    address: str,
) -> IssuedCustomerToken:
    """The customer token for a login code, which this consumes."""
    login = await _login_of(session, code)
    if login is None or login.store_id != store_id or login.customer_id is None:
        raise UnknownLoginCodeError()
    _check_binding(
        login, client_id=client_id, redirect_uri=redirect_uri, code_verifier=code_verifier
    )
    if login.exchanged_at is not None:
        raise await _refuse_replay(session, login, revocations=revocations, address=address)
    now = utcnow()
    if login.code_expires_at is None or login.code_expires_at <= now:
        raise InvalidLoginCodeError(EXPIRED)
    customer = await _customer_of(session, login)
    issued = await issuer.issue(customer, epoch=login.customer_epoch)
    # Consumed only if nobody consumed it since the read above: of two concurrent exchanges,
    # one wins and the other is a replay.
    exchanged = await session.execute(
        update(ProviderLogin)
        .where(ProviderLogin.id == login.id, ProviderLogin.exchanged_at.is_(None))
        .values(exchanged_at=now, token_id=issued.token_id, token_expires=issued.expires)
    )
    if exchanged.rowcount != 1:  # type: ignore[attr-defined]
        await session.rollback()
        raise await _refuse_replay(session, login, revocations=revocations, address=address)
    await session.commit()
    return issued
