"""A 401 `invalid_token` makes the client renew its token once and send the request once more."""

import asyncio
import json
import time
from collections.abc import Iterator

import httpx
import pytest

from app.oauth.clients import CreatedClient, disable_client
from app.runtime.db import Database
from keyhouse_client import InvalidClientError, KeyhouseAuth

from ..conftest import LiveServer
from ..store.conftest import product_body
from .conftest import PRODUCTS, TOKEN_PATH, Recorder, backend_auth, revoke_current_token


def test_a_revoked_token_is_renewed_and_the_request_sent_again(
    live_server: LiveServer, http: httpx.Client, recorder: Recorder, backend: CreatedClient
) -> None:
    auth = backend_auth(live_server, backend)
    assert http.get(PRODUCTS, auth=auth).status_code == 200
    revoked = revoke_current_token(live_server, backend, auth)
    response = http.post(PRODUCTS, json=product_body(sku="AFTER-401"), auth=auth)
    assert response.status_code == 201, response.text
    assert recorder.paths() == [TOKEN_PATH, PRODUCTS, PRODUCTS, TOKEN_PATH, PRODUCTS]
    assert recorder.sent_tokens() == [revoked, revoked, auth.token.access_token]
    first, retried = recorder.sent[2].request, recorder.sent[4].request
    assert first is retried and json.loads(retried.content)["data"]["sku"] == "AFTER-401"
    assert [r.status_code for r in response.history] == [401, 200]  # httpx keeps the steps


async def test_async_a_revoked_token_is_renewed_and_the_request_sent_again(
    live_server: LiveServer, ahttp: httpx.AsyncClient, recorder: Recorder, backend: CreatedClient
) -> None:
    auth = backend_auth(live_server, backend)
    assert (await ahttp.get(PRODUCTS, auth=auth)).status_code == 200
    revoke_current_token(live_server, backend, auth)
    assert (await ahttp.get(PRODUCTS, auth=auth)).status_code == 200
    assert recorder.paths() == [TOKEN_PATH, PRODUCTS, PRODUCTS, TOKEN_PATH, PRODUCTS]


def test_a_streamed_body_is_not_sent_twice(
    live_server: LiveServer, http: httpx.Client, recorder: Recorder, backend: CreatedClient
) -> None:
    """A generator body is gone after the first attempt: the caller gets the 401, and the
    token is dropped so that the next request renews it."""
    auth = backend_auth(live_server, backend)
    assert http.get(PRODUCTS, auth=auth).status_code == 200
    revoke_current_token(live_server, backend, auth)

    def body() -> Iterator[bytes]:
        yield json.dumps(product_body(sku="STREAMED")).encode()

    headers = {"Content-Type": "application/json"}
    response = http.post(PRODUCTS, content=body(), headers=headers, auth=auth)
    assert response.status_code == 401
    assert auth.token is None
    assert http.get(PRODUCTS, auth=auth).status_code == 200
    assert recorder.paths() == [TOKEN_PATH, PRODUCTS, PRODUCTS, TOKEN_PATH, PRODUCTS]


def _always_refused(recorder: Recorder) -> httpx.MockTransport:
    """Tokens issued, and every API request refused: a token endpoint of another issuer."""

    def answer(request: httpx.Request) -> httpx.Response:
        recorder.record(request)
        if request.url.path == TOKEN_PATH:
            body = {"access_token": f"t{recorder.token_requests()}", "expires_in": 60}
            return httpx.Response(200, json={**body, "expires": int(time.time()) + 60})
        challenge = {"WWW-Authenticate": 'Bearer realm="keyhouse", error="invalid_token"'}
        return httpx.Response(401, json={"errors": []}, headers=challenge)

    return httpx.MockTransport(answer)


def test_the_retry_happens_once(recorder: Recorder) -> None:
    auth = KeyhouseAuth.implicit("http://keyhouse.test", client_id="c")
    with httpx.Client(transport=_always_refused(recorder)) as http:
        response = http.get("http://keyhouse.test/v2/products", auth=auth)
    assert response.status_code == 401
    assert recorder.paths() == [TOKEN_PATH, PRODUCTS, TOKEN_PATH, PRODUCTS]
    assert recorder.sent_tokens() == ["t1", "t2"]


@pytest.mark.settings(client_cache_seconds=0)
async def test_a_disabled_client_raises_invalid_client(
    live_server: LiveServer, ahttp: httpx.AsyncClient, database: Database, backend: CreatedClient
) -> None:
    """Its token is refused, the renewal is refused, and that refusal is the error raised."""
    auth = backend_auth(live_server, backend)
    assert (await ahttp.get(PRODUCTS, auth=auth)).status_code == 200
    async with database.sessions() as session:
        await disable_client(session, client_id=backend.client.id, issuing_lag_seconds=0)
    deadline = time.monotonic() + 5
    with pytest.raises(InvalidClientError) as raised:
        while time.monotonic() < deadline:  # the server's worker polls revocations
            assert (await ahttp.get(PRODUCTS, auth=auth)).status_code == 200
            await asyncio.sleep(0.1)
    assert raised.value.status == 401 and raised.value.error == "invalid_client"
