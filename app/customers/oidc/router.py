"""The routes of a provider sign-in: the browser's two stops.

`GET /oauth/customers/login/{provider}` and `GET /oauth/customers/login/callback` are visited by
the shopper's browser; they answer with redirects, or a page when the storefront cannot be told
(its redirect URI unknown or not registered for its client: redirecting then would make
Keyhouse an open redirector).
"""

import re
import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.datastructures import QueryParams

from app.customers.oidc.documents import (
    BROWSER_RESPONSES,
    CALLBACK_DESCRIPTION,
    CALLBACK_PARAMETERS,
    START_DESCRIPTION,
    START_PARAMETERS,
)
from app.customers.oidc.failures import SignInError, record_failure
from app.customers.oidc.logins import claim_return
from app.customers.oidc.pages import error_page, redirect, with_query
from app.customers.oidc.providers import LoginProvider, find_login_provider
from app.customers.oidc.sign_in import CALLBACK_PATH, ProviderAnswer, ProviderSignIn
from app.oauth.registry import ClientRegistry
from app.oauth.revocation import apply_revocation
from app.runtime.db import SessionDep
from app.runtime.ratelimit import RateLimits, address_key, client_host

TAG = "sign-in with a login provider"
LOGIN_PATH = "/oauth/customers/login"
CODE_CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}")  # the S256 of a verifier (RFC 7636 §4.2)
MAX_CLIENT_STATE = 500

INCOMPLETE = "The sign-in link is incomplete: it needs one client_id and one redirect_uri."
NOT_REGISTERED = (
    "This redirect URI is not registered for this client, or the client is unknown or "
    "disabled, so the shopper cannot be sent back to it."
)
NO_STATE = "The login provider's answer has no state: start again from the shop."
UNKNOWN_STATE = "This sign-in is unknown or too old: start again from the shop."
TOO_MANY = "Too many sign-in attempts from your address; try again in a minute."
REFUSED_RETURNS = {
    "used": "This sign-in has already been completed: start again from the shop.",
    "expired": "This sign-in took too long: start again from the shop.",
}

router = APIRouter(tags=[TAG])


class RepeatedParameterError(Exception):
    pass


def _one(query: QueryParams, name: str) -> str | None:
    """The parameter's value; None if absent or empty; repeated ones are refused (RFC 6749
    §3.1: parameters must not be included more than once)."""
    values = query.getlist(name)
    if len(values) > 1:
        raise RepeatedParameterError(name)
    return values[0] if values and values[0] else None


def _app_state(request: Request) -> Any:
    return request.app.state


async def _rate_limited(request: Request) -> Response | None:
    limits: RateLimits = _app_state(request).rate_limits
    wait = await limits.login_per_address.hit(address_key(client_host(request.scope)))
    return error_page(429, TOO_MANY, headers={"Retry-After": str(wait)}) if wait else None


def _redirect_error(redirect_uri: str, failure: SignInError, state: str | None) -> Response:
    parameters = {"error": failure.error, "error_description": failure.detail, "state": state}
    return redirect(with_query(redirect_uri, parameters))


# Registered before `/{provider}`, which would match `callback` too (no provider has that name).
@router.get(
    CALLBACK_PATH,
    summary="Where the login provider sends the shopper back (browser)",
    description=CALLBACK_DESCRIPTION,
    status_code=302,
    response_class=Response,
    responses=BROWSER_RESPONSES,
    openapi_extra={"parameters": CALLBACK_PARAMETERS},
)
async def finish_provider_login(request: Request, session: SessionDep) -> Response:
    limited = await _rate_limited(request)
    if limited is not None:
        return limited
    try:
        state = _one(request.query_params, "state")
    except RepeatedParameterError:
        state = None
    if state is None:
        return error_page(400, NO_STATE)
    claimed = await claim_return(session, state=state)
    if claimed is None:  # a well-formed answer to no sign-in of ours: nothing to go back to
        return error_page(404, UNKNOWN_STATE)
    login = claimed.login
    # Read now: recording a failure rolls the session back, which expires the row's fields.
    redirect_uri, client_state = login.redirect_uri, login.client_state
    address = client_host(request.scope)
    try:
        if claimed.refusal is not None:
            refusal = REFUSED_RETURNS[claimed.refusal]
            raise SignInError("invalid_request", refusal, f"state_{claimed.refusal}")
        finished = await _sign_in(request).finish(
            session, login=login, state=state, answer=_answer(request.query_params), address=address
        )
    except SignInError as failure:
        await record_failure(session, login, failure, address=address)
        return _redirect_error(redirect_uri, failure, client_state)
    if finished.revocation is not None:  # a link: the customer's earlier tokens end
        apply_revocation(request, finished.revocation, counted_as="customer")
    return redirect(with_query(redirect_uri, {"code": finished.code, "state": client_state}))


def _answer(query: QueryParams) -> ProviderAnswer:
    try:
        return ProviderAnswer(
            code=_one(query, "code"), error=_one(query, "error"), issuer=_one(query, "iss")
        )
    except RepeatedParameterError as error:
        raise SignInError(
            "invalid_request", "The provider's answer is malformed.", "malformed"
        ) from error


def _sign_in(request: Request) -> ProviderSignIn:
    sign_in: ProviderSignIn = _app_state(request).provider_sign_in
    return sign_in


@router.get(
    LOGIN_PATH + "/{provider}",
    summary="Send a shopper to sign in with a login provider (browser)",
    description=START_DESCRIPTION,
    status_code=302,
    response_class=Response,
    responses=BROWSER_RESPONSES,
    openapi_extra={"parameters": START_PARAMETERS},
)
async def start_provider_login(request: Request, provider: str, session: SessionDep) -> Response:
    limited = await _rate_limited(request)
    if limited is not None:
        return limited
    query = request.query_params
    try:
        client_id, redirect_uri = _one(query, "client_id"), _one(query, "redirect_uri")
    except RepeatedParameterError:
        return error_page(400, INCOMPLETE)
    if client_id is None or redirect_uri is None:
        return error_page(400, INCOMPLETE)
    clients: ClientRegistry = _app_state(request).clients
    client = await clients.find(client_id)
    if client is None or not client.enabled or redirect_uri not in client.redirect_uris:
        return error_page(404, NOT_REGISTERED)  # no such destination: a page, no redirect
    states = query.getlist("state")
    # Echoed back as it came (RFC 6749 §4.1.2), unless it is unfit to keep.
    client_state = states[0] if len(states) == 1 and _fit_state(states[0]) else None
    try:
        found = await _provider_to_use(session, query, store_id=client.store_id, name=provider)
        url = await _sign_in(request).begin(
            session,
            provider=found,
            client_id=client.client_id,
            redirect_uri=redirect_uri,
            client_state=client_state,
            code_challenge=str(query.get("code_challenge")),
        )
    except SignInError as failure:
        return _redirect_error(redirect_uri, failure, client_state)
    return redirect(url)


def _fit_state(state: str) -> bool:
    return len(state) <= MAX_CLIENT_STATE and state.isprintable()


async def _provider_to_use(
    session: SessionDep, query: QueryParams, *, store_id: uuid.UUID, name: str
) -> LoginProvider:
    """The provider to send the shopper to, once the rest of the request checks out."""
    challenge = query.get("code_challenge") or ""
    state = query.getlist("state")
    if query.get("code_challenge_method") != "S256" or not CODE_CHALLENGE.fullmatch(challenge):
        detail = "A code_challenge with code_challenge_method=S256 is required (RFC 7636)."
        raise SignInError("invalid_request", detail, "no_pkce")
    if len(state) > 1 or (state and not _fit_state(state[0])):
        detail = f"The state is one parameter of at most {MAX_CLIENT_STATE} printable characters."
        raise SignInError("invalid_request", detail, "bad_state")
    provider = await find_login_provider(session, store_id=store_id, name=name)
    if provider is None:
        detail = "This shop has no login provider of that name."
        raise SignInError("invalid_request", detail, "unknown_provider")
    return provider
