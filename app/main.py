"""The ASGI application: `create_app()` wires settings, database, keys, routes and errors."""

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.telemetry import TelemetryConfig
from starlette.types import ASGIApp

from app.accounts.account_member_routes import router as account_members_router
from app.accounts.account_routes import router as accounts_router
from app.accounts.member_routes import router as realm_members_router
from app.accounts.profile_routes import router as password_profiles_router
from app.accounts.settings_routes import realm_router as authentication_realms_router
from app.accounts.settings_routes import router as account_settings_router
from app.accounts.tokens import AccountTokenIssuer
from app.customers.email_routes import router as email_router
from app.customers.lockout import LoginGuard
from app.customers.mail.shopper_mail import ShopperMail
from app.customers.oidc.link_routes import router as provider_links_router
from app.customers.oidc.listing import router as login_providers_router
from app.customers.oidc.router import router as provider_login_router
from app.customers.oidc.sign_in import open_provider_sign_in
from app.customers.password_routes import router as password_router
from app.customers.router import router as customers_router
from app.customers.tokens import CustomerTokenIssuer
from app.http.bodylimit import BodySizeLimit
from app.http.errors import drop_422, install_error_handlers
from app.http.security import RememberedCallers, document_security
from app.http.telemetry import RequestTelemetry
from app.oauth.authentication import ClientAuthenticator
from app.oauth.cors import ClientOriginCORSMiddleware
from app.oauth.endpoint import TokenEndpoint
from app.oauth.grants import GrantRegistry
from app.oauth.keys import KeyRing, ensure_signing_key
from app.oauth.registry import ClientRegistry
from app.oauth.revocation import RevocationList
from app.oauth.router import router as oauth_router
from app.oauth.secret_binding import bind_server_secret
from app.oauth.tokens import TokenIssuer
from app.oauth.verification import TokenVerifier
from app.observability.metrics import worker_stopped
from app.observability.monitoring import router as monitoring_router
from app.runtime.change_feed import ChangeFeed, change_source
from app.runtime.changes import redis_announcer
from app.runtime.db import Database
from app.runtime.passwords import ClientSecretHasher, PasswordHasher
from app.runtime.ratelimit import Counters, RateLimits
from app.runtime.settings import Settings, get_settings
from app.store.address_routes import router as address_router
from app.store.cart_routes import router as cart_router
from app.store.catalogue import Catalogue
from app.store.links import document_links, operation_id
from app.store.order_routes import router as order_router
from app.store.product_routes import router as product_router
from app.store.reads import StoreReads

ALL_TOPICS = frozenset({"revocation", "keys", "clients", "catalogue", "mail"})
NO_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}


class Keyhouse(FastAPI):
    """FastAPI with the request telemetry (id and metrics) outside all other layers, Starlette's
    500 handler included, so that every response carries `X-Request-Id`, every log line of a
    request its id, and the metrics count those 500s too."""

    def build_middleware_stack(self) -> ASGIApp:
        return RequestTelemetry(super().build_middleware_stack())


def finish_schema(app: FastAPI, *steps: Callable[[dict[str, Any]], None]) -> None:
    """`app.openapi`, with FastAPI's schema finished by `steps` (in place) the first time."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = generate()  # which FastAPI keeps in `app.openapi_schema`
        for step in steps:
            step(schema)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        database = Database(settings.database_url)
        try:
            async with database.sessions() as session:
                # A worker with another secret than its database's would serve only errors.
                server_keys = await bind_server_secret(session, settings)
                await ensure_signing_key(
                    session,
                    algorithm=settings.signing_algorithm,
                    encryption_key=server_keys.signing_key_encryption,
                )
        except BaseException:
            await database.dispose()
            raise
        clients = ClientRegistry(database, cache_seconds=settings.client_cache_seconds)
        keyring = KeyRing(database, encryption_key=server_keys.signing_key_encryption)
        await keyring.refresh()
        # On SQLite the polls share the one engine: a second one would hold the file open
        # beside it, and there is no ping to save.
        on_sqlite = settings.database_url.startswith("sqlite")
        polls = database if on_sqlite else Database(settings.database_url, background=True)
        revocations = RevocationList(
            database,
            poll_seconds=settings.revocation_poll_seconds,
            followers=[keyring.follow],
            reads=polls,
        )
        catalogue = Catalogue(database, cache_seconds=settings.catalogue_cache_seconds)
        announcer = redis_announcer(settings, database.sessions)

        def changed(topics: frozenset[str]) -> None:
            if "keys" in topics:
                keyring.changed()
            if "clients" in topics:
                clients.changed()
            if "catalogue" in topics:
                catalogue.changed()
            if topics & {"revocation", "keys"} or not topics:
                revocations.nudge()  # its poll carries the key ring's
            if "mail" in topics:
                shopper_mail.wake()

        source = change_source(settings)
        feed = None if source is None else ChangeFeed(source, changed, everything=ALL_TOPICS)
        if feed is not None:
            revocations.pushed_by(lambda: feed.connected, poll_seconds=settings.change_poll_seconds)
        await revocations.start()
        app.state.settings = settings
        app.state.database = database
        app.state.clients = clients
        app.state.keyring = keyring
        app.state.revocations = revocations
        app.state.change_feed = feed
        app.state.catalogue = catalogue
        authenticator = ClientAuthenticator(
            clients, ClientSecretHasher(server_keys.client_secret_hmac)
        )
        app.state.client_authenticator = authenticator
        app.state.grants = GrantRegistry(authenticator)
        app.state.token_issuer = TokenIssuer(
            keyring,
            issuer=settings.issuer,
            audience=settings.audience,
            default_ttl=settings.token_ttl,
        )
        app.state.token_verifier = TokenVerifier(
            keyring, revocations, issuer=settings.issuer, audience=settings.audience
        )
        app.state.callers = RememberedCallers(app.state.token_verifier)
        app.state.password_hasher = PasswordHasher(settings.password_hash_concurrency)
        app.state.customer_token_issuer = CustomerTokenIssuer(
            keyring,
            issuer=settings.issuer,
            audience=settings.audience,
            ttl=settings.customer_token_ttl,
        )
        app.state.account_token_issuer = AccountTokenIssuer(
            keyring, issuer=settings.issuer, audience=settings.audience
        )
        counters = Counters.from_settings(settings)
        app.state.rate_limits = RateLimits(counters, settings)
        app.state.login_guard = LoginGuard(counters, settings, key=server_keys.login_attempt_hmac)
        app.state.provider_sign_in = open_provider_sign_in(
            settings, server_keys, hasher=app.state.password_hasher
        )
        shopper_mail = ShopperMail.from_settings(
            settings,
            database=database,
            counters=counters,
            key=server_keys.password_reset_token_hmac,
        )
        app.state.shopper_mail = shopper_mail
        if feed is not None:
            shopper_mail.pushed_by(lambda: feed.connected)
        await shopper_mail.start()
        if feed is not None:  # last: what it calls on a change is all in place
            await feed.start()
        try:
            yield
        finally:
            await shopper_mail.stop()
            await app.state.provider_sign_in.close()
            if feed is not None:
                await feed.stop()
            await revocations.stop()
            if announcer is not None:
                await announcer.close()
            await counters.close()
            app.state.password_hasher.close()
            if polls is not database:
                await polls.dispose()
            await database.dispose()
            worker_stopped()

    app = Keyhouse(
        title="Keyhouse",
        summary="Tokens for storefronts, backends and shoppers.",
        version="0.1.0",
        lifespan=lifespan,
        generate_unique_id_function=operation_id,
        # FastAPI's native OpenTelemetry hooks ask the global providers on every request
        # whether they are configured; Keyhouse exports no OpenTelemetry unless asked to.
        telemetry=None if settings.opentelemetry else NO_TELEMETRY,
    )
    # Added last is outermost: CORS sees every response, the token endpoint's included. The
    # body limit is inside the token endpoint, which bounds its own bodies on its hot path;
    # the store's busiest reads are inside the limit, as the routes they stand in for.
    app.add_middleware(StoreReads)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_request_bytes)
    app.add_middleware(TokenEndpoint)
    app.add_middleware(ClientOriginCORSMiddleware)
    install_error_handlers(app)
    app.include_router(oauth_router)
    app.include_router(provider_login_router)
    app.include_router(customers_router)
    app.include_router(login_providers_router)
    app.include_router(provider_links_router)
    app.include_router(password_router)
    app.include_router(email_router)
    app.include_router(account_settings_router)
    app.include_router(authentication_realms_router)
    app.include_router(password_profiles_router)
    app.include_router(realm_members_router)
    app.include_router(account_members_router)
    app.include_router(accounts_router)
    app.include_router(address_router)
    app.include_router(product_router)
    app.include_router(cart_router)
    app.include_router(order_router)
    app.include_router(monitoring_router)
    finish_schema(app, drop_422, document_security, document_links)
    return app
