"""`PUT /v2/customers/{id}/password` (a logged-in shopper changes their password) and
`DELETE /v2/customers/tokens/current` (logout)."""

import httpx
import pytest

from app.runtime.db import Database

from .conftest import MakeShopper
from .mail.resets import audit_events
from .shoppers import PASSWORD, headers, log_in

NEW_PASSWORD = "a brand new passphrase"


async def change(
    http: httpx.AsyncClient,
    bearer: str,
    customer_token: str | None,
    customer_id: str,
    *,
    current: str = PASSWORD,
    new: str = NEW_PASSWORD,
) -> httpx.Response:
    body = {"data": {"type": "password_change", "current_password": current, "password": new}}
    return await http.put(
        f"/v2/customers/{customer_id}/password", json=body, headers=headers(bearer, customer_token)
    )


async def orders_status(http: httpx.AsyncClient, bearer: str, customer_token: str) -> int:
    return (await http.get("/v2/orders", headers=headers(bearer, customer_token))).status_code


async def test_a_shopper_changes_their_password(
    http: httpx.AsyncClient, storefront: str, make_shopper: MakeShopper, database: Database
) -> None:
    shopper = await make_shopper()
    elsewhere = (await log_in(http, storefront, email=shopper.email)).json()["data"]["token"]
    response = await change(http, storefront, shopper.token, shopper.id)
    assert response.status_code == 204, response.text
    # The token that asked stays valid; the shopper's other sessions end.
    assert await orders_status(http, storefront, shopper.token) == 200
    assert await orders_status(http, storefront, elsewhere) == 401
    assert (await log_in(http, storefront, email=shopper.email)).status_code == 401
    fresh = await log_in(http, storefront, email=shopper.email, password=NEW_PASSWORD)
    assert fresh.status_code == 200
    assert await orders_status(http, storefront, fresh.json()["data"]["token"]) == 200
    (changed,) = await audit_events(database, "customer.password_changed")
    assert changed.subject == shopper.id and changed.address == "127.0.0.1"


async def test_a_wrong_current_password_is_a_failed_login(
    http: httpx.AsyncClient, storefront: str, make_shopper: MakeShopper, database: Database
) -> None:
    shopper = await make_shopper()
    wrong = await change(http, storefront, shopper.token, shopper.id, current="not it")
    failed_login = await log_in(http, storefront, email=shopper.email, password="not it either")
    assert wrong.status_code == failed_login.status_code == 401
    assert wrong.json() == failed_login.json()
    assert wrong.headers["www-authenticate"] == failed_login.headers["www-authenticate"]
    assert len(await audit_events(database, "customer.login_failed")) == 2
    assert (await log_in(http, storefront, email=shopper.email)).status_code == 200


async def test_wrong_current_passwords_are_locked_out(
    http: httpx.AsyncClient, storefront: str, make_shopper: MakeShopper
) -> None:
    shopper = await make_shopper()
    for guess in range(5):
        response = await change(
            http, storefront, shopper.token, shopper.id, current=f"guess {guess}"
        )
        assert response.status_code == 401
    locked = await change(http, storefront, shopper.token, shopper.id)  # even the right one
    assert locked.status_code == 429 and int(locked.headers["retry-after"]) >= 1
    assert (await log_in(http, storefront, email=shopper.email)).status_code == 429


async def test_only_the_shopper_may_change_their_password(
    http: httpx.AsyncClient, storefront: str, backend: str, make_shopper: MakeShopper
) -> None:
    ron, ann = await make_shopper(), await make_shopper()
    someone_else = await change(http, storefront, ann.token, ron.id)
    assert someone_else.status_code == 404
    for bearer in (backend, storefront):  # a backend acts for the store, not as the shopper
        no_shopper = await change(http, bearer, None, ron.id)
        assert no_shopper.status_code == 400
        assert no_shopper.json()["errors"][0]["detail"] == (
            "This request needs the shopper's customer token (X-Moltin-Customer-Token)."
        )
    assert (await log_in(http, storefront, email=ron.email)).status_code == 200


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (
            {"type": "password_change", "current_password": PASSWORD, "password": "short"},
            "password",
        ),
        ({"type": "password_change", "password": NEW_PASSWORD}, "current_password"),
        ({"type": "customer", "current_password": PASSWORD, "password": NEW_PASSWORD}, "type"),
    ],
)
async def test_a_malformed_change_is_a_400(
    http: httpx.AsyncClient,
    storefront: str,
    make_shopper: MakeShopper,
    body: dict[str, str],
    problem: str,
) -> None:
    shopper = await make_shopper()
    response = await http.put(
        f"/v2/customers/{shopper.id}/password",
        json={"data": body},
        headers=headers(storefront, shopper.token),
    )
    assert response.status_code == 400
    assert f"data.{problem}" in response.json()["errors"][0]["detail"]
    assert (await log_in(http, storefront, email=shopper.email)).status_code == 200


# logout


async def test_a_shopper_logs_out(
    http: httpx.AsyncClient, storefront: str, make_shopper: MakeShopper, database: Database
) -> None:
    shopper = await make_shopper()
    elsewhere = (await log_in(http, storefront, email=shopper.email)).json()["data"]["token"]
    response = await http.delete(
        "/v2/customers/tokens/current", headers=headers(storefront, shopper.token)
    )
    assert response.status_code == 204 and response.content == b""
    assert await orders_status(http, storefront, shopper.token) == 401
    assert await orders_status(http, storefront, elsewhere) == 200  # only this session ends
    (revoked,) = await audit_events(database, "token.revoked")
    assert revoked.subject != shopper.token and revoked.address == "127.0.0.1"
    again = await http.delete(
        "/v2/customers/tokens/current", headers=headers(storefront, shopper.token)
    )
    assert again.status_code == 401


async def test_logging_out_needs_a_customer_token(
    http: httpx.AsyncClient, storefront: str, backend: str
) -> None:
    for bearer in (storefront, backend):
        response = await http.delete("/v2/customers/tokens/current", headers=headers(bearer))
        assert response.status_code == 400
        assert "X-Moltin-Customer-Token" in response.json()["errors"][0]["detail"]
