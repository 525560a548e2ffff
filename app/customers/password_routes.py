"""Shoppers' passwords and logins: reset by mail, change, and logout.

- `POST /v2/customers/password-reset`: always 202 with the same body (503 without SMTP).
- `POST /v2/customers/password-reset/confirm`: the token from the mail and a new password.
- `PUT /v2/customers/{id}/password`: the current password and a new one, with the shopper's
  customer token.
- `DELETE /v2/customers/tokens/current`: revokes the customer token sent with it.

Reset confirmations and password changes count against the login rate limits, and a wrong
current password against the login lockout, so none of them is a way around those.
"""

import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from app.customers.customers import (
    Customer,
    CustomerOut,
    InvalidCredentialsError,
    customer_json,
    get_customer,
)
from app.customers.lockout import LoginGuard
from app.customers.mail import password_reset as service
from app.customers.mail.password_reset import TOKEN_NAME as RESET_TOKEN
from app.customers.mail.password_reset import (
    PasswordChangeIn,
    PasswordResetIn,
    PasswordResetRequestIn,
    reset_accepted,
)
from app.customers.mail.shopper_mail import MAX_AUDITED_ADDRESS, MailAcceptedOut, ShopperMail
from app.customers.mail.tokens import (
    ExpiredMailTokenError,
    ForeignMailTokenError,
    InvalidMailTokenError,
    MailTokenRefusedError,
    OutdatedMailTokenError,
    SupersededMailTokenError,
    UsedMailTokenError,
)
from app.customers.router import HasherDep, limit_logins
from app.http.errors import JSON_API, ErrorDocument, KeyhouseError, NotFoundError, error_responses
from app.http.jsonapi import Body, Document, JsonApiRoute, answers
from app.http.security import CUSTOMER_TOKEN_HEADER, Caller, ReadCaller
from app.oauth.revocation import apply_revocation, revoke_token
from app.oauth.verification import CustomerToken
from app.observability.audit import record
from app.runtime.db import SessionDep
from app.runtime.ratelimit import client_host

router = APIRouter(
    prefix="/v2/customers",
    tags=["customers"],
    responses=error_responses(400, 401, 403),
    route_class=JsonApiRoute,
)

NO_SUCH_MAIL = (
    "This server sends no such mail: no `KEYHOUSE_SMTP_URL`, or for verification no "
    "`KEYHOUSE_EMAIL_VERIFICATION_URL` (`MailNotConfiguredError`)."
)


def mail_not_configured(also: str = "") -> dict[int | str, dict[str, Any]]:
    """The 404 of a route that mails, where the server sends no mail; `also` says what else
    its 404 means."""
    return {404: {"model": ErrorDocument, "description": f"{also}{NO_SUCH_MAIL}"}}


MAIL_NOT_CONFIGURED = mail_not_configured()


def refusals(description: str, *errors: MailTokenRefusedError) -> dict[str, Any]:
    examples = {error.reason: {"summary": error.detail, "value": error.body()} for error in errors}
    return {
        "model": ErrorDocument,
        "description": description,
        "content": {JSON_API: {"examples": examples}},
    }


def token_refusals(token_name: str) -> dict[int | str, dict[str, Any]]:
    """The documented refusals of a route that takes a mailed token."""
    return {
        404: refusals(
            "The token was never issued, or belongs to another store.",
            InvalidMailTokenError(token_name),
            ForeignMailTokenError(token_name),
        ),
        409: refusals(
            "The token was used, a newer one was sent, or the account's credentials changed.",
            UsedMailTokenError(token_name),
            SupersededMailTokenError(token_name),
            OutdatedMailTokenError(token_name),
        ),
        410: refusals("The token has expired.", ExpiredMailTokenError(token_name)),
    }


class CustomerTokenRequiredError(KeyhouseError):
    """A route that acts for a logged-in shopper got no customer token: a 400, not a 401, since
    the access token is fine (the SDKs would only renew it on a 401, and send the same again)."""

    status_code = 400
    title = "Bad Request"
    default_detail = "This request needs the shopper's customer token (X-Moltin-Customer-Token)."


# The routes that act for the logged-in shopper alone say so in the schema: their customer-token
# header is a required parameter (beside the security schemes, which cannot say "required").
# Whitespace alone counts as no token; anything else is verified, so a wrong one is a 401.
NEEDS_CUSTOMER_TOKEN: dict[str, Any] = {
    "parameters": [
        {
            "name": CUSTOMER_TOKEN_HEADER,
            "in": "header",
            "required": True,
            "description": "The shopper's customer token: without one, a 400.",
            "schema": {"type": "string", "pattern": r"[^\t\n\v\f\r \x1c-\x1f\x85\xa0]"},
        }
    ]
}


def _shopper(caller: Caller) -> CustomerToken:
    if caller.customer is None:
        raise CustomerTokenRequiredError()
    return caller.customer


async def customer_of_own_token(
    session: AsyncSession, caller: Caller, customer_id: uuid.UUID
) -> tuple[Customer, CustomerToken]:
    """The customer of the caller's own customer token: 400 without one, 404 for another id."""
    shopper = _shopper(caller)
    customer = await get_customer(session, store_id=caller.store_id, customer_id=customer_id)
    if customer is None or shopper.customer_id != customer_id:
        raise NotFoundError()
    return customer, shopper


def shopper_mail(request: Request) -> ShopperMail:
    mail: ShopperMail = request.app.state.shopper_mail
    return mail


@router.post(
    "/password-reset",
    status_code=202,
    summary="Mail a shopper a link to set a new password (read)",
    responses={
        **answers(Document[MailAcceptedOut], 413, 429, status=202),
        **MAIL_NOT_CONFIGURED,
    },
)
async def request_password_reset(
    request: Request, body: Body[PasswordResetRequestIn], session: SessionDep, caller: ReadCaller
) -> JSONResponse:
    """The same 202, in body and time, whether or not the email is a customer's of this store:
    the request is queued, and the mail, if any, sent off the request path with a one-time
    token valid for `expires_in` seconds. Counted against the login limits per address, and
    per email. Audit (written by the sender): `customer.password_reset_mailed`,
    `customer.password_reset_unknown_email` or `customer.password_reset_mail_failed`."""
    host = client_host(request.scope)
    await limit_logins(request, caller, host)
    mail = shopper_mail(request)
    await service.request_reset(
        session, mail, store_id=caller.store_id, email=body.data.email, host=host
    )
    return JSONResponse(reset_accepted(mail), status_code=202)


@router.post(
    "/password-reset/confirm",
    summary="Set a new password with the token of a reset mail (read)",
    responses={**answers(Document[CustomerOut], 413, 429), **token_refusals(RESET_TOKEN)},
)
async def confirm_password_reset(
    request: Request,
    body: Body[PasswordResetIn],
    session: SessionDep,
    caller: ReadCaller,
    hasher: HasherDep,
) -> Any:
    """Uses the token up, sets the password (the sign-up rules), revokes every customer token
    of the shopper and clears the lockout of their email; answers the customer. Counted
    against the login limits. Audit: `customer.password_reset`, or for a refused token
    `customer.password_reset_refused` with its `reason`."""
    host = client_host(request.scope)
    await limit_logins(request, caller, host)
    guard: LoginGuard = request.app.state.login_guard
    customer, revocation = await service.reset_password(
        session,
        shopper_mail(request),
        hasher=hasher,
        guard=guard,
        store_id=caller.store_id,
        token=body.data.token,
        password=body.data.password,
        host=host,
    )
    apply_revocation(request, revocation, counted_as="customer")
    return {"data": customer_json(customer)}


@router.put(
    "/{customer_id}/password",
    status_code=204,
    summary="Change a shopper's password (their customer token)",
    responses=error_responses(404, 409, 413, 429),
    openapi_extra=NEEDS_CUSTOMER_TOKEN,
)
async def change_password(
    request: Request,
    customer_id: uuid.UUID,
    body: Body[PasswordChangeIn],
    session: SessionDep,
    caller: ReadCaller,
    hasher: HasherDep,
) -> Response:
    """Needs the shopper's own customer token (400 without one, 404 for another's id). A wrong
    current password is the login's 401, counted by the lockout. Every other customer token of
    the shopper is revoked; the one sent with this request stays valid. Audit:
    `customer.password_changed` (a wrong password: `customer.login_failed`)."""
    customer, shopper = await customer_of_own_token(session, caller, customer_id)
    host = client_host(request.scope)
    await limit_logins(request, caller, host)
    revocation = await service.change_password(
        session,
        hasher=hasher,
        guard=request.app.state.login_guard,
        customer=customer,
        current_password=body.data.current_password,
        password=body.data.password,
        host=host,
        actor=caller.token.client_id,
        spared_token_id=shopper.token_id,
    )
    if revocation is None:
        raise InvalidCredentialsError()
    apply_revocation(request, revocation, counted_as="customer")
    return Response(status_code=204)


@router.delete(
    "/tokens/current",
    status_code=204,
    summary="Log the shopper out: revoke the customer token sent (read)",
    openapi_extra=NEEDS_CUSTOMER_TOKEN,
)
async def revoke_current_customer_token(
    request: Request, session: SessionDep, caller: ReadCaller
) -> Response:
    """Revokes the customer token sent beside the access token (400 without one); the
    shopper's other sessions stay. Audit: `token.revoked`."""
    shopper = _shopper(caller)
    revocation = revoke_token(session, token_id=shopper.token_id, expires_at=shopper.expires_at)
    record(
        session,
        "token.revoked",
        store_id=caller.store_id,
        actor=caller.token.client_id,
        subject=shopper.token_id,
        address=client_host(request.scope)[:MAX_AUDITED_ADDRESS],
    )
    await session.commit()
    apply_revocation(request, revocation)
    return Response(status_code=204)
