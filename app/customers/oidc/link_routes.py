"""`/v2/customers/{id}/provider-links`: a shopper links, lists and unlinks login providers.

- `POST`: the shopper's customer token and current password start a link; the answer is the
  provider's authorization URL to send the browser to. The sign-in ends at the storefront's
  redirect URI with a code, exchanged as any sign-in's (`POST /v2/customers/tokens`) for a
  fresh customer token: the link ended every earlier one.
- `GET`: the linked providers (the shopper's own token, or a backend).
- `DELETE …/{provider}`: unlinks one (the shopper's own token, or a backend).
"""

import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from app.customers.customers import Customer, InvalidCredentialsError, log_in_customer
from app.customers.oidc import links as service
from app.customers.oidc.documents import LINK_DESCRIPTION, LINK_UNAVAILABLE
from app.customers.oidc.failures import SignInError
from app.customers.oidc.links import (
    LoginProviderUnavailableError,
    ProviderLinkIn,
    ProviderLinkOut,
    ProviderLinkRequestOut,
    UnregisteredRedirectUriError,
)
from app.customers.oidc.providers import LoginProvider
from app.customers.oidc.router import TAG
from app.customers.oidc.sign_in import ProviderSignIn
from app.customers.password_routes import (
    NEEDS_CUSTOMER_TOKEN,
    customer_of_own_token,
)
from app.customers.router import CustomerDep, HasherDep, limit_logins
from app.http.errors import error_responses
from app.http.jsonapi import Body, Document, JsonApiRoute, answers
from app.http.security import Caller, ReadCaller
from app.oauth.registry import ClientRegistry
from app.oauth.revocation import apply_revocation
from app.runtime.db import SessionDep
from app.runtime.ratelimit import client_host

router = APIRouter(
    prefix="/v2/customers/{customer_id}/provider-links",
    tags=[TAG],
    responses=error_responses(400, 401, 403),
    route_class=JsonApiRoute,
)


@router.post(
    "",
    status_code=201,
    summary="Link a login provider to the shopper's account (their token and password)",
    description=LINK_DESCRIPTION,
    responses={
        **answers(Document[ProviderLinkRequestOut], 404, 409, 413, 429, status=201),
        **LINK_UNAVAILABLE,
    },
    openapi_extra=NEEDS_CUSTOMER_TOKEN,
)
async def start_provider_link(
    request: Request,
    customer_id: uuid.UUID,
    body: Body[ProviderLinkIn],
    session: SessionDep,
    caller: ReadCaller,
    hasher: HasherDep,
) -> JSONResponse:
    customer, _ = await customer_of_own_token(session, caller, customer_id)
    host = client_host(request.scope)
    await limit_logins(request, caller, host)
    link = body.data
    await _check_redirect_uri(request, caller, link.redirect_uri)
    provider = await service.provider_to_link(session, customer=customer, name=link.provider)
    checked = await log_in_customer(
        session,
        hasher=hasher,
        guard=request.app.state.login_guard,
        store_id=customer.store_id,
        email=customer.email,
        password=link.current_password,
        host=host,
    )
    if checked is None or checked.id != customer.id:
        raise InvalidCredentialsError()
    url = await _begin_link(request, session, caller, provider, link, checked)
    document = service.link_request_json(provider, url)
    return JSONResponse(document, status_code=201, headers={"Cache-Control": "no-store"})


async def _check_redirect_uri(request: Request, caller: Caller, redirect_uri: str) -> None:
    clients: ClientRegistry = request.app.state.clients
    client = await clients.find(caller.token.client_id)
    if client is None or redirect_uri not in client.redirect_uris:
        raise UnregisteredRedirectUriError()


async def _begin_link(
    request: Request,
    session: SessionDep,
    caller: Caller,
    provider: LoginProvider,
    link: ProviderLinkIn,
    customer: Customer,
) -> str:
    sign_in: ProviderSignIn = request.app.state.provider_sign_in
    try:
        return await sign_in.begin(
            session,
            provider=provider,
            client_id=caller.token.client_id,
            redirect_uri=link.redirect_uri,
            client_state=link.state,
            code_challenge=link.code_challenge,
            link_to=customer,  # in the epoch read with the password just checked
        )
    except SignInError as failure:
        raise LoginProviderUnavailableError() from failure


@router.get(
    "",
    summary="The login providers linked to a customer (write, or that customer's own token)",
    responses=answers(Document[list[ProviderLinkOut]], 404),
)
async def list_provider_links(session: SessionDep, customer: CustomerDep) -> Any:
    return {"data": await service.provider_links(session, customer_id=customer.id)}


@router.delete(
    "/{provider}",
    status_code=204,
    summary="Unlink a login provider from a customer (write, or that customer's own token)",
    responses=error_responses(404, 409),
)
async def unlink_provider(
    request: Request,
    provider: str,
    session: SessionDep,
    caller: ReadCaller,
    customer: CustomerDep,
) -> Response:
    """The provider's account no longer signs the customer in. Moves the customer's
    credential epoch: every customer token of theirs is refused but the one sent with this
    request, if it is theirs. A customer made by a sign-in has no password of their own; a
    password reset gives them one. Audit: `customer.provider_unlinked`."""
    shopper = caller.customer
    own_token = shopper.token_id if shopper and shopper.customer_id == customer.id else None
    revocation = await service.unlink_provider(
        session,
        customer=customer,
        name=provider,
        actor=caller.token.client_id,
        spared_token_id=own_token,
    )
    apply_revocation(request, revocation, counted_as="customer")
    return Response(status_code=204)
