"""The login lockout: someone guessing a shopper's password is slowed, then stopped.

Failed logins are counted within a window (15 minutes by default), in the rate-limit counters
(`app/runtime/ratelimit.py`: memory, or Redis across workers and replicas), three ways:

- per (account, address), account being (store, email): 5 failures lock that pair;
- per account, from everywhere: 20 failures put the account *under attack*, and then only
  addresses with no failure for it in the window may still try, so a guesser gets at most
  one guess per address per window;
- per address, across accounts: 50 failures lock the address.

Why not lock the account itself: a lockout keyed by the account alone lets anyone lock a
shopper out for as long as they keep failing logins on purpose. Keyed by (account, address)
plus the under-attack rule, an attacker can never stop the shopper logging in from an address
that has not failed, and every lock ends at most one window after its first failure (windows
are fixed: refused attempts do not extend them).

The checks run before the password hash, so a locked attempt costs no hashing, and they refuse
the right password too (that is what a lockout is). Each attempt is counted against its pair
*before* the hash as well, so a burst of parallel guesses cannot all pass a check made before
any of them failed; a success clears the pair. A wrong password repeated for the same account
within the window counts once: the JavaScript SDKs resend a refused login several times, and
one typo must not cost four failures. Repeats are recognised by an HMAC of the account and
the password under a key derived from the server secret, truncated to 128 bits; neither the
password nor a plain hash of it is ever stored. Accounts are keyed by an HMAC too, so the
counters hold no email addresses.

Known emails and unknown ones are counted alike, so the lockout tells nothing about which
accounts exist. A failed login is audited with its email as typed only if it looks like one:
anything else (a password typed into the wrong field, say) as a short keyed hash, enough to
tell repeats apart. If the counters cannot be reached, logins are refused with a 503.
"""

import hmac
import uuid
from dataclasses import dataclass, replace
from typing import Literal

from limits.aio.storage import Storage
from limits.errors import StorageError
from sqlalchemy.ext.asyncio import AsyncSession

from app.customers.emails import is_email
from app.observability.audit import AuditEventName, record
from app.runtime.ratelimit import (
    Counters,
    CountersUnavailableError,
    TooManyRequestsError,
    address_key,
    retry_after,
)
from app.runtime.settings import Settings

Scope = Literal["pair", "account", "address"]
DIGEST_BYTES = 16
LOCKED = "Too many failed logins; try again after the time in the Retry-After header."
MAX_AUDITED_ADDRESS = 64  # the audit column's width


@dataclass(slots=True)
class LoginAttempt:
    """One login on its way through the lockout: its counter keys, and what was counted."""

    store_id: uuid.UUID
    email: str
    # What the audit trail and the log may show of `email`: itself if it looks like an email,
    # else a short keyed hash (a password typed into the email field must not be written down).
    audited_email: str
    host: str
    pair: str
    account: str
    address: str
    guess: str
    repeated: bool = False
    pair_failures: int = 0
    # Whose login: a customer's (an email), or an account member's (a username in a profile).
    kind: Literal["customer", "account_member"] = "customer"


@dataclass(frozen=True, slots=True)
class FailedLogin:
    """The counts after a failed login, and the locks it started."""

    pair_failures: int
    account_failures: int
    address_failures: int
    repeated: bool
    lockouts: tuple[Scope, ...]

    def failures(self) -> dict[Scope, int]:
        """The failures counted in each scope's window."""
        return {
            "pair": self.pair_failures,
            "account": self.account_failures,
            "address": self.address_failures,
        }


class LoginGuard:
    """Counts failed customer logins and refuses locked ones (429 with `Retry-After`)."""

    def __init__(self, counters: Counters, settings: Settings, *, key: bytes) -> None:
        self._counters = counters
        self._storage: Storage = counters.storage
        self._key = key
        self.window = settings.lockout_window_seconds
        self._limits: dict[Scope, int] = {
            "pair": settings.lockout_pair_failures,
            "account": settings.lockout_account_failures,
            "address": settings.lockout_address_failures,
        }

    def _digest(self, *parts: str) -> str:
        message = "\0".join(parts).encode("utf-8", "surrogatepass")
        return hmac.digest(self._key, message, "sha256")[:DIGEST_BYTES].hex()

    def _attempt(
        self, store_id: uuid.UUID, email: str, password: str, host: str, profile: str | None
    ) -> LoginAttempt:
        email = email.strip().lower()
        # A member's username is counted within its password profile, apart from customers'.
        scope = (str(store_id),) if profile is None else (str(store_id), "profile", profile)
        account = self._digest("account", *scope, email)
        address = address_key(host)
        audited = email if is_email(email) else f"hash:{self._digest('audit', email)[:16]}"
        return LoginAttempt(
            store_id=store_id,
            email=email,
            kind="customer" if profile is None else "account_member",
            audited_email=audited,
            host=host,
            pair=f"lockout/pair/{account}/{address}",
            account=f"lockout/account/{account}",
            address=f"lockout/address/{address}",
            guess=f"lockout/guess/{self._digest('guess', *scope, email, password)}",
        )

    async def admit(
        self,
        *,
        store_id: uuid.UUID,
        email: str,
        password: str,
        host: str,
        password_profile_id: uuid.UUID | None = None,
    ) -> LoginAttempt:
        """The attempt, if no lock refuses it; counted against its pair unless a repeat. With
        `password_profile_id`, `email` is an account member's username in that profile."""
        profile = None if password_profile_id is None else str(password_profile_id)
        attempt = self._attempt(store_id, email, password, host, profile)
        if not self._counters.may_ask():
            raise CountersUnavailableError()
        try:
            await self._check(attempt)
        except StorageError as error:
            self._counters.failed(error)
            raise CountersUnavailableError() from error
        self._counters.answered()
        return attempt

    async def _check(self, attempt: LoginAttempt) -> None:
        storage = self._storage
        if await storage.get(attempt.address) >= self._limits["address"]:
            raise await self._locked(attempt.address)
        attempt.repeated = await storage.get(attempt.guess) > 0
        if attempt.repeated:
            earlier = attempt.pair_failures = await storage.get(attempt.pair)
        else:
            attempt.pair_failures = await storage.incr(attempt.pair, self.window)
            earlier = attempt.pair_failures - 1
        if earlier >= self._limits["pair"]:
            raise await self._locked(attempt.pair)
        if earlier and await storage.get(attempt.account) >= self._limits["account"]:
            raise await self._locked(attempt.pair, attempt.account)  # under attack

    async def _locked(self, *keys: str) -> TooManyRequestsError:
        # The refusal lifts when the first of these counters expires.
        expiries = [await self._storage.get_expiry(key) for key in keys]
        return TooManyRequestsError(LOCKED, retry_after=retry_after(min(expiries)))

    async def failed(self, attempt: LoginAttempt) -> FailedLogin:
        """Counts a wrong password (or unknown email); a repeated guess counts once."""
        uncounted = FailedLogin(attempt.pair_failures, 0, 0, attempt.repeated, ())
        if not self._counters.may_ask():  # it went away since the attempt was admitted
            return uncounted
        try:
            counted = await self._count_failure(attempt)
        except StorageError as error:
            self._counters.failed(error)  # the next attempts are refused until it answers
            return uncounted
        self._counters.answered()
        return counted

    async def _count_failure(self, attempt: LoginAttempt) -> FailedLogin:
        storage = self._storage
        if not attempt.repeated:
            # Two parallel sends of one new guess: the second is a repeat after all.
            attempt.repeated = await storage.incr(attempt.guess, self.window) > 1
        if attempt.repeated:
            account = await storage.get(attempt.account)
            address = await storage.get(attempt.address)
            return FailedLogin(attempt.pair_failures, account, address, True, ())
        account = await storage.incr(attempt.account, self.window)
        address = await storage.incr(attempt.address, self.window)
        counted = FailedLogin(attempt.pair_failures, account, address, False, ())
        # Exactly one failure reaches each threshold: increments are atomic.
        reached = counted.failures().items()
        lockouts = tuple(scope for scope, count in reached if count == self._limits[scope])
        return replace(counted, lockouts=lockouts)

    async def reset(self, *, store_id: uuid.UUID, email: str, host: str) -> None:
        """After a password reset: clears the email's count from everywhere (it is no longer
        under attack) and its pair with the address that reset it. Pairs with other
        addresses keep counting: they are someone else's guesses, now at a new password."""
        attempt = self._attempt(store_id, email, "", host, None)
        await self._clear(attempt.account, attempt.pair)

    async def succeeded(self, attempt: LoginAttempt) -> None:
        """A right password clears its pair's failures."""
        await self._clear(attempt.pair)

    async def _clear(self, *keys: str) -> None:
        if not self._counters.may_ask():  # skipped while the counters are away
            return
        try:
            for key in keys:
                await self._storage.clear(key)
        except StorageError as error:
            self._counters.failed(error)
            return
        self._counters.answered()


def _printable(text: str) -> str:
    # The email is as sent, unvalidated: no control characters into the table or the log
    # (PostgreSQL refuses NUL in text outright).
    return "".join(char if char.isprintable() else "\ufffd" for char in text)


def record_failed_login(
    session: AsyncSession, attempt: LoginAttempt, failure: FailedLogin, *, window: int
) -> None:
    """Adds the audit events of a failed login to `session`: never the password."""
    address = _printable(attempt.host[:MAX_AUDITED_ADDRESS])
    email = _printable(attempt.audited_email)
    failed: AuditEventName = "customer.login_failed"
    started: AuditEventName = "customer.lockout_started"
    if attempt.kind == "account_member":
        failed, started = "account_member.login_failed", "account_member.lockout_started"
    record(
        session,
        failed,
        store_id=attempt.store_id,
        subject=email,
        address=address,
        failures=failure.pair_failures,
        account_failures=failure.account_failures,
        address_failures=failure.address_failures,
        repeated=failure.repeated,
    )
    failures = failure.failures()
    for scope in failure.lockouts:
        record(
            session,
            started,
            store_id=attempt.store_id,
            subject=email if scope != "address" else None,
            address=address,
            scope=scope,
            failures=failures[scope],
            window_seconds=window,
        )
