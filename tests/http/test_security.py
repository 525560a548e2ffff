"""The callers remembered by their credential headers (app/http/security.py): a hit must still be
refused once its token is revoked or gone, and the memory stays bounded."""

import httpx
import pytest
from fastapi import FastAPI

from app.http.security import RememberedCallers

from ..conftest import MakeClient
from ..customers.shoppers import headers, implicit_token, log_in, new_email, sign_up

PRODUCTS = "/v2/products"
LOGOUT = "/v2/customers/tokens/current"


def remembered(app: FastAPI) -> RememberedCallers:
    callers: RememberedCallers = app.state.callers
    return callers


async def test_a_remembered_caller_is_refused_once_its_customer_token_is_logged_out(
    app: FastAPI, http: httpx.AsyncClient, make_client: MakeClient
) -> None:
    storefront = await make_client(name="storefront", public=True)
    bearer = await implicit_token(http, storefront)
    email = new_email()
    assert (await sign_up(http, bearer, email=email)).status_code == 201
    customer_token = (await log_in(http, bearer, email=email)).json()["data"]["token"]
    both = headers(bearer, customer_token)
    for _ in range(2):  # the second is answered from memory
        assert (await http.get("/v2/orders", headers=both)).status_code == 200
    sent = (f"Bearer {bearer}".encode(), customer_token.encode(), None)
    assert sent in remembered(app)._callers

    assert (await http.delete(LOGOUT, headers=both)).status_code == 204
    refused = await http.get("/v2/orders", headers=both)
    assert refused.status_code == 401
    assert (await http.get(PRODUCTS, headers=headers(bearer))).status_code == 200


async def test_refused_credentials_are_not_remembered_and_the_oldest_callers_make_room(
    app: FastAPI, http: httpx.AsyncClient, make_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(RememberedCallers, "MAX_CALLERS", 2)
    storefront = await make_client(name="storefront", public=True)
    tokens = [await implicit_token(http, storefront) for _ in range(3)]
    assert (await http.get(PRODUCTS, headers=headers(tokens[0] + "x"))).status_code == 401
    assert remembered(app)._callers == {}

    for token in tokens:
        assert (await http.get(PRODUCTS, headers=headers(token))).status_code == 200
    kept = {authorization for authorization, _, _ in remembered(app)._callers}
    assert kept == {f"Bearer {token}".encode() for token in tokens[1:]}
    # The one forgotten is verified again, not refused.
    assert (await http.get(PRODUCTS, headers=headers(tokens[0]))).status_code == 200
