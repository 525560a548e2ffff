"""Keyhouse's refusals become typed errors carrying the contract's fields."""

import httpx
import pytest

from app.oauth.clients import CreatedClient
from keyhouse_client import (
    InsufficientScopeError,
    InvalidClientError,
    InvalidCredentialsError,
    InvalidScopeError,
    KeyhouseAuth,
    KeyhouseError,
    NotFoundError,
    RateLimitedError,
    UnauthorizedClientError,
    UnexpectedResponseError,
    error_from_response,
    raise_for_error,
)

from ..conftest import LiveServer, MakeClient
from ..store.conftest import product_body
from .conftest import PRODUCTS, TOKEN_PATH, Recorder, backend_auth

UNKNOWN_PRODUCT = "/v2/products/00000000-0000-4000-8000-000000000000"


def test_a_wrong_secret_raises_invalid_client_with_the_contract_fields(
    live_server: LiveServer, http: httpx.Client, recorder: Recorder, backend: CreatedClient
) -> None:
    auth = KeyhouseAuth.client_credentials(
        live_server.url, client_id=backend.client.id, client_secret="wrong"
    )
    with pytest.raises(InvalidClientError) as raised:
        http.get(PRODUCTS, auth=auth)
    error = raised.value
    assert (error.status, error.error) == (401, "invalid_client")
    assert error.error_description == "Client authentication failed."
    assert [(e.status, e.title, e.detail) for e in error.errors] == [
        (401, "invalid_client", "Client authentication failed.")
    ]
    assert error.retry_after is None and error.request_id
    assert str(error) == "401 invalid_client: Client authentication failed."
    assert recorder.paths() == [TOKEN_PATH]  # the API request was never sent
    assert auth.token is None


async def test_unknown_client_id_raises_invalid_client(
    live_server: LiveServer, ahttp: httpx.AsyncClient
) -> None:
    auth = KeyhouseAuth.implicit(live_server.url, client_id="no-such-client")
    with pytest.raises(InvalidClientError):
        await ahttp.get(PRODUCTS, auth=auth)


def test_more_scope_than_allowed_raises_invalid_scope(
    live_server: LiveServer, http: httpx.Client, storefront: CreatedClient
) -> None:
    auth = KeyhouseAuth.implicit(live_server.url, client_id=storefront.client.id, scope="write")
    with pytest.raises(InvalidScopeError) as raised:
        http.get(PRODUCTS, auth=auth)
    assert (raised.value.status, raised.value.error) == (400, "invalid_scope")


@pytest.fixture
async def backend_only(make_client: MakeClient) -> CreatedClient:
    return await make_client(name="backend only", grant_types=["client_credentials"])


def test_a_grant_the_client_may_not_use_raises_unauthorized_client(
    live_server: LiveServer, http: httpx.Client, backend_only: CreatedClient
) -> None:
    auth = KeyhouseAuth.implicit(live_server.url, client_id=backend_only.client.id)
    with pytest.raises(UnauthorizedClientError):
        http.get(PRODUCTS, auth=auth)


@pytest.mark.settings(token_rate_limit_per_address="2/minute")
def test_a_rate_limited_token_request_raises_with_retry_after(
    live_server: LiveServer, http: httpx.Client, storefront: CreatedClient
) -> None:
    for _ in range(2):  # two clients' first tokens, from one address
        auth = KeyhouseAuth.implicit(live_server.url, client_id=storefront.client.id)
        assert http.get(PRODUCTS, auth=auth).status_code == 200
    auth = KeyhouseAuth.implicit(live_server.url, client_id=storefront.client.id)
    with pytest.raises(RateLimitedError) as raised:
        http.get(PRODUCTS, auth=auth)
    error = raised.value
    assert (error.status, error.error) == (429, "slow_down")
    assert error.retry_after is not None and 0 < error.retry_after <= 60


@pytest.mark.settings(login_rate_limit_per_address="1/minute")
def test_a_rate_limited_login_raises_with_retry_after(
    live_server: LiveServer, http: httpx.Client, storefront: CreatedClient
) -> None:
    """The JSON:API body of `/v2`: no OAuth `error`, the description from `errors`."""
    auth = KeyhouseAuth.implicit(live_server.url, client_id=storefront.client.id)
    for expected in (InvalidCredentialsError, RateLimitedError):  # wrong, then refused
        with pytest.raises(expected) as raised:
            auth.log_in(http, email="nobody@example.com", password="whatever")
    error = raised.value
    assert error.status == 429 and error.error is None and error.retry_after
    assert error.error_description == error.errors[0].detail
    assert error.errors[0].title == "Too Many Requests"


def test_raise_for_error_on_store_routes(
    live_server: LiveServer, http: httpx.Client, storefront: CreatedClient
) -> None:
    auth = KeyhouseAuth.implicit(live_server.url, client_id=storefront.client.id)
    assert raise_for_error(http.get(PRODUCTS, auth=auth)).json()["data"] == []
    with pytest.raises(InsufficientScopeError) as raised:
        raise_for_error(http.post(PRODUCTS, json=product_body(), auth=auth))
    assert (raised.value.status, raised.value.error) == (403, "insufficient_scope")
    assert raised.value.error_description == "This request needs the 'write' scope."
    with pytest.raises(NotFoundError):
        raise_for_error(http.get(UNKNOWN_PRODUCT, auth=auth))


async def test_async_responses_are_read_before_raising(
    live_server: LiveServer, ahttp: httpx.AsyncClient, backend: CreatedClient
) -> None:
    auth = backend_auth(live_server, backend)
    with pytest.raises(NotFoundError):
        raise_for_error(await ahttp.get(UNKNOWN_PRODUCT, auth=auth))


def test_a_body_outside_the_contract_still_gives_an_error() -> None:
    response = httpx.Response(502, text="<html>Bad Gateway</html>", headers={"Retry-After": "7"})
    error = error_from_response(response)
    assert type(error) is KeyhouseError
    assert (error.status, error.error, error.errors, error.retry_after) == (502, None, (), 7)
    assert str(error) == "502 Bad Gateway"


def test_a_token_response_outside_the_contract_raises_unexpected_response() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="<html>captive portal</html>")

    auth = KeyhouseAuth.implicit("http://keyhouse.test", client_id="c")
    with (
        httpx.Client(transport=httpx.MockTransport(answer)) as http,
        pytest.raises(UnexpectedResponseError),
    ):
        http.get("http://keyhouse.test/v2/products", auth=auth)
