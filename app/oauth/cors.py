"""CORS for browser storefronts, keyed on the origins clients registered.

A preflight carries no client id, so it is answered for any origin that some enabled client
lists. The real request is held to its own client's origins by the route, which marks the
origin approved (`cors_origin_approved` in the request state); responses the route did not
vouch for (errors, public documents) are readable by any registered origin.
"""

from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.http.errors import ServiceUnavailableError, database_outage, render
from app.oauth.registry import ClientRegistry
from app.runtime.db import is_unavailable

ALLOWED_METHODS = "GET, POST, PUT, DELETE, OPTIONS"
# Simple headers plus the ones the commerce SDKs send (X-MOLTIN-SDK-*, customer token, …).
ALLOWED_HEADERS = frozenset(
    {
        "accept",
        "accept-language",
        "content-language",
        "content-type",
        "authorization",
        # An account member's token (app/accounts), as the SDKs send it.
        "ep-account-management-authentication-token",
    }
)
ALLOWED_HEADER_PREFIX = "x-moltin-"
PREFLIGHT_MAX_AGE = "600"
# Response headers a browser script may read besides the simple ones.
# The challenge tells a page why a 401 came (an expired token, or bad credentials).
EXPOSED_HEADERS = "X-Request-Id, WWW-Authenticate"
APPROVED_STATE_KEY = "cors_origin_approved"


def approve_origin(request: Request) -> None:
    """Marks the request's Origin as allowed by the client the route served."""
    request.scope.setdefault("state", {})[APPROVED_STATE_KEY] = True


def _origin_of(scope: Scope) -> str | None:
    # A plain scan of the raw list: most requests (servers, not browsers) send no Origin, and
    # this runs on every request.
    for name, value in scope["headers"]:
        if name == b"origin":
            return str(value.decode("latin-1"))
    return None


def _header_allowed(name: str) -> bool:
    return name in ALLOWED_HEADERS or name.startswith(ALLOWED_HEADER_PREFIX)


async def _is_registered(registry: ClientRegistry, origin: str) -> bool:
    """Whether a response may be read by this origin; not if the database is away and this
    worker has not read the origins yet (the response is sent anyway)."""
    try:
        return await registry.is_registered_origin(origin)
    except Exception as error:
        if not is_unavailable(error):
            raise
        return False


class ClientOriginCORSMiddleware:
    """Pure ASGI middleware (no BaseHTTPMiddleware: it would cost every request a task)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        origin = _origin_of(scope)
        if origin is None:
            # Publicly cacheable answers carry `Vary: Origin` themselves (see PUBLIC_CACHE in
            # the router); token responses are `no-store`. So nothing to add here.
            await self.app(scope, receive, send)
            return
        registry: ClientRegistry = scope["app"].state.clients
        headers = Headers(scope=scope)
        if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
            try:
                response = await self._preflight(registry, origin, headers)
            except Exception as error:  # outside FastAPI's exception handlers
                if not database_outage(error, method="OPTIONS", path=scope["path"]):
                    raise
                response = render(ServiceUnavailableError())
            await response(scope, receive, send)
            return
        state = scope.setdefault("state", {})

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                response_headers = MutableHeaders(scope=message)
                if "origin" not in response_headers.get("vary", "").lower():
                    response_headers.add_vary_header("Origin")
                approved = state.get(APPROVED_STATE_KEY)
                if approved is None:
                    approved = await _is_registered(registry, origin)
                if approved:
                    response_headers["Access-Control-Allow-Origin"] = origin
                    response_headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
            await send(message)

        await self.app(scope, receive, send_with_cors)

    async def _preflight(self, registry: ClientRegistry, origin: str, headers: Headers) -> Response:
        requested = [
            name.strip().lower()
            for name in headers.get("access-control-request-headers", "").split(",")
            if name.strip()
        ]
        vary = {"Vary": "Origin"}
        if not await registry.is_registered_origin(origin):
            return Response(status_code=403, headers=vary)
        allowed = [name for name in requested if _header_allowed(name)]
        return Response(
            status_code=204,
            headers={
                **vary,
                "Access-Control-Allow-Origin": origin,
                "Access-Control-Allow-Methods": ALLOWED_METHODS,
                "Access-Control-Allow-Headers": ", ".join(allowed),
                "Access-Control-Max-Age": PREFLIGHT_MAX_AGE,
            },
        )
