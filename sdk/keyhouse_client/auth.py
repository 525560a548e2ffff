"""`KeyhouseAuth`: an `httpx.Auth` that gets, renews and sends Keyhouse access tokens.

Plugged into an `httpx.Client` or `httpx.AsyncClient`, it asks for a token on the first
request, reuses it, renews it shortly before it ends (see `tokens.renewal_margin`), and once
more when Keyhouse answers 401 `invalid_token` (revoked, or the client's clock is off), after
which the request is sent once again. Token requests go through the same client, as httpx's
own auth flows do, so they use its transport, proxies and timeouts.

Renewals are single-flight. The JavaScript SDKs send one token request per concurrent call
that finds no valid token, so a page that starts ten calls at once fetches ten tokens. Here the
first caller that needs a token fetches it while holding a lock (a `threading.Lock` for sync
clients, an `asyncio.Lock` per event loop for async ones); the others wait on the lock and then
find the new token. After a 401, a caller renews only if the refused token is still the current
one, so a burst of refusals of one token costs one renewal too.
"""

import asyncio
import threading
import time
import weakref
from collections.abc import AsyncGenerator, Generator

import httpx

from .errors import (
    InvalidCredentialsError,
    KeyhouseError,
    challenge_error,
    error_from_response,
    is_refused,
)
from .grants import TOKEN_PATH, ClientCredentialsGrant, Grant, ImplicitGrant
from .shoppers import LOGIN_PATH, ShopperAuth, login_body
from .tokens import AccessToken, Clock, CustomerToken

ATTEMPTS = 2  # the request, and once more with a renewed token after a 401


def _with_bearer(request: httpx.Request, token: str) -> httpx.Request:
    request.headers["Authorization"] = f"Bearer {token}"
    return request


def _replayable(request: httpx.Request) -> bool:
    """Whether the body can be sent twice: bytes, form and JSON bodies can; a generator or file
    stream was consumed by the first attempt."""
    try:
        request.content  # noqa: B018 (raises for a stream that was never read into memory)
    except httpx.RequestNotRead:
        return False
    return True


class KeyhouseAuth(httpx.Auth):
    """Bearer tokens of one Keyhouse client, for any number of httpx clients and threads."""

    def __init__(self, url: str | httpx.URL, grant: Grant, *, clock: Clock = time.monotonic):
        # A trailing slash makes the paths below relative to `url`, mount prefix included.
        self.url = httpx.URL(str(url).rstrip("/") + "/")
        self.grant = grant
        self._clock = clock
        self._token: AccessToken | None = None
        self._thread_lock = threading.Lock()
        self._loop_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )

    @classmethod
    def client_credentials(
        cls,
        url: str | httpx.URL,
        *,
        client_id: str,
        client_secret: str,
        scope: str | None = None,
        clock: Clock = time.monotonic,
    ) -> "KeyhouseAuth":
        """For a backend: its client id and secret; `scope` may narrow `read write`."""
        return cls(url, ClientCredentialsGrant(client_id, client_secret, scope), clock=clock)

    @classmethod
    def implicit(
        cls,
        url: str | httpx.URL,
        *,
        client_id: str,
        scope: str | None = None,
        clock: Clock = time.monotonic,
    ) -> "KeyhouseAuth":
        """For a storefront-like program: a client id alone, no secret."""
        return cls(url, ImplicitGrant(client_id, scope), clock=clock)

    @property
    def token(self) -> AccessToken | None:
        """The current access token, if one has been fetched."""
        return self._token

    def _usable(self, refused: str | None) -> str | None:
        """The current token, unless there is none, it is due for renewal, or it was refused."""
        token = self._token
        if token is None or token.due(self._clock()) or token.access_token == refused:
            return None
        return token.access_token

    def _forget(self, refused: str) -> None:
        if self._token is not None and self._token.access_token == refused:
            self._token = None

    def _token_request(self) -> httpx.Request:
        return self.grant.token_request(self.url.join(TOKEN_PATH.lstrip("/")))

    def _accept(self, response: httpx.Response) -> str:
        if response.status_code != 200:
            raise error_from_response(response)
        self._token = AccessToken.from_response(response, received_at=self._clock())
        return self._token.access_token

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        refused: str | None = None
        for _attempt in range(ATTEMPTS):
            token = self._usable(refused)
            if token is None:
                with self._thread_lock:
                    token = self._usable(refused)  # another thread may have renewed meanwhile
                    if token is None:
                        token_response = yield self._token_request()
                        token_response.read()
                        token = self._accept(token_response)
            response = yield _with_bearer(request, token)
            if not is_refused(response):
                return
            if not _replayable(request):
                self._forget(token)  # the 401 is the answer; the next request renews
                return
            refused = token

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        refused: str | None = None
        for _attempt in range(ATTEMPTS):
            token = self._usable(refused)
            if token is None:
                async with self._loop_lock():
                    token = self._usable(refused)  # another task may have renewed meanwhile
                    if token is None:
                        token_response = yield self._token_request()
                        await token_response.aread()
                        token = self._accept(token_response)
            response = yield _with_bearer(request, token)
            if not is_refused(response):
                return
            if not _replayable(request):
                self._forget(token)
                return
            refused = token

    def _loop_lock(self) -> asyncio.Lock:
        """The lock of the running event loop: an asyncio.Lock must not be shared by loops."""
        loop = asyncio.get_running_loop()
        lock = self._loop_locks.get(loop)
        if lock is None:
            lock = self._loop_locks[loop] = asyncio.Lock()
        return lock

    def log_in(self, http: httpx.Client, *, email: str, password: str) -> ShopperAuth:
        """Logs a shopper in (`POST /v2/customers/tokens`) and returns the auth to send their
        requests with. The password is used for this one request and kept nowhere."""
        response = http.post(self._login_url(), json=login_body(email, password), auth=self)
        return self._shopper(response)

    async def alog_in(self, http: httpx.AsyncClient, *, email: str, password: str) -> ShopperAuth:
        """`log_in` for an `httpx.AsyncClient`."""
        response = await http.post(self._login_url(), json=login_body(email, password), auth=self)
        return self._shopper(response)

    def _login_url(self) -> httpx.URL:
        return self.url.join(LOGIN_PATH.lstrip("/"))

    def _shopper(self, response: httpx.Response) -> ShopperAuth:
        if response.is_error:
            # A 401 with a bare challenge is the login's own refusal; with `invalid_token` it
            # was our bearer token, still refused after a renewal.
            wrong = response.status_code == 401 and challenge_error(response) is None
            kind: type[KeyhouseError] | None = InvalidCredentialsError if wrong else None
            raise error_from_response(response, error_class=kind)
        token = CustomerToken.from_response(response, received_at=self._clock())
        return ShopperAuth(self, token, clock=self._clock)
