"""Shoppers' email addresses: verification by mail, and change to a new verified address.

- `POST /v2/customers/email-verification`: always 202 with the same body (404 unconfigured).
- `POST /v2/customers/email-verification/confirm`: the token from the mail (and, for a
  sign-up's link, the account's password).
- `POST /v2/customers/{id}/email-change`: the current password and the new address, with the
  shopper's customer token; the change waits for the new address to be confirmed.

Every one counts against the login rate limits, and a wrong password against the lockout.
"""

import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from app.customers.customers import CustomerOut, InvalidCredentialsError, customer_json
from app.customers.mail import verification as service
from app.customers.mail.shopper_mail import MailAcceptedOut
from app.customers.mail.verification import (
    TOKEN_NAME,
    EmailChangeIn,
    EmailVerificationIn,
    EmailVerificationRequestIn,
    change_accepted,
    verification_accepted,
)
from app.customers.password_routes import (
    MAIL_NOT_CONFIGURED,
    NEEDS_CUSTOMER_TOKEN,
    customer_of_own_token,
    mail_not_configured,
    shopper_mail,
    token_refusals,
)
from app.customers.router import HasherDep, limit_logins
from app.http.errors import error_responses
from app.http.jsonapi import Body, Document, JsonApiRoute, answers
from app.http.security import ReadCaller
from app.oauth.revocation import apply_revocation
from app.runtime.db import SessionDep
from app.runtime.ratelimit import client_host

router = APIRouter(
    prefix="/v2/customers",
    tags=["customers"],
    responses=error_responses(400, 401, 403),
    route_class=JsonApiRoute,
)


@router.post(
    "/email-verification",
    status_code=202,
    summary="Mail a shopper a link to verify their email (read)",
    responses={
        **answers(Document[MailAcceptedOut], 413, 429, status=202),
        **MAIL_NOT_CONFIGURED,
    },
)
async def request_email_verification(
    request: Request,
    body: Body[EmailVerificationRequestIn],
    session: SessionDep,
    caller: ReadCaller,
) -> JSONResponse:
    """The same 202, in body and time, whatever the email: a link goes out only to a customer
    of this store whose address is not verified yet. Counted against the login limits per
    address, and per email. Audit (by the sender): `customer.email_verification_mailed`,
    `customer.email_verification_skipped` or `customer.email_verification_mail_failed`."""
    host = client_host(request.scope)
    await limit_logins(request, caller, host)
    mail = shopper_mail(request)
    await service.request_verification(
        session, mail, store_id=caller.store_id, email=body.data.email, host=host
    )
    return JSONResponse(verification_accepted(mail), status_code=202)


@router.post(
    "/email-verification/confirm",
    summary="Verify an email, or finish an email change, with the token of a mail (read)",
    responses={**answers(Document[CustomerOut], 413, 429), **token_refusals(TOKEN_NAME)},
)
async def confirm_email(
    request: Request,
    body: Body[EmailVerificationIn],
    session: SessionDep,
    caller: ReadCaller,
    hasher: HasherDep,
) -> Any:
    """A sign-up's link needs the account's `password` too (a wrong one is the login's 401,
    counted by the lockout): an address is verified only by someone who receives its mail and
    knows the password. An email change's link moves the account to the new address, verified,
    and ends every customer token of the shopper but the one that asked for the change. Audit:
    `customer.email_verified`, `customer.email_changed`, or `customer.email_verification_refused`
    with its `reason`."""
    host = client_host(request.scope)
    await limit_logins(request, caller, host)
    customer, revocation = await service.confirm_email(
        session,
        shopper_mail(request),
        hasher=hasher,
        guard=request.app.state.login_guard,
        store_id=caller.store_id,
        token=body.data.token,
        password=body.data.password,
        host=host,
    )
    if revocation is not None:
        apply_revocation(request, revocation, counted_as="customer")
    return {"data": customer_json(customer)}


@router.post(
    "/{customer_id}/email-change",
    status_code=202,
    summary="Move a shopper's account to a new email, once it is confirmed (their token)",
    responses={
        **answers(Document[MailAcceptedOut], 404, 409, 413, 429, status=202),
        **mail_not_configured("No such customer for this token; or: "),
    },
    openapi_extra=NEEDS_CUSTOMER_TOKEN,
)
async def request_email_change(
    request: Request,
    customer_id: uuid.UUID,
    body: Body[EmailChangeIn],
    session: SessionDep,
    caller: ReadCaller,
    hasher: HasherDep,
) -> JSONResponse:
    """Needs the shopper's own customer token (400 without one, 404 for another's id) and the
    current password (a wrong one is the login's 401, counted by the lockout). Mails the new
    address a link, and the current one a notice; the email changes when the link is followed
    (`POST /v2/customers/email-verification/confirm`). A taken address is a 409. Audit:
    `customer.email_change_requested`, then the sender's `customer.email_change_mailed`."""
    customer, shopper = await customer_of_own_token(session, caller, customer_id)
    host = client_host(request.scope)
    await limit_logins(request, caller, host)
    mail = shopper_mail(request)
    accepted = await service.request_email_change(
        session,
        mail,
        hasher=hasher,
        guard=request.app.state.login_guard,
        customer=customer,
        current_password=body.data.current_password,
        email=body.data.email,
        host=host,
        actor=caller.token.client_id,
        token_id=shopper.token_id,
    )
    if not accepted:
        raise InvalidCredentialsError()
    return JSONResponse(change_accepted(mail), status_code=202)
