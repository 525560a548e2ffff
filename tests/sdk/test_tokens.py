"""The client gets a token on first use, reuses it, and renews it shortly before it ends."""

import base64
from urllib.parse import parse_qs

import httpx
import jwt

from app.oauth.clients import CreatedClient
from keyhouse_client import AccessToken, KeyhouseAuth
from keyhouse_client.tokens import renewal_margin

from ..conftest import LiveServer
from .conftest import PRODUCTS, TOKEN_PATH, Clock, Recorder, backend_auth


def test_the_margin_is_a_minute_but_at_most_half_the_lifetime() -> None:
    assert renewal_margin(3600) == 60
    assert renewal_margin(120) == 60
    assert renewal_margin(2) == 1


def test_the_deadline_comes_from_expires_in_on_the_local_clock() -> None:
    """`expires` is on the server's clock: a client clock an hour off must not matter."""
    body = {"access_token": "t", "expires": 1, "expires_in": 3600, "scope": "read"}
    response = httpx.Response(200, json=body)
    token = AccessToken.from_response(response, received_at=1000.0)
    assert token.renew_at == 1000 + 3600 - 60
    assert not token.due(4539.9) and token.due(4540)
    assert "access_token='t'" not in repr(token)  # tokens stay out of logs


def test_client_credentials_on_first_use_with_basic_authentication(
    live_server: LiveServer, http: httpx.Client, recorder: Recorder, backend: CreatedClient
) -> None:
    auth = backend_auth(live_server, backend)
    assert auth.token is None
    assert http.get(PRODUCTS, auth=auth).status_code == 200
    assert http.get(PRODUCTS, auth=auth).status_code == 200
    assert recorder.paths() == [TOKEN_PATH, PRODUCTS, PRODUCTS]
    token_request = recorder.sent[0].request
    assert parse_qs(token_request.content.decode()) == {"grant_type": ["client_credentials"]}
    basic = base64.b64decode(token_request.headers["authorization"].removeprefix("Basic "))
    assert basic.decode() == f"{backend.client.id}:{backend.client_secret}"
    assert auth.token is not None
    assert auth.token.identifier == "client_credentials" and auth.token.scope == "read write"
    assert recorder.sent_tokens() == [auth.token.access_token] * 2
    claims = jwt.decode(auth.token.access_token, options={"verify_signature": False})
    assert claims["client_id"] == backend.client.id


async def test_implicit_on_first_use_with_the_client_id_alone(
    live_server: LiveServer, ahttp: httpx.AsyncClient, recorder: Recorder, storefront: CreatedClient
) -> None:
    auth = KeyhouseAuth.implicit(live_server.url, client_id=storefront.client.id)
    for _ in range(3):
        assert (await ahttp.get(PRODUCTS, auth=auth)).status_code == 200
    assert recorder.token_requests() == 1
    form = parse_qs(recorder.sent[0].request.content.decode())
    assert form == {"grant_type": ["implicit"], "client_id": [storefront.client.id]}
    assert "authorization" not in recorder.sent[0].headers
    assert auth.token is not None and auth.token.identifier == "implicit"
    assert auth.token.scope == "read"


def test_a_narrowed_scope_is_asked_for(
    live_server: LiveServer, http: httpx.Client, backend: CreatedClient
) -> None:
    auth = backend_auth(live_server, backend, scope="read")
    assert http.get(PRODUCTS, auth=auth).status_code == 200
    assert auth.token is not None and auth.token.scope == "read"


def assert_renewed_once(recorder: Recorder, auth: KeyhouseAuth, first: AccessToken) -> None:
    """Every request was answered 200 the first time: renewed before Keyhouse refused it."""
    assert recorder.paths() == [TOKEN_PATH, PRODUCTS, PRODUCTS, TOKEN_PATH, PRODUCTS]
    assert auth.token is not None and auth.token.access_token != first.access_token


# The client's clock is moved by hand, so the renewal is judged at its exact moment (a minute
# before the hour-long token ends) whatever the machine's load; the server still checks each
# token it is sent.
def test_renewed_shortly_before_it_ends(
    live_server: LiveServer, http: httpx.Client, recorder: Recorder, backend: CreatedClient
) -> None:
    clock = Clock()
    auth = backend_auth(live_server, backend, clock=clock)
    assert http.get(PRODUCTS, auth=auth).status_code == 200
    first = auth.token
    assert first is not None and first.expires_in == 3600
    clock.now += 3600 - 60 - 0.001
    assert http.get(PRODUCTS, auth=auth).status_code == 200
    clock.now += 0.001
    assert http.get(PRODUCTS, auth=auth).status_code == 200
    assert_renewed_once(recorder, auth, first)


async def test_async_renewed_shortly_before_it_ends(
    live_server: LiveServer, ahttp: httpx.AsyncClient, recorder: Recorder, backend: CreatedClient
) -> None:
    clock = Clock()
    auth = backend_auth(live_server, backend, clock=clock)
    assert (await ahttp.get(PRODUCTS, auth=auth)).status_code == 200
    first = auth.token
    assert first is not None and first.expires_in == 3600
    clock.now += 3600 - 60 - 0.001
    assert (await ahttp.get(PRODUCTS, auth=auth)).status_code == 200
    clock.now += 0.001
    assert (await ahttp.get(PRODUCTS, auth=auth)).status_code == 200
    assert_renewed_once(recorder, auth, first)
