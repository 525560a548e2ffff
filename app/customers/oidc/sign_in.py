"""The relying party's two steps: send the shopper to the provider, and take them back.

`ProviderSignIn.begin` records the sign-in and builds the provider's authorization URL
(OpenID Connect Core §3.1.2.1, with PKCE and a nonce). `ProviderSignIn.finish` takes the
provider's answer: it checks it came from that provider (RFC 9207 `iss`), exchanges the code,
verifies the ID token, finds, links or creates the customer (matching.py), and issues the
Keyhouse code, all in one commit with the audit trail, so a failure anywhere leaves nothing
half-made. A link moves the customer's credential epoch; the revocation it makes is handed
back with the code, for the route to apply once the commit is done.

Failures are `SignInError`s (failures.py).
"""

import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.customers.credentials import CredentialsChangedError
from app.customers.customers import Customer
from app.customers.oidc.discovery import ProviderError, ProviderMetadata
from app.customers.oidc.failures import SignInError
from app.customers.oidc.id_tokens import identity_of, verify_id_token
from app.customers.oidc.logins import LoginSecrets, ProviderLogin, issue_code, s256, start_login
from app.customers.oidc.matching import (
    IdentityRefusedError,
    Outcome,
    ResolvedCustomer,
    customer_for,
)
from app.customers.oidc.pages import with_query
from app.customers.oidc.provider_client import ProviderClient
from app.customers.oidc.providers import LoginProvider, decrypt_secret
from app.oauth.revocation import Revocation
from app.observability.audit import AuditEventName, record
from app.runtime.passwords import PasswordHasher
from app.runtime.server_secret import ServerKeys
from app.runtime.settings import Settings

logger = logging.getLogger("keyhouse.oidc")

CALLBACK_PATH = "/oauth/customers/login/callback"
# What a provider's own error turns into for the storefront (anything else: access_denied).
PROVIDER_ERRORS = {"temporarily_unavailable": "temporarily_unavailable"}
OUTCOME_EVENTS: dict[Outcome, AuditEventName] = {
    Outcome.LINKED: "customer.provider_linked",
    Outcome.CREATED: "customer.provider_created",
}


@dataclass(frozen=True, slots=True)
class ProviderAnswer:
    """The query string the provider sent the browser back with."""

    code: str | None
    error: str | None
    issuer: str | None


@dataclass(frozen=True, slots=True)
class FinishedSignIn:
    """The Keyhouse code for the storefront, and a link's revocation of the customer's
    earlier tokens (None without a link), which the caller applies to its worker."""

    code: str
    revocation: Revocation | None


def open_provider_sign_in(
    settings: Settings, server_keys: ServerKeys, *, hasher: PasswordHasher
) -> "ProviderSignIn":
    """The worker's sign-in machinery, for the app's lifespan (which closes it)."""
    return ProviderSignIn(
        provider_client=ProviderClient.for_environment(settings.environment),
        secrets=LoginSecrets(server_keys.login_state_hmac),
        secret_key=server_keys.login_provider_secret_encryption,
        hasher=hasher,
        callback_url=settings.issuer + CALLBACK_PATH,
    )


class ProviderSignIn:
    """One worker's sign-in machinery: the provider client, and the keys it needs."""

    def __init__(
        self,
        *,
        provider_client: ProviderClient,
        secrets: LoginSecrets,
        secret_key: bytes,
        hasher: PasswordHasher,
        callback_url: str,
    ) -> None:
        self.provider_client = provider_client
        self._secrets = secrets
        self._secret_key = secret_key
        self._hasher = hasher
        self.callback_url = callback_url

    async def close(self) -> None:
        await self.provider_client.close()

    async def begin(
        self,
        session: AsyncSession,
        *,
        provider: LoginProvider,
        client_id: str,
        redirect_uri: str,
        client_state: str | None,
        code_challenge: str,
        link_to: Customer | None = None,
    ) -> str:
        """The provider's authorization URL for a new sign-in; with `link_to`, a link of the
        provider's account to that customer, who must still be in the credential epoch
        loaded with them (the one read with the password they just gave) when it ends."""
        try:
            metadata = await self.provider_client.metadata(provider.issuer)
        except ProviderError as failure:
            logger.warning("login provider %s: %s", provider.id, failure.reason)
            raise SignInError.from_provider(failure) from failure
        state = await start_login(
            session,
            provider=provider,
            client_id=client_id,
            redirect_uri=redirect_uri,
            client_state=client_state,
            code_challenge=code_challenge,
            link_customer_id=None if link_to is None else link_to.id,
            customer_epoch=None if link_to is None else link_to.credential_epoch,
        )
        return with_query(
            metadata.authorization_endpoint,
            {
                "response_type": "code",
                "client_id": provider.client_id,
                "redirect_uri": self.callback_url,
                "scope": provider.scope,
                "state": state,
                "nonce": self._secrets.nonce(state),
                "code_challenge": s256(self._secrets.code_verifier(state)),
                "code_challenge_method": "S256",
            },
        )

    async def finish(
        self,
        session: AsyncSession,
        *,
        login: ProviderLogin,
        state: str,
        answer: ProviderAnswer,
        address: str,
    ) -> FinishedSignIn:
        """The Keyhouse code for the storefront, once the provider's answer checks out."""
        provider = await session.get(LoginProvider, login.provider_id)
        if provider is None or not provider.enabled:
            raise SignInError("access_denied", "This login provider is disabled.", "disabled")
        try:
            claims = await self._verified_claims(provider, state=state, answer=answer)
        except ProviderError as failure:
            raise SignInError.from_provider(failure) from failure
        try:
            return await self._record(session, login, provider, claims, address)
        except IdentityRefusedError as failure:
            raise SignInError.from_provider(failure) from failure
        except CredentialsChangedError as error:
            raise SignInError("access_denied", error.detail, "credentials_changed") from error

    async def _verified_claims(
        self, provider: LoginProvider, *, state: str, answer: ProviderAnswer
    ) -> Mapping[str, Any]:
        if answer.error is not None:
            error = PROVIDER_ERRORS.get(answer.error, "access_denied")
            detail = "The sign-in was cancelled or refused at the login provider."
            raise SignInError(error, detail, "provider_error")
        metadata = await self.provider_client.metadata(provider.issuer)
        _check_issuer(metadata, answer)
        if answer.code is None:
            raise SignInError("invalid_request", "The provider sent no code.", "no_code")
        tokens = await self.provider_client.exchange_code(
            metadata,
            client_id=provider.client_id,
            client_secret=self._client_secret(provider),
            code=answer.code,
            code_verifier=self._secrets.code_verifier(state),
            redirect_uri=self.callback_url,
        )
        claims = await verify_id_token(
            tokens.id_token,
            provider_client=self.provider_client,
            metadata=metadata,
            client_id=provider.client_id,
            nonce=self._secrets.nonce(state),
        )
        userinfo = None
        # Only for an email the ID token lacks: `email_verified` comes with its `email`.
        if metadata.userinfo_endpoint and claims.get("email") is None:
            userinfo = await self.provider_client.userinfo(
                metadata, access_token=tokens.access_token
            )
        return {"id_token": claims, "userinfo": userinfo}

    def _client_secret(self, provider: LoginProvider) -> str:
        try:
            return decrypt_secret(provider, key=self._secret_key)
        except InvalidTag as error:
            # Encrypted under another server secret: an operator's mistake, not the shopper's.
            logger.error("login provider %s: its client secret does not decrypt", provider.id)
            detail = "This login provider cannot be used at the moment."
            raise SignInError("server_error", detail, "secret_unreadable") from error

    async def _record(
        self,
        session: AsyncSession,
        login: ProviderLogin,
        provider: LoginProvider,
        claims: Mapping[str, Any],
        address: str,
    ) -> FinishedSignIn:
        """Customer, link, code and audit in one commit; one more try after losing a race
        with a sign-in of the same shopper (or email), which the second try then finds."""
        identity = identity_of(claims["id_token"], claims["userinfo"])
        for attempt in range(2):
            try:
                resolved = await customer_for(
                    session, hasher=self._hasher, login=login, provider=provider, identity=identity
                )
                code = _issue(session, login, provider, resolved, address)
                await session.commit()
                return FinishedSignIn(code, resolved.revocation)
            except (IntegrityError, CredentialsChangedError):
                await session.rollback()
                if attempt:
                    raise
                await session.refresh(login)
                await session.refresh(provider)
        raise AssertionError("unreachable")


def _issue(
    session: AsyncSession,
    login: ProviderLogin,
    provider: LoginProvider,
    resolved: ResolvedCustomer,
    address: str,
) -> str:
    """The code, of the customer's epoch as it stands after a link, with the audit trail."""
    customer = resolved.customer
    code = issue_code(login, customer_id=customer.id, epoch=customer.credential_epoch)
    _audit_success(session, login, provider, customer.id, resolved.outcome, address)
    return code


def _check_issuer(metadata: ProviderMetadata, answer: ProviderAnswer) -> None:
    """RFC 9207 §2.4: an answer naming another issuer, or none from a provider that always
    names itself, may come from another provider sharing our callback (a mix-up attack)."""
    if answer.issuer is None and not metadata.returns_issuer:
        return
    if answer.issuer != metadata.issuer:
        detail = "The answer did not come from the login provider the sign-in went to."
        raise SignInError("access_denied", detail, "issuer_mismatch")


def _audit_success(
    session: AsyncSession,
    login: ProviderLogin,
    provider: LoginProvider,
    customer_id: uuid.UUID,
    outcome: Outcome,
    address: str,
) -> None:
    events: list[AuditEventName] = [OUTCOME_EVENTS[outcome]] if outcome in OUTCOME_EVENTS else []
    for event in [*events, "customer.provider_login"]:
        record(
            session,
            event,
            store_id=login.store_id,
            actor=login.client_id,
            subject=str(customer_id),
            address=address,
            provider=provider.name,
        )
