"""The Python client against a live Keyhouse, through transports that record what it sent.

Every request of the client, token requests included, goes through the httpx client it is
plugged into, so wrapping that client's transport counts exactly what Keyhouse receives.
"""

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import httpx
import pytest

from app.oauth.clients import CreatedClient
from keyhouse_client import KeyhouseAuth

from ..conftest import LiveServer, MakeClient

TOKEN_PATH = "/oauth/access_token"
PRODUCTS = "/v2/products"


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass(frozen=True)
class Sent:
    """A request as it went out: a retried request is the same object with new headers."""

    request: httpx.Request
    path: str
    headers: httpx.Headers


@dataclass
class Recorder:
    """The requests a client sent (list.append is atomic, so threads may share one)."""

    sent: list[Sent] = field(default_factory=list)

    def record(self, request: httpx.Request) -> None:
        self.sent.append(Sent(request, request.url.path, request.headers.copy()))

    def paths(self) -> list[str]:
        return [sent.path for sent in self.sent]

    def token_requests(self) -> int:
        return self.paths().count(TOKEN_PATH)

    def sent_tokens(self) -> list[str]:
        """The bearer tokens of the API requests, in order."""
        return [
            sent.headers["authorization"].removeprefix("Bearer ")
            for sent in self.sent
            if sent.path != TOKEN_PATH
        ]


class RecordingTransport(httpx.HTTPTransport):
    def __init__(self, recorder: Recorder) -> None:
        super().__init__()
        self.recorder = recorder

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.recorder.record(request)
        return super().handle_request(request)


class AsyncRecordingTransport(httpx.AsyncHTTPTransport):
    def __init__(self, recorder: Recorder) -> None:
        super().__init__()
        self.recorder = recorder

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.recorder.record(request)
        return await super().handle_async_request(request)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def http(live_server: LiveServer, recorder: Recorder) -> Iterator[httpx.Client]:
    """A sync client of the live server, recording; tests pass `auth=` per request."""
    transport = RecordingTransport(recorder)
    with httpx.Client(base_url=live_server.url, transport=transport, timeout=10) as client:
        yield client


@pytest.fixture
async def ahttp(live_server: LiveServer, recorder: Recorder) -> AsyncIterator[httpx.AsyncClient]:
    """An async client of the live server, recording."""
    transport = AsyncRecordingTransport(recorder)
    async with httpx.AsyncClient(
        base_url=live_server.url, transport=transport, timeout=10
    ) as client:
        yield client


@pytest.fixture
async def backend(make_client: MakeClient) -> CreatedClient:
    return await make_client(name="backend")


@pytest.fixture
async def storefront(make_client: MakeClient) -> CreatedClient:
    return await make_client(name="storefront", public=True)


def backend_auth(server: LiveServer, client: CreatedClient, **options: object) -> KeyhouseAuth:
    assert client.client_secret is not None
    return KeyhouseAuth.client_credentials(
        server.url, client_id=client.client.id, client_secret=client.client_secret, **options
    )


def revoke(server: LiveServer, backend: CreatedClient, token: str) -> None:
    """Revokes `token` (RFC 7009) as the backend client; applied at once by this one worker."""
    assert backend.client_secret is not None
    response = httpx.post(
        f"{server.url}/oauth/revoke",
        data={"token": token},
        auth=(backend.client.id, backend.client_secret),
    )
    assert response.status_code == 200, response.text


def revoke_current_token(server: LiveServer, backend: CreatedClient, auth: KeyhouseAuth) -> str:
    """Revokes the token `auth` holds now (so its next use gets a 401) and returns it."""
    assert auth.token is not None
    revoked = auth.token.access_token
    revoke(server, backend, revoked)
    return revoked
