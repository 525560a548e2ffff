"""Concurrent requests that all need a token cause one token request, not one each.

The JavaScript SDKs fetch one token per concurrent call that finds none; the Python client
holds a lock while it renews, so the others wait and reuse the new token. The same goes for a
burst of 401s for one revoked token: one renewal, and every request retried once with it.
"""

import asyncio
import contextlib
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from app.oauth.clients import CreatedClient
from keyhouse_client import KeyhouseAuth

from ..conftest import LiveServer
from .conftest import PRODUCTS, TOKEN_PATH, Recorder, backend_auth, revoke_current_token

CONCURRENT = 16


def _get_all_at_once(http: httpx.Client, auth: httpx.Auth) -> list[int]:
    """CONCURRENT threads, released together by a barrier, each sending one request."""
    barrier = threading.Barrier(CONCURRENT, timeout=10)

    def get(_: int) -> int:
        barrier.wait()
        return http.get(PRODUCTS, auth=auth).status_code

    with ThreadPoolExecutor(CONCURRENT) as pool:
        return list(pool.map(get, range(CONCURRENT)))


async def _agather(ahttp: httpx.AsyncClient, auth: httpx.Auth) -> list[int]:
    responses = await asyncio.gather(*(ahttp.get(PRODUCTS, auth=auth) for _ in range(CONCURRENT)))
    return [response.status_code for response in responses]


def test_threads_share_one_token_request(
    live_server: LiveServer, http: httpx.Client, recorder: Recorder, backend: CreatedClient
) -> None:
    auth = backend_auth(live_server, backend)
    assert _get_all_at_once(http, auth) == [200] * CONCURRENT
    assert recorder.token_requests() == 1
    assert auth.token is not None
    assert set(recorder.sent_tokens()) == {auth.token.access_token}


async def test_tasks_share_one_token_request(
    live_server: LiveServer, ahttp: httpx.AsyncClient, recorder: Recorder, backend: CreatedClient
) -> None:
    auth = backend_auth(live_server, backend)
    assert await _agather(ahttp, auth) == [200] * CONCURRENT
    assert recorder.token_requests() == 1


def test_threads_refused_together_renew_once(
    live_server: LiveServer, http: httpx.Client, recorder: Recorder, backend: CreatedClient
) -> None:
    auth = backend_auth(live_server, backend)
    assert http.get(PRODUCTS, auth=auth).status_code == 200
    revoked = revoke_current_token(live_server, backend, auth)
    assert _get_all_at_once(http, auth) == [200] * CONCURRENT
    assert recorder.token_requests() == 2
    sent = recorder.sent_tokens()
    assert auth.token.access_token != revoked
    # Each thread ends on the one renewed token; those that started before the renewal sent
    # the revoked one first (all of them, most times: the barrier releases them together).
    assert sent.count(auth.token.access_token) == CONCURRENT
    assert 2 <= sent.count(revoked) <= 1 + CONCURRENT
    assert len(sent) == sent.count(revoked) + CONCURRENT


async def test_tasks_refused_together_renew_once(
    live_server: LiveServer, ahttp: httpx.AsyncClient, recorder: Recorder, backend: CreatedClient
) -> None:
    auth = backend_auth(live_server, backend)
    assert (await ahttp.get(PRODUCTS, auth=auth)).status_code == 200
    revoke_current_token(live_server, backend, auth)
    assert await _agather(ahttp, auth) == [200] * CONCURRENT
    assert recorder.token_requests() == 2


def _flaky_token_endpoint(recorder: Recorder) -> httpx.MockTransport:
    """The first token request fails on the network; everything after it works."""

    def answer(request: httpx.Request) -> httpx.Response:
        recorder.record(request)
        if request.url.path == TOKEN_PATH and recorder.token_requests() == 1:
            raise httpx.ConnectError("connection refused", request=request)
        if request.url.path == TOKEN_PATH:
            return httpx.Response(200, json={"access_token": "t", "expires": 0, "expires_in": 60})
        return httpx.Response(200, json={"data": []})

    return httpx.MockTransport(answer)


def test_a_failed_token_request_releases_the_lock(recorder: Recorder) -> None:
    """The lock is held across the token request: an error there must not leave it held."""
    auth = KeyhouseAuth.implicit("http://keyhouse.test", client_id="c")
    results: list[int] = []
    with httpx.Client(transport=_flaky_token_endpoint(recorder)) as http:

        def two_requests() -> None:
            with contextlib.suppress(httpx.ConnectError):
                http.get(f"http://keyhouse.test{PRODUCTS}", auth=auth)
            results.append(http.get(f"http://keyhouse.test{PRODUCTS}", auth=auth).status_code)

        worker = threading.Thread(target=two_requests, daemon=True)
        worker.start()
        worker.join(timeout=10)
    assert results == [200]


async def test_async_a_failed_token_request_releases_the_lock(recorder: Recorder) -> None:
    auth = KeyhouseAuth.implicit("http://keyhouse.test", client_id="c")
    async with httpx.AsyncClient(transport=_flaky_token_endpoint(recorder)) as http:
        with pytest.raises(httpx.ConnectError):
            await http.get(f"http://keyhouse.test{PRODUCTS}", auth=auth)
        response = await asyncio.wait_for(
            http.get(f"http://keyhouse.test{PRODUCTS}", auth=auth), 10
        )
    assert response.status_code == 200
