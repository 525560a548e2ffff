"""Tokens and shoppers made through the real endpoints, for tests of customer-owned routes."""

import itertools
from dataclasses import dataclass
from typing import Any

import httpx

from app.oauth.clients import CreatedClient

TOKEN_URL = "/oauth/access_token"
CUSTOMERS_URL = "/v2/customers"
LOGIN_URL = "/v2/customers/tokens"
PASSWORD = "correct horse battery staple"
_numbers = itertools.count(1)


def headers(bearer: str, customer_token: str | None = None) -> dict[str, str]:
    """The bearer token, and the shopper's customer token beside it if given."""
    sent = {"Authorization": f"Bearer {bearer}"}
    if customer_token is not None:
        sent["X-Moltin-Customer-Token"] = customer_token
    return sent


async def backend_token(http: httpx.AsyncClient, client: CreatedClient) -> str:
    assert client.client_secret is not None
    form = {"grant_type": "client_credentials"}
    response = await http.post(TOKEN_URL, data=form, auth=(client.client.id, client.client_secret))
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


async def implicit_token(http: httpx.AsyncClient, client: CreatedClient) -> str:
    form = {"grant_type": "implicit", "client_id": client.client.id}
    response = await http.post(TOKEN_URL, data=form)
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def new_email() -> str:
    return f"shopper{next(_numbers)}@example.com"


async def sign_up(
    http: httpx.AsyncClient, bearer: str, *, email: str, password: str = PASSWORD, name: str = "Ron"
) -> httpx.Response:
    body = {"data": {"type": "customer", "name": name, "email": email, "password": password}}
    return await http.post(CUSTOMERS_URL, json=body, headers=headers(bearer))


async def log_in(
    http: httpx.AsyncClient, bearer: str, *, email: str, password: str = PASSWORD, **extra: Any
) -> httpx.Response:
    body = {"data": {"type": "token", "email": email, "password": password, **extra}}
    return await http.post(LOGIN_URL, json=body, headers=headers(bearer))


@dataclass(frozen=True)
class Shopper:
    """A signed-up customer and the customer token of a login."""

    id: str
    email: str
    password: str
    token: str


async def new_shopper(
    http: httpx.AsyncClient, bearer: str, *, email: str | None = None, password: str = PASSWORD
) -> Shopper:
    """Signs a shopper up and logs them in, both through the HTTP API."""
    email = email or new_email()
    signed_up = await sign_up(http, bearer, email=email, password=password)
    assert signed_up.status_code == 201, signed_up.text
    login = await log_in(http, bearer, email=email, password=password)
    assert login.status_code == 200, login.text
    return Shopper(
        id=signed_up.json()["data"]["id"],
        email=email,
        password=password,
        token=login.json()["data"]["token"],
    )
