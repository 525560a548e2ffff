"""The token endpoint as a lean ASGI layer, ahead of FastAPI's routing.

The token endpoint is the busiest path and takes nothing from FastAPI: no dependencies and no
validation (it parses its own body, so that errors are RFC 6749 `invalid_request` and never
422). Measured with the benchmark in `bench/`, FastAPI's per-route layers cost more per request
than all the OAuth work, ES256 signature included. So this layer, installed inside the app's
middleware (CORS, and the server-error handler that renders anything unexpected as a 500),
serves `POST /oauth/access_token` and `/oauth/token` itself and hands every other request to
FastAPI. FastAPI still documents the endpoint (router.py).
"""

from starlette.requests import ClientDisconnect, Request
from starlette.types import ASGIApp, Receive, Scope, Send

from app.http.errors import KeyhouseError, client_gone, database_outage, render
from app.oauth.errors import TemporarilyUnavailableError
from app.oauth.router import TOKEN_PATHS, token_response_body, token_response_start


class TokenEndpoint:
    """ASGI middleware that answers token requests and passes everything else on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        is_token_request = (
            scope["type"] == "http" and scope["method"] == "POST" and scope["path"] in TOKEN_PATHS
        )
        if not is_token_request:
            await self.app(scope, receive, send)  # other methods get FastAPI's 405
            return
        try:
            body = await token_response_body(Request(scope, receive))
        except KeyhouseError as error:
            await render(error)(scope, receive, send)
            return
        except ClientDisconnect:
            await client_gone("POST", scope["path"])(scope, receive, send)
            return
        except Exception as error:
            # No FastAPI exception handlers out here: a database that is away is answered
            # here, in the token endpoint's own error body; anything else is a bug (500).
            if not database_outage(error, method="POST", path=scope["path"]):
                raise
            await render(TemporarilyUnavailableError())(scope, receive, send)
            return
        # The two messages Starlette's `Response` would send, without building one.
        await send(token_response_start(body))
        await send({"type": "http.response.body", "body": body})
