"""A shopper logs in through the client, whose customer token then goes beside the bearer."""

import uuid
from typing import Any

import httpx
import pytest

from app.oauth.clients import CreatedClient
from keyhouse_client import (
    InvalidCredentialsError,
    KeyhouseAuth,
    LoginRequiredError,
    ShopperAuth,
    raise_for_error,
)

from ..conftest import LiveServer
from ..store.conftest import ADDRESS, product_body
from .conftest import PRODUCTS, TOKEN_PATH, Clock, Recorder, backend_auth

LOGIN = "/v2/customers/tokens"
ORDERS = "/v2/orders"


def new_password() -> str:
    return f"pw-{uuid.uuid4().hex}"


def sign_up(http: httpx.Client, auth: httpx.Auth, email: str, password: str) -> str:
    body = {"data": {"type": "customer", "name": "Ron", "email": email, "password": password}}
    response = raise_for_error(http.post("/v2/customers", json=body, auth=auth))
    return str(response.json()["data"]["id"])


def new_email() -> str:
    return f"shopper-{uuid.uuid4().hex[:12]}@example.com"


@pytest.fixture
def storefront_auth(live_server: LiveServer, storefront: CreatedClient) -> KeyhouseAuth:
    return KeyhouseAuth.implicit(live_server.url, client_id=storefront.client.id)


@pytest.fixture
def product(live_server: LiveServer, http: httpx.Client, backend: CreatedClient) -> str:
    auth = backend_auth(live_server, backend)
    response = raise_for_error(http.post(PRODUCTS, json=product_body(sku="TEE"), auth=auth))
    return str(response.json()["data"]["id"])


def check_out(http: httpx.Client, shopper: ShopperAuth, product: str) -> dict[str, Any]:
    item = {"data": {"type": "cart_item", "id": product, "quantity": 1}}
    raise_for_error(http.post("/v2/carts/sdk-cart/items", json=item, auth=shopper))
    body = {"data": {"customer": {"id": shopper.customer_id}, "billing_address": ADDRESS}}
    body["data"]["shipping_address"] = ADDRESS
    order: dict[str, Any] = raise_for_error(
        http.post("/v2/carts/sdk-cart/checkout", json=body, auth=shopper)
    ).json()["data"]
    return order


def test_a_shopper_logs_in_and_sees_their_own_orders(
    http: httpx.Client, recorder: Recorder, storefront_auth: KeyhouseAuth, product: str
) -> None:
    email, password = new_email(), new_password()
    customer_id = sign_up(http, storefront_auth, email, password)
    shopper = storefront_auth.log_in(http, email=email, password=password)
    assert shopper.customer_id == customer_id
    assert shopper.customer_token.expires_in == 86_400
    order = check_out(http, shopper, product)
    orders = raise_for_error(http.get(ORDERS, auth=shopper)).json()["data"]
    assert [o["id"] for o in orders] == [order["id"]]
    profile = raise_for_error(http.get(f"/v2/customers/{customer_id}", auth=shopper))
    assert profile.json()["data"]["email"] == email
    # A storefront token alone may not read a customer: the customer token went beside it.
    assert http.get(f"/v2/customers/{customer_id}", auth=storefront_auth).status_code == 403
    assert storefront_auth.token is not None
    shopper_request = recorder.sent[-2].headers
    assert shopper_request["x-moltin-customer-token"] == shopper.customer_token.token
    assert shopper_request["authorization"] == f"Bearer {storefront_auth.token.access_token}"
    assert recorder.token_requests() == 2  # the backend's (for the product) and the storefront's
    login = next(sent for sent in recorder.sent if sent.path == LOGIN)
    assert "x-moltin-customer-token" not in login.headers
    # Nothing keeps the password (a weak check: Python cannot wipe a string).
    assert password not in repr(vars(shopper)) + repr(vars(storefront_auth))


async def asign_up(ahttp: httpx.AsyncClient, auth: httpx.Auth, email: str, password: str) -> str:
    body = {"data": {"type": "customer", "name": "Ron", "email": email, "password": password}}
    response = raise_for_error(await ahttp.post("/v2/customers", json=body, auth=auth))
    return str(response.json()["data"]["id"])


async def test_async_log_in(ahttp: httpx.AsyncClient, storefront_auth: KeyhouseAuth) -> None:
    email, password = new_email(), new_password()
    customer_id = await asign_up(ahttp, storefront_auth, email, password)
    shopper = await storefront_auth.alog_in(ahttp, email=email, password=password)
    response = await ahttp.get(f"/v2/customers/{customer_id}", auth=shopper)
    assert raise_for_error(response).json()["data"]["id"] == customer_id


def test_a_wrong_password_raises_invalid_credentials(
    http: httpx.Client, storefront_auth: KeyhouseAuth
) -> None:
    email = new_email()
    sign_up(http, storefront_auth, email, new_password())
    with pytest.raises(InvalidCredentialsError) as raised:
        storefront_auth.log_in(http, email=email, password="not the password")
    error = raised.value
    assert error.status == 401 and error.error is None
    assert error.error_description == "The email or password is incorrect."
    assert error.errors[0].status == 401 and error.errors[0].title == "Unauthorized"
    assert error.request_id


def test_an_ended_customer_token_raises_before_anything_is_sent(
    live_server: LiveServer, http: httpx.Client, recorder: Recorder, storefront: CreatedClient
) -> None:
    """The password is not kept, so the client cannot log in again by itself."""
    clock = Clock()
    auth = KeyhouseAuth.implicit(live_server.url, client_id=storefront.client.id, clock=clock)
    email, password = new_email(), new_password()
    sign_up(http, auth, email, password)
    shopper = auth.log_in(http, email=email, password=password)
    clock.now += 86_400 - 1
    sent = len(recorder.sent)
    http.get(ORDERS, auth=shopper)  # its last second: still sent
    assert len(recorder.sent) > sent
    clock.now += 1
    sent = len(recorder.sent)
    with pytest.raises(LoginRequiredError) as raised:
        http.get(ORDERS, auth=shopper)
    assert len(recorder.sent) == sent
    assert raised.value.status is None and raised.value.error == "invalid_token"


def test_a_revoked_customer_token_raises_login_required(
    live_server: LiveServer,
    http: httpx.Client,
    recorder: Recorder,
    storefront: CreatedClient,
    storefront_auth: KeyhouseAuth,
) -> None:
    """Refused even after the bearer token was renewed: the customer token is what is wrong."""
    email, password = new_email(), new_password()
    sign_up(http, storefront_auth, email, password)
    shopper = storefront_auth.log_in(http, email=email, password=password)
    assert http.get(ORDERS, auth=shopper).status_code == 200
    form = {"token": shopper.customer_token.token, "client_id": storefront.client.id}
    assert http.post("/oauth/revoke", data=form).status_code == 200
    before = len(recorder.sent)
    with pytest.raises(LoginRequiredError) as raised:
        http.get(ORDERS, auth=shopper)
    assert recorder.paths()[before:] == [ORDERS, TOKEN_PATH, ORDERS]
    assert raised.value.status == 401 and raised.value.error == "invalid_token"


async def test_async_a_revoked_customer_token_raises_login_required(
    ahttp: httpx.AsyncClient, storefront: CreatedClient, storefront_auth: KeyhouseAuth
) -> None:
    email, password = new_email(), new_password()
    await asign_up(ahttp, storefront_auth, email, password)
    shopper = await storefront_auth.alog_in(ahttp, email=email, password=password)
    form = {"token": shopper.customer_token.token, "client_id": storefront.client.id}
    assert (await ahttp.post("/oauth/revoke", data=form)).status_code == 200
    with pytest.raises(LoginRequiredError):
        await ahttp.get(ORDERS, auth=shopper)
