"""What the mail routes share in a worker: the sender (None without SMTP), the token hasher,
the limit of requests per email, and queueing a request behind that limit."""

import uuid
from collections.abc import Callable
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from app.customers.customers import Customer
from app.customers.mail.drafts import Drafts, MailLinks
from app.customers.mail.outbox import MailPurpose, add_request
from app.customers.mail.sender import MailSender
from app.customers.mail.tokens import MailTokenHasher
from app.http.errors import KeyhouseError
from app.http.jsonapi import Output
from app.runtime.db import Database
from app.runtime.mail import Mailer, SmtpServer
from app.runtime.ratelimit import Counters, RateLimiter, TooManyRequestsError
from app.runtime.settings import Settings

MAX_AUDITED_ADDRESS = 64  # the audit column's width


class MailNotConfiguredError(KeyhouseError):
    """The server sends no such mail, so the request is not accepted: a 404, as for a route
    this server does not offer. (Not a 503: nothing is away for a moment, and waiting would
    not help; it is how the server was set up.)"""

    status_code = 404
    title = "Not Found"
    default_detail = (
        "Password reset is unavailable: this server has no mail delivery configured "
        "(KEYHOUSE_SMTP_URL)."
    )


class VerificationNotConfiguredError(MailNotConfiguredError):
    default_detail = (
        "Email verification is unavailable: this server has no mail delivery or no "
        "verification link configured (KEYHOUSE_SMTP_URL, KEYHOUSE_EMAIL_VERIFICATION_URL)."
    )


class MailAcceptedOut(Output):
    """The one answer to every mail request, whether or not the email is a customer's."""

    type: Literal["password_reset_request", "email_verification_request", "email_change"]
    expires_in: int
    message: str


class ShopperMail:
    """One worker's mail to shoppers: what the routes need to queue it, and the sender."""

    def __init__(
        self,
        *,
        sender: MailSender | None,
        hasher: MailTokenHasher,
        links: MailLinks | None,
        per_email: RateLimiter,
        reset_ttl: int,
        verification_ttl: int,
    ) -> None:
        self.sender = sender
        self.hasher = hasher
        self.links = links
        self.per_email = per_email
        self.reset_ttl = reset_ttl
        self.verification_ttl = verification_ttl

    @classmethod
    def from_settings(
        cls, settings: Settings, *, database: Database, counters: Counters, key: bytes
    ) -> "ShopperMail":
        hasher = MailTokenHasher(key)
        server = SmtpServer.from_settings(settings)
        sender = links = None
        if server is not None:
            assert settings.mail_from and settings.password_reset_url  # the settings insist
            links = MailLinks(
                sender=settings.mail_from,
                reset_url=settings.password_reset_url,
                reset_ttl=settings.password_reset_ttl,
                verification_url=settings.email_verification_url,
                verification_ttl=settings.email_verification_ttl,
            )
            sender = MailSender(database, Mailer(server), Drafts(hasher, links))
        limit = settings.password_reset_rate_limit_per_email
        return cls(
            sender=sender,
            hasher=hasher,
            links=links,
            per_email=RateLimiter(counters, "mail-email", limit),
            reset_ttl=settings.password_reset_ttl,
            verification_ttl=settings.email_verification_ttl,
        )

    @property
    def verifies_emails(self) -> bool:
        """Whether verification and email change mails can go out."""
        return self.links is not None and self.links.verification_url is not None

    async def start(self) -> None:
        if self.sender is not None:
            await self.sender.start()

    async def stop(self) -> None:
        if self.sender is not None:
            await self.sender.stop()

    def wake(self) -> None:
        if self.sender is not None:
            self.sender.wake()

    def pushed_by(self, connected: Callable[[], bool]) -> None:
        if self.sender is not None:
            self.sender.pushed_by(connected)

    def add_verification(self, session: AsyncSession, customer: Customer, *, host: str) -> None:
        """Queues a verification mail for a new customer, in the caller's transaction (which
        then calls `wake`)."""
        add_request(
            session,
            purpose="email_verification",
            store_id=customer.store_id,
            email=customer.email,
            address=host[:MAX_AUDITED_ADDRESS],
        )

    async def count(self, purpose: MailPurpose, *, store_id: uuid.UUID, email: str) -> None:
        """Counts a request against the per-email limit (429 past it). Counted by a keyed hash,
        so the counters hold no email addresses."""
        key = self.hasher.hash(f"{purpose}\0{store_id}\0{email.strip().lower()}")
        wait = await self.per_email.hit(key)
        if wait:
            raise TooManyRequestsError(retry_after=wait)

    async def queue(
        self,
        session: AsyncSession,
        purpose: MailPurpose,
        *,
        store_id: uuid.UUID,
        email: str,
        host: str,
    ) -> None:
        """Counts and queues a request by email, commits it and wakes this worker's sender."""
        await self.count(purpose, store_id=store_id, email=email)
        add_request(
            session,
            purpose=purpose,
            store_id=store_id,
            email=email,
            address=host[:MAX_AUDITED_ADDRESS],
        )
        await session.commit()
        self.wake()

    def accepted(self, kind: str, ttl: int, message: str) -> dict[str, object]:
        return {"data": {"type": kind, "expires_in": ttl, "message": message}}
