"""Keyhouse honours `exp` to the second on every protected route: an access token or a customer
token is accepted until its `expires` and refused (401 `invalid_token`) from then on, even when
the verifier remembers it from an earlier request."""

import asyncio
import time

import httpx
import jwt
from fastapi import FastAPI

from ..conftest import MakeClient
from ..customers.shoppers import TOKEN_URL, headers, implicit_token, log_in, new_email, sign_up

PRODUCTS_URL = "/v2/products"


async def at_the_start_of_a_second() -> None:
    """Waits for the next whole second, so that a 1 s token has most of its second to live."""
    await asyncio.sleep(1 - time.time() % 1)


async def until_expired(expires: int) -> None:
    await asyncio.sleep(max(0.0, expires - time.time()) + 0.01)


def assert_invalid_token(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert response.json()["errors"][0]["status"] == 401


async def test_an_access_token_is_refused_as_soon_as_it_expires(
    http: httpx.AsyncClient, make_client: MakeClient
) -> None:
    short_lived = await make_client(name="short-lived", public=True, token_ttl=1)
    await at_the_start_of_a_second()
    form = {"grant_type": "implicit", "client_id": short_lived.client.id}
    body = (await http.post(TOKEN_URL, data=form)).json()
    assert body["expires_in"] == 1
    token = body["access_token"]
    # Read once while valid, so that the verifier remembers the token.
    assert (await http.get(PRODUCTS_URL, headers=headers(token))).status_code == 200

    await until_expired(body["expires"])
    assert_invalid_token(await http.get(PRODUCTS_URL, headers=headers(token)))


async def test_a_customer_token_is_refused_as_soon_as_it_expires(
    http: httpx.AsyncClient, app: FastAPI, make_client: MakeClient
) -> None:
    storefront = await implicit_token(http, await make_client(name="shop", public=True))
    email = new_email()
    assert (await sign_up(http, storefront, email=email)).status_code == 201
    logged_in = (await log_in(http, storefront, email=email)).json()["data"]
    claims = jwt.decode(logged_in["token"], options={"verify_signature": False})
    own_profile = f"/v2/customers/{logged_in['customer_id']}"

    await at_the_start_of_a_second()
    now = int(time.time())
    key = await app.state.keyring.active_key()
    short_lived = key.signer.sign({**claims, "iat": now, "exp": now + 1}, typ="customer+jwt")
    response = await http.get(own_profile, headers=headers(storefront, short_lived))
    assert response.status_code == 200, response.text

    await until_expired(now + 1)
    assert_invalid_token(await http.get(own_profile, headers=headers(storefront, short_lived)))
