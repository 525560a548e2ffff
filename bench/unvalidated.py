"""Keyhouse with bearer validation bypassed: the reference of the `protected` scenario.

The app is Keyhouse's own, from `create_app()`, with two changes. For the routes FastAPI
serves, one declared the public way: `app.dependency_overrides[_current_caller]` returns a
fixed `Caller`. That is the level that works: the scope check behind `ReadCaller` and
`WriteCaller` depends on `_current_caller`. The store's busiest reads are served ahead of
FastAPI by `StoreReads` (app/store/reads.py), which checks the caller itself: its middleware
entry is given the same fixed caller, behind the same scope check. What is bypassed is
everything `_current_caller` does per request: reading the Authorization and customer-token
headers, finding the `Caller` remembered for them and asking whether its tokens have expired or
been revoked since (or, the first time, splitting the headers, verifying the JWTs and building
the `Caller`). The scope check still runs (a set lookup), on the
routes FastAPI serves with the `HTTPBearer` and `APIKeyHeader` dependencies beside it that
document the schemes (two header lookups).

The fixed `Caller` is built at startup from a real token, `BENCH_ACCESS_TOKEN`, and, if set,
a shopper's customer token, `BENCH_CUSTOMER_TOKEN`, both verified by the app's own
`TokenVerifier`, so it names the same store, scopes and shopper as the requests sent to
Keyhouse. `KEYHOUSE_ISSUER` must be the issuer of those tokens (Keyhouse's address). With
`BENCH_ACCOUNT_TOKEN` too, an account member's account token, a second fixed `Caller` (the
access token and that account) answers the `GET /v2/orders` that carry an account token
header: the one read the bench sends with one, and the only one that looks for the header.

`BENCH_BYPASS` says how the override is applied:

- `resolved` (default): once, at startup. With any entry in `dependency_overrides`, FastAPI
  re-derives every sub-dependency of every request from its signature (`get_dependant` in
  `solve_dependencies`), overridden or not: about 0.3 ms per `GET /v2/products/{id}` with this
  FastAPI, a cost Keyhouse does not pay and which would be billed to "no validation". So the
  same substitution FastAPI would make per request is made once in the routes' dependency
  trees (building the per-inclusion route copies FastAPI otherwise builds on first request),
  and the override table is emptied. This touches FastAPI internals; if it ever stops taking
  effect, `_current_caller` runs again and a request with no Authorization header gets 401,
  which `bench/run.py` checks before measuring.
- `per-request`: left in `dependency_overrides`, as tests do; for measuring that cost.

    BENCH_ACCESS_TOKEN=... KEYHOUSE_ISSUER=http://127.0.0.1:8000 KEYHOUSE_DATA_DIR=... \\
        .venv/bin/python -m uvicorn bench.unvalidated:create_unvalidated_app --factory
"""

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.dependencies.models import Dependant, _get_oauth_scopes
from fastapi.dependencies.utils import get_dependant
from starlette.middleware import Middleware

from app.http.security import ACCOUNT_TOKEN_HEADER, Caller, _current_caller, require_scopes
from app.main import create_app
from app.oauth.scopes import READ
from app.oauth.verification import TokenVerifier
from app.store.reads import ORDERS_PATH, StoreReads

BYPASS_MODES = ("resolved", "per-request")
ACCOUNT_HEADER = ACCOUNT_TOKEN_HEADER.lower().encode("latin-1")  # as ASGI gives header names


def _served_dependants(app: FastAPI) -> list[Dependant]:
    """The root dependant of every route, as requests will be served.

    Routes included from an `APIRouter` are served from per-inclusion copies that FastAPI
    builds on first match (`effective_candidates()`); asking for them builds them now.
    """
    found: list[Dependant] = []
    pending: list[Any] = list(app.router.routes)
    while pending:
        route = pending.pop()
        candidates = getattr(route, "effective_candidates", None)
        if callable(candidates):
            pending.extend(candidates())
            low_priority = getattr(route, "effective_low_priority_routes", None)
            if callable(low_priority):
                pending.extend(low_priority())
            continue
        dependant = getattr(route, "dependant", None)
        if isinstance(dependant, Dependant):
            found.append(dependant)
    return found


def _substitute(dependant: Dependant, overrides: dict[Any, Callable[..., Any]]) -> int:
    """Replaces overridden sub-dependencies as `solve_dependencies` does per request."""
    replaced = 0
    for index, sub in enumerate(dependant.dependencies):
        override = next((new for old, new in overrides.items() if old is sub.call), None)
        if override is not None:
            sub = get_dependant(
                path=sub.path or "",
                call=override,
                name=sub.name,
                parent_oauth_scopes=_get_oauth_scopes(dependant=sub),
                scope=sub.scope,
                concurrency=sub.concurrency,
            )
            dependant.dependencies[index] = sub
            replaced += 1
        replaced += _substitute(sub, overrides)
    return replaced


def resolve_overrides(app: FastAPI) -> int:
    """Applies `app.dependency_overrides` to the routes once and empties it; how many
    dependencies were replaced."""
    overrides = dict(app.dependency_overrides)
    replaced = sum(_substitute(root, overrides) for root in _served_dependants(app))
    app.dependency_overrides.clear()
    return replaced


def bypass_store_reads(app: FastAPI, caller_of: Callable[[Request], Awaitable[Caller]]) -> None:
    """The store's busiest reads are served ahead of FastAPI (app/store/reads.py), with their
    own caller check: `StoreReads` is given `caller_of` instead, before the app builds its
    middleware (on startup)."""
    for index, middleware in enumerate(app.user_middleware):
        if middleware.cls is StoreReads:
            app.user_middleware[index] = Middleware(StoreReads, caller_of=caller_of)
            return
    raise RuntimeError("the app has no StoreReads layer; nothing was bypassed")


def create_unvalidated_app() -> FastAPI:
    token = os.environ.get("BENCH_ACCESS_TOKEN", "")
    customer_token = os.environ.get("BENCH_CUSTOMER_TOKEN", "")
    account_token = os.environ.get("BENCH_ACCOUNT_TOKEN", "")
    mode = os.environ.get("BENCH_BYPASS", "resolved")
    if not token:
        raise RuntimeError("BENCH_ACCESS_TOKEN (a valid access token) is required")
    if mode not in BYPASS_MODES:
        raise RuntimeError(f"BENCH_BYPASS must be one of {BYPASS_MODES}, not {mode!r}")
    app = create_app()
    fixed: list[Caller] = []  # the caller, then the account's caller if there is one

    async def fixed_caller() -> Caller:
        return fixed[0]

    async def fixed_read_caller(request: Request) -> Caller:
        caller = fixed[0]
        scope = request.scope
        if (
            len(fixed) > 1
            and scope["path"] == ORDERS_PATH
            and any(name == ACCOUNT_HEADER for name, _ in scope["headers"])
        ):
            caller = fixed[1]
        return require_scopes(caller, (READ,))  # the scope check still runs

    app.dependency_overrides[_current_caller] = fixed_caller
    if mode == "resolved" and resolve_overrides(app) == 0:
        raise RuntimeError("no route depends on _current_caller; nothing was bypassed")
    bypass_store_reads(app, fixed_read_caller)

    keyhouse_lifespan = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(served: FastAPI) -> AsyncIterator[Any]:
        async with keyhouse_lifespan(served) as state:
            verifier: TokenVerifier = served.state.token_verifier
            access = await verifier.access_token(token)
            customer = await verifier.customer_token(customer_token) if customer_token else None
            fixed.append(Caller(token=access, customer=customer))
            if account_token:
                account = await verifier.account_token(account_token)
                fixed.append(Caller(token=access, customer=None, account=account))
            yield state

    app.router.lifespan_context = lifespan
    return app
