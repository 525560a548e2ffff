"""A small OpenID provider of the tests' own, on a real socket, that can be told to misbehave.

It does what a provider does for Keyhouse's sign-in: discovery, keys, an authorization endpoint
that signs the chosen user in at once, a token endpoint that checks client authentication, the
redirect URI, single use and PKCE, and UserInfo. Its ID tokens are signed with a test key, and a
test may change their claims (a wrong `aud`, a wrong `nonce`), sign them with another key, or
change the discovery document, to see each of Keyhouse's checks refuse.
"""

import base64
import hashlib
import secrets
import threading
import time
from dataclasses import dataclass, field
from functools import cache
from typing import Any
from urllib.parse import parse_qsl, unquote_plus

import uvicorn
from joserfc import jwt
from joserfc.jwk import RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from ...conftest import free_port

CLIENT_ID = "keyhouse-at-fake"
CLIENT_SECRET = "fake provider secret: any text, even spaces"
KEY_ID = "fake-key-1"


@cache
def signing_key(kid: str = KEY_ID) -> RSAKey:
    """An RSA key per key id, generated once per run (2048 bits take a moment)."""
    return RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig", "alg": "RS256"})


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@dataclass
class User:
    sub: str
    email: str | None
    email_verified: Any = True
    name: str | None = "Ron Swanson"

    def claims(self) -> dict[str, Any]:
        profile = {"email": self.email, "email_verified": self.email_verified, "name": self.name}
        return {"sub": self.sub, **{k: v for k, v in profile.items() if v is not None}}


@dataclass
class Grant:
    redirect_uri: str
    nonce: str | None
    code_challenge: str | None
    user: User
    used: bool = False


@dataclass
class FakeProvider:
    """The provider's state, which tests read and change between requests."""

    issuer: str
    redirect_uri: str  # the one callback registered for Keyhouse
    user: User = field(default_factory=lambda: User("fake-sub-1", "ron@example.com"))
    id_token_changes: dict[str, Any] = field(default_factory=dict)
    signing_kid: str = KEY_ID  # the `kid` its ID tokens name
    forge_with: RSAKey | None = None  # a key to sign with instead of the kid's own
    published_kids: tuple[str, ...] = (KEY_ID,)
    discovery_changes: dict[str, Any] = field(default_factory=dict)
    claims_in_id_token: bool = True  # False: profile claims only from UserInfo
    token_status: int = 200  # another status to make the token endpoint fail
    grants: dict[str, Grant] = field(default_factory=dict)
    authorization_requests: list[dict[str, str]] = field(default_factory=list)
    token_requests: list[dict[str, Any]] = field(default_factory=list)
    access_tokens: dict[str, User] = field(default_factory=dict)

    def discovery(self) -> dict[str, Any]:
        document = {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "jwks_uri": f"{self.issuer}/jwks",
            "userinfo_endpoint": f"{self.issuer}/userinfo",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic"],
            "code_challenge_methods_supported": ["S256"],
            "authorization_response_iss_parameter_supported": True,
        }
        return {**document, **self.discovery_changes}

    def id_token(self, grant: Grant) -> str:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": CLIENT_ID,
            "iat": now,
            "exp": now + 300,
            "nonce": grant.nonce,
            **(grant.user.claims() if self.claims_in_id_token else {"sub": grant.user.sub}),
            **self.id_token_changes,
        }
        claims = {name: value for name, value in claims.items() if value is not None}
        header = {"alg": "RS256", "kid": self.signing_kid}
        return jwt.encode(header, claims, self.forge_with or signing_key(self.signing_kid))


def _client_authenticated(request: Request) -> bool:
    """RFC 6749 §2.3.1: HTTP Basic over the form-urlencoded id and secret."""
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme != "Basic":
        return False
    client_id, _, secret = base64.b64decode(encoded).decode().partition(":")
    return (unquote_plus(client_id), unquote_plus(secret)) == (CLIENT_ID, CLIENT_SECRET)


def provider_app(provider: FakeProvider) -> Starlette:
    async def discovery(_request: Request) -> Response:
        return JSONResponse(provider.discovery())

    async def jwks(_request: Request) -> Response:
        keys = [signing_key(kid).as_dict(private=False) for kid in provider.published_kids]
        return JSONResponse({"keys": keys})

    async def authorize(request: Request) -> Response:
        query = dict(request.query_params)
        provider.authorization_requests.append(query)
        if query.get("redirect_uri") != provider.redirect_uri:
            return Response("unregistered redirect_uri", status_code=400)
        code = secrets.token_urlsafe(16)
        provider.grants[code] = Grant(
            redirect_uri=query["redirect_uri"],
            nonce=query.get("nonce"),
            code_challenge=query.get("code_challenge"),
            user=provider.user,
        )
        answer = f"code={code}&state={query.get('state', '')}&iss={provider.issuer}"
        return RedirectResponse(f"{query['redirect_uri']}?{answer}", status_code=302)

    async def token(request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode()))
        provider.token_requests.append({"form": form, "headers": dict(request.headers)})
        if provider.token_status != 200:
            return JSONResponse({"error": "server_error"}, status_code=provider.token_status)
        if not _client_authenticated(request):
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        grant = provider.grants.get(str(form.get("code")))
        verifier = str(form.get("code_verifier", ""))
        if (
            grant is None
            or grant.used
            or grant.redirect_uri != form.get("redirect_uri")
            or grant.code_challenge != s256(verifier)
        ):
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        grant.used = True
        access_token = secrets.token_urlsafe(16)
        provider.access_tokens[access_token] = grant.user
        body = {"access_token": access_token, "token_type": "Bearer", "expires_in": 300}
        return JSONResponse({**body, "id_token": provider.id_token(grant)})

    async def userinfo(request: Request) -> Response:
        sent = request.headers.get("authorization", "").removeprefix("Bearer ")
        user = provider.access_tokens.get(sent)
        if user is None:
            return JSONResponse({"error": "invalid_token"}, status_code=401)
        return JSONResponse(user.claims())

    return Starlette(
        routes=[
            Route("/.well-known/openid-configuration", discovery),
            Route("/jwks", jwks),
            Route("/authorize", authorize),
            Route("/token", token, methods=["POST"]),
            Route("/userinfo", userinfo),
        ]
    )


class ThreadServer:
    """An ASGI app served by Uvicorn on a loopback port, in a thread."""

    def __init__(self, app: Any, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def start(self) -> None:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("fake provider did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
