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

from app import metrics
from app.audit import record
from app.customers.customers import CustomerOut, customer_json, get_customer
from app.customers.lockout import LoginGuard
from app.customers.mail import password_reset as service
from app.customers.mail.password_reset import (
    PasswordChangeIn,
    PasswordResetIn,
    PasswordResetRequestIn,
    PasswordResets,
    ResetRequestedOut,
)
from app.customers.mail.tokens import (
    ExpiredResetTokenError,
    ForeignResetTokenError,
    InvalidResetTokenError,
    ResetTokenRefusedError,
    SupersededResetTokenError,
    UsedResetTokenError,
)
from app.customers.router import HasherDep, InvalidCredentialsError, limit_logins
from app.db import SessionDep
from app.errors import JSON_API, ErrorDocument, KeyhouseError, NotFoundError, error_responses
from app.jsonapi import Body, Document, answers
from app.oauth.revocation import Revocation, RevocationList, revoke_token
from app.oauth.verification import CustomerToken
from app.ratelimit import client_host
from app.security import Caller, ReadCaller

router = APIRouter(
    prefix="/v2/customers", tags=["customers"], responses=error_responses(400, 401, 403)
)

MAIL_NOT_CONFIGURED: dict[int | str, dict[str, Any]] = {
    503: {
        "model": ErrorDocument,
        "description": "No mail delivery is configured on this server (`KEYHOUSE_SMTP_URL`).",
    }
}


def _refusals(description: str, *errors: ResetTokenRefusedError) -> dict[str, Any]:
    examples = {error.reason: {"summary": error.detail, "value": error.body()} for error in errors}
    return {
        "model": ErrorDocument,
        "description": description,
        "content": {JSON_API: {"examples": examples}},
    }


TOKEN_REFUSALS: dict[int | str, dict[str, Any]] = {
    400: _refusals("A malformed body, or a token never issued.", InvalidResetTokenError()),
    404: _refusals("The token belongs to another store.", ForeignResetTokenError()),
    409: _refusals(
        "The token was used, or a newer one was sent.",
        UsedResetTokenError(),
        SupersededResetTokenError(),
    ),
    410: _refusals("The token has expired.", ExpiredResetTokenError()),
}


class CustomerTokenRequiredError(KeyhouseError):
    """A route that acts for a logged-in shopper got no customer token: a 400, not a 401, since
    the access token is fine (the SDKs would only renew it on a 401, and send the same again)."""

    status_code = 400
    title = "Bad Request"
    default_detail = "This request needs the shopper's customer token (X-Moltin-Customer-Token)."


def _shopper(caller: Caller) -> CustomerToken:
    if caller.customer is None:
        raise CustomerTokenRequiredError()
    return caller.customer


def _resets(request: Request) -> PasswordResets:
    resets: PasswordResets = request.app.state.password_resets
    return resets


def _apply(request: Request, revocation: Revocation, kind: str) -> None:
    revocations: RevocationList = request.app.state.revocations
    revocations.apply(revocation)  # this worker at once; the others at their next poll
    metrics.revoked(kind)


async def _revoke_shoppers_tokens(request: Request, revocation: Revocation) -> None:
    """Applies a revocation of a shopper's tokens here, then waits for its second to pass."""
    _apply(request, revocation, "customer")
    await service.past_cutoff(revocation)


@router.post(
    "/password-reset",
    status_code=202,
    summary="Mail a shopper a link to set a new password (read)",
    responses={
        **answers(Document[ResetRequestedOut], 413, 429, status=202),
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
    resets = _resets(request)
    await service.request_reset(
        session, resets, store_id=caller.store_id, email=body.data.email, host=host
    )
    return JSONResponse(resets.accepted(), status_code=202)


@router.post(
    "/password-reset/confirm",
    summary="Set a new password with the token of a reset mail (read)",
    responses={**answers(Document[CustomerOut], 413, 429), **TOKEN_REFUSALS},
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
        _resets(request),
        hasher=hasher,
        guard=guard,
        store_id=caller.store_id,
        token=body.data.token,
        password=body.data.password,
        host=host,
    )
    await _revoke_shoppers_tokens(request, revocation)
    return {"data": customer_json(customer)}


@router.put(
    "/{customer_id}/password",
    status_code=204,
    summary="Change a shopper's password (their customer token)",
    responses=error_responses(404, 413, 429),
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
    shopper = _shopper(caller)
    customer = await get_customer(session, store_id=caller.store_id, customer_id=customer_id)
    if customer is None or shopper.customer_id != customer_id:
        raise NotFoundError()
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
    await _revoke_shoppers_tokens(request, revocation)
    return Response(status_code=204)


@router.delete(
    "/tokens/current",
    status_code=204,
    summary="Log the shopper out: revoke the customer token sent (read)",
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
        address=client_host(request.scope)[: service.MAX_AUDITED_ADDRESS],
    )
    await session.commit()
    _apply(request, revocation, "token")
    return Response(status_code=204)
