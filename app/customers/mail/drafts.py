"""What a mail request becomes, by its purpose: the mails to send with a fresh token, or
nothing but an audit event when the request no longer applies.

- `password_reset`: to the customer of the email, if there is one;
- `email_verification`: to the customer of the email, if there is one and it is not verified;
- `email_change`: to the new address, the link that makes the change, and to the current
  address a notice; nothing if the customer's credentials changed since they asked (a password
  reset cancels a pending change).
"""

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from email.errors import MessageError
from email.message import EmailMessage

from sqlalchemy.ext.asyncio import AsyncSession

from app.customers.customers import Customer, find_by_email
from app.customers.mail.messages import (
    email_change_message,
    email_change_notice,
    reset_message,
    verification_message,
)
from app.customers.mail.outbox import MailPurpose, MailRequest
from app.customers.mail.tokens import MailTokenHasher, issue_mail_token
from app.oauth.stores import Store
from app.observability.audit import AuditEventName

SENT_EVENTS: dict[str, AuditEventName] = {
    "password_reset": "customer.password_reset_mailed",
    "email_verification": "customer.email_verification_mailed",
    "email_change": "customer.email_change_mailed",
}
FAILED_EVENTS: dict[str, AuditEventName] = {
    "password_reset": "customer.password_reset_mail_failed",
    "email_verification": "customer.email_verification_mail_failed",
    "email_change": "customer.email_change_mail_failed",
}


def printable(text: str) -> str:
    return "".join(char if char.isprintable() else " " for char in text)


@dataclass(frozen=True, slots=True)
class MailLinks:
    """Where mailed links lead (`{token}` replaced) and how long they work."""

    sender: str
    reset_url: str
    reset_ttl: int
    verification_url: str | None
    verification_ttl: int


@dataclass(frozen=True, slots=True)
class Draft:
    """Mails to send for a customer; `unusable` when their address cannot carry one."""

    customer_id: uuid.UUID | None
    messages: list[EmailMessage]
    sent_event: AuditEventName
    unusable: bool = False


@dataclass(frozen=True, slots=True)
class Skipped:
    """Nothing to send: the audit event that says why."""

    event: AuditEventName
    subject: str
    details: dict[str, str] = field(default_factory=dict)


class Drafts:
    """Turns claimed requests into mails, issuing their tokens in the caller's session."""

    def __init__(self, hasher: MailTokenHasher, links: MailLinks) -> None:
        self._hasher = hasher
        self.links = links
        self._purposes: dict[str, Callable[[AsyncSession, MailRequest], Awaitable[Draft | Skipped]]]
        self._purposes = {
            "password_reset": self._reset,
            "email_verification": self._verification,
            "email_change": self._change,
        }

    def failed_event(self, request: MailRequest) -> AuditEventName:
        return FAILED_EVENTS[request.purpose]

    async def draft(self, session: AsyncSession, request: MailRequest) -> Draft | Skipped:
        """The mails for `request` (its token added to `session`), or why there are none."""
        try:
            return await self._purposes[request.purpose](session, request)
        except (ValueError, MessageError):  # an address no mail can carry
            return Draft(request.customer_id, [], SENT_EVENTS[request.purpose], unusable=True)

    async def _token(
        self,
        session: AsyncSession,
        customer: Customer,
        purpose: MailPurpose,
        *,
        email: str,
        spared_token_id: str | None = None,
    ) -> tuple[str, str]:
        """A new token's link, and the store's name, for mails about `customer`."""
        links = self.links
        url, ttl = (
            (links.reset_url, links.reset_ttl)
            if purpose == "password_reset"
            else (links.verification_url or "", links.verification_ttl)
        )
        token = await issue_mail_token(
            session,
            hasher=self._hasher,
            purpose=purpose,
            customer=customer,
            email=email,
            ttl=ttl,
            spared_token_id=spared_token_id,
        )
        store = await session.get(Store, customer.store_id)
        return url.replace("{token}", token), store.name if store else "our shop"

    async def _reset(self, session: AsyncSession, request: MailRequest) -> Draft | Skipped:
        customer = await find_by_email(session, store_id=request.store_id, email=request.email)
        if customer is None:
            return Skipped("customer.password_reset_unknown_email", printable(request.email))
        link, store = await self._token(session, customer, "password_reset", email=customer.email)
        ttl = self.links.reset_ttl
        message = reset_message(
            sender=self.links.sender, to=customer.email, store_name=store, link=link, ttl=ttl
        )
        return Draft(customer.id, [message], SENT_EVENTS["password_reset"])

    async def _verification(self, session: AsyncSession, request: MailRequest) -> Draft | Skipped:
        if self.links.verification_url is None:  # the setting was removed since the request
            email, not_configured = printable(request.email), {"reason": "not_configured"}
            return Skipped("customer.email_verification_skipped", email, not_configured)
        customer = await find_by_email(session, store_id=request.store_id, email=request.email)
        if customer is None or customer.email_verified:
            subject = printable(request.email) if customer is None else str(customer.id)
            reason = "unknown_email" if customer is None else "already_verified"
            return Skipped("customer.email_verification_skipped", subject, {"reason": reason})
        link, store = await self._token(
            session, customer, "email_verification", email=customer.email
        )
        message = verification_message(
            sender=self.links.sender,
            to=customer.email,
            store_name=store,
            link=link,
            ttl=self.links.verification_ttl,
        )
        return Draft(customer.id, [message], SENT_EVENTS["email_verification"])

    async def _change(self, session: AsyncSession, request: MailRequest) -> Draft | Skipped:
        customer = await session.get(Customer, request.customer_id) if request.customer_id else None
        if customer is None or customer.credential_epoch != request.customer_epoch:
            subject = str(request.customer_id)
            return Skipped("customer.email_change_cancelled", subject, {"reason": "outdated"})
        if self.links.verification_url is None:
            not_configured = {"reason": "not_configured"}
            return Skipped("customer.email_change_cancelled", str(customer.id), not_configured)
        link, store = await self._token(
            session,
            customer,
            "email_change",
            email=request.email,
            spared_token_id=request.spared_token_id,
        )
        sender, ttl = self.links.sender, self.links.verification_ttl
        # The notice first: if it cannot go out, neither does the link, and both are tried again.
        notice = email_change_notice(sender=sender, to=customer.email, store_name=store)
        change = email_change_message(
            sender=sender, to=request.email, store_name=store, link=link, ttl=ttl
        )
        return Draft(customer.id, [notice, change], SENT_EVENTS["email_change"])
