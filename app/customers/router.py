"""`/v2/customers`: sign-up, profiles, and `/v2/customers/tokens` for logins."""

import uuid
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from starlette.convertors import register_url_convertor

from app.customers import customers as service
from app.customers.credentials import update_customer as update_customer_service
from app.customers.customers import (
    CUSTOMER_FILTERS,
    Customer,
    CustomerIn,
    CustomerOut,
    CustomerUpdate,
    InvalidCredentialsError,
)
from app.customers.lockout import LoginGuard
from app.customers.mail.shopper_mail import ShopperMail
from app.customers.oidc.handover import exchange_login_code
from app.customers.tokens import (
    CustomerTokenIssuer,
    CustomerTokenOut,
    CustomerTokenRequest,
    IssuedCustomerToken,
)
from app.http.errors import KeyhouseError, error_responses, found
from app.http.jsonapi import (
    Body,
    Document,
    JsonApiRoute,
    ListDocument,
    UuidConvertor,
    answers,
    filter_of,
    list_document,
    list_parameters,
    page_of,
)
from app.http.security import Caller, InsufficientScopeError, ReadCaller, WriteCaller
from app.oauth.revocation import apply_revocation
from app.oauth.scopes import WRITE
from app.oauth.stores import Store
from app.runtime.db import SessionDep
from app.runtime.passwords import PasswordHasher
from app.runtime.ratelimit import RateLimits, TooManyRequestsError, address_key, client_host

LOGIN_DESCRIPTION = """\
With email and password (`authentication_mechanism` `password`, the default): a wrong password
and an unknown email get the same 401.

With `"authentication_mechanism": "oidc"`: the `oauth_authorization_code` that a sign-in with a
login provider (`GET /oauth/customers/login/{provider}`) sent the storefront back with, the
`oauth_redirect_uri` it started with, and the PKCE `oauth_code_verifier` of its challenge. The
caller's access token must be of the client the sign-in started for. A code never issued to
this store (or whose customer is gone) is a 404; one expired, already used, or of another
client, redirect URI or verifier is a 400 saying which;
a code used twice also revokes the customer token its first use gave (audit event
`customer.provider_code_replayed`).
"""

SIGN_UP_DESCRIPTION = """\
A storefront's sign-up (where the store allows it) starts unverified, and when the server mails
verification links (`KEYHOUSE_EMAIL_VERIFICATION_URL`), one goes to the address: the shopper
confirms it with `POST /v2/customers/email-verification/confirm` and their password. A backend
may say `email_verified` itself.
"""

UPDATE_DESCRIPTION = """\
With the shopper's own customer token: the name, and the email unchanged (as a profile form sends
it back). A new password or email is a 403 naming the routes that change them with the current
password (`PUT /v2/customers/{id}/password`, `POST /v2/customers/{id}/email-change`).

A backend may change everything: a new password or email ends every customer token of the
shopper and every link mailed to them (audit event `customer.credentials_changed`).
"""


register_url_convertor("customer_id", UuidConvertor())
CUSTOMER_PATH = "/{customer_id:customer_id}"

router = APIRouter(
    prefix="/v2/customers",
    tags=["customers"],
    responses=error_responses(400, 401, 403),
    route_class=JsonApiRoute,
)


class CredentialChangeRefusedError(KeyhouseError):
    """A shopper's own token tried to change a credential through the profile route."""

    status_code = 403
    title = "Forbidden"
    default_detail = (
        "A shopper changes their password with PUT /v2/customers/{id}/password and their email "
        "with POST /v2/customers/{id}/email-change, each with the current password."
    )


class EmailNotVerifiedError(KeyhouseError):
    """The right password, in a store that requires a verified email first."""

    status_code = 403
    title = "Forbidden"
    default_detail = (
        "This account's email address is not verified yet: follow the link in the "
        "verification mail, or ask for a new one."
    )


def _hasher(request: Request) -> PasswordHasher:
    hasher: PasswordHasher = request.app.state.password_hasher
    return hasher


HasherDep = Annotated[PasswordHasher, Depends(_hasher)]


async def _customer_for(
    session: SessionDep, caller: ReadCaller, customer_id: uuid.UUID
) -> Customer:
    caller.check_customer(customer_id)
    return found(
        await service.get_customer(session, store_id=caller.store_id, customer_id=customer_id)
    )


CustomerDep = Annotated[Customer, Depends(_customer_for)]


@router.post(
    "",
    status_code=201,
    summary="Sign a customer up (read; write for backends)",
    description=SIGN_UP_DESCRIPTION,
    responses=answers(Document[CustomerOut], 409, 413, status=201),
)
async def create_customer(
    request: Request,
    body: Body[CustomerIn],
    session: SessionDep,
    caller: ReadCaller,
    hasher: HasherDep,
) -> JSONResponse:
    mail: ShopperMail = request.app.state.shopper_mail
    verify_by_mail = None
    if not caller.is_backend:
        store = await session.get(Store, caller.store_id)
        if store is None or not store.allow_customer_signup:
            raise InsufficientScopeError(WRITE)
        if body.data.email_verified is not None:
            raise InsufficientScopeError(WRITE)
        if mail.verifies_emails:
            host = client_host(request.scope)
            verify_by_mail = partial(mail.add_verification, session, host=host)
    customer = await service.create_customer(
        session, hasher=hasher, store_id=caller.store_id, data=body.data, then=verify_by_mail
    )
    if verify_by_mail is not None:
        mail.wake()
    return JSONResponse({"data": service.customer_json(customer)}, status_code=201)


@router.get(
    "",
    summary="List customers (write)",
    responses=answers(ListDocument[CustomerOut]),
    openapi_extra=list_parameters(CUSTOMER_FILTERS),
)
async def list_customers(request: Request, session: SessionDep, caller: WriteCaller) -> Any:
    page = page_of(request)
    customers, total = await service.list_customers(
        session,
        store_id=caller.store_id,
        page=page,
        conditions=filter_of(request, CUSTOMER_FILTERS),
    )
    return list_document(
        request, [service.customer_json(c) for c in customers], page=page, total=total
    )


@router.delete(
    CUSTOMER_PATH,
    status_code=204,
    summary="Delete a customer and revoke their customer tokens (write)",
    responses=error_responses(404),
)
async def delete_customer(
    request: Request,
    caller: WriteCaller,  # before the customer: a read-only token is 403, whatever the id
    customer: CustomerDep,
    session: SessionDep,
) -> Response:
    revocation = await service.delete_customer(
        session, customer=customer, actor=caller.token.client_id
    )
    apply_revocation(request, revocation, counted_as="customer")
    return Response(status_code=204)


async def limit_logins(request: Request, caller: Caller, host: str) -> None:
    """Login requests per address, and per client for backends: a storefront's client id is
    anyone's, and a limit on it would let one abuser stop every shopper of the store."""
    limits: RateLimits = request.app.state.rate_limits
    wait = await limits.login_per_address.hit(address_key(host))
    if not wait and caller.is_backend:
        wait = await limits.login_per_client.hit(caller.token.client_id)
    if wait:
        raise TooManyRequestsError(retry_after=wait)


@router.post(
    "/tokens",
    summary="Log a customer in with email and password, or with a login provider's code",
    description=LOGIN_DESCRIPTION,
    responses=answers(Document[CustomerTokenOut], 404, 413, 429),
)
async def create_customer_token(
    request: Request,
    body: Body[CustomerTokenRequest],
    session: SessionDep,
    caller: ReadCaller,
    hasher: HasherDep,
) -> Any:
    host = client_host(request.scope)
    await limit_logins(request, caller, host)
    login = body.data
    if login.authentication_mechanism == "oidc":
        return (await _exchange_login_code(request, session, caller, login, host)).document()
    assert login.email is not None and login.password is not None  # the model checked
    guard: LoginGuard = request.app.state.login_guard
    customer = await service.log_in_customer(
        session,
        hasher=hasher,
        guard=guard,
        store_id=caller.store_id,
        email=login.email,
        password=login.password,
        host=host,
    )
    if customer is None:
        raise InvalidCredentialsError()
    if not customer.email_verified:
        store = await session.get(Store, caller.store_id)
        if store is not None and store.require_email_verification:
            raise EmailNotVerifiedError()
    issuer: CustomerTokenIssuer = request.app.state.customer_token_issuer
    return (await issuer.issue(customer)).document()


async def _exchange_login_code(
    request: Request, session: SessionDep, caller: Caller, login: CustomerTokenRequest, host: str
) -> IssuedCustomerToken:
    """A sign-in with a login provider: its code for a customer token (app/customers/oidc)."""
    assert login.oauth_authorization_code and login.oauth_redirect_uri  # the model checked
    assert login.oauth_code_verifier
    return await exchange_login_code(
        session,
        issuer=request.app.state.customer_token_issuer,
        revocations=request.app.state.revocations,
        client_id=caller.token.client_id,
        store_id=caller.store_id,
        code=login.oauth_authorization_code,
        redirect_uri=login.oauth_redirect_uri,
        code_verifier=login.oauth_code_verifier,
        address=host,
    )


@router.get(
    CUSTOMER_PATH,
    summary="A customer (write, or that customer's own token)",
    responses=answers(Document[CustomerOut], 404),
)
async def get_customer(customer: CustomerDep) -> Any:
    return {"data": service.customer_json(customer)}


@router.put(
    CUSTOMER_PATH,
    summary="Update a customer (write, or that customer's own token)",
    description=UPDATE_DESCRIPTION,
    responses=answers(Document[CustomerOut], 404, 409, 413),
)
async def update_customer(
    request: Request,
    body: Body[CustomerUpdate],
    session: SessionDep,
    caller: ReadCaller,
    customer: CustomerDep,
    hasher: HasherDep,
) -> Any:
    data = body.data
    if not caller.is_backend:
        if data.changes_credentials(customer):
            raise CredentialChangeRefusedError()
        if data.email_verified is not None:
            raise InsufficientScopeError(WRITE)
    revocation = await update_customer_service(
        session, hasher=hasher, customer=customer, data=data, actor=caller.token.client_id
    )
    if revocation is not None:
        apply_revocation(request, revocation, counted_as="customer")
    return {"data": service.customer_json(customer)}
