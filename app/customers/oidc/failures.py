"""How a sign-in fails: an error for the storefront, and a line in the audit trail.

A `SignInError` carries an RFC 6749 §4.1.2.1 error code and a fixed sentence, which the
storefront receives as `error` and `error_description` on its redirect URI, and a reason code
for the audit trail (`customer.provider_login_failed`). Nothing the provider sent is quoted.
"""

from sqlalchemy.ext.asyncio import AsyncSession

from app.customers.oidc.discovery import ProviderError, ProviderUnavailableError
from app.customers.oidc.id_tokens import InvalidIdTokenError
from app.customers.oidc.logins import ProviderLogin
from app.customers.oidc.matching import IdentityRefusedError
from app.observability.audit import record


class SignInError(Exception):
    """A sign-in that cannot go on: `error` and `detail` for the storefront, `reason` for us."""

    def __init__(self, error: str, detail: str, reason: str) -> None:
        super().__init__(detail)
        self.error = error
        self.detail = detail
        self.reason = reason

    @classmethod
    def from_provider(cls, failure: ProviderError) -> "SignInError":
        """Down: try later. Refused (the code, the ID token, the shopper): access denied.
        Anything else the provider answered is unusable: a server error, ours or theirs."""
        refused = isinstance(failure, IdentityRefusedError | InvalidIdTokenError)
        if isinstance(failure, ProviderUnavailableError):
            error = "temporarily_unavailable"
        elif refused or failure.reason == "code_refused":
            error = "access_denied"
        else:
            error = "server_error"
        return cls(error, failure.detail, failure.reason)


async def record_failure(
    session: AsyncSession, login: ProviderLogin, failure: SignInError, *, address: str
) -> None:
    """A failed sign-in, in the audit trail, in a transaction of its own: whatever the
    failed step had added to the session is rolled back first."""
    store_id, client_id, provider_id = login.store_id, login.client_id, login.provider_id
    await session.rollback()
    record(
        session,
        "customer.provider_login_failed",
        store_id=store_id,
        actor=client_id,
        address=address,
        provider_id=str(provider_id),
        reason=failure.reason,
    )
    await session.commit()
