"""What a hostile request may cost: sign-ups in a flood, oversized fields, account hierarchies
and lists. No request may cost a worker more than its size warrants."""

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from ..conftest import MakeClient, http_client
from ..customers.conftest import MakeStore
from ..customers.shoppers import backend_token, headers
from ..world import assert_errors
from .realm import TOKENS_URL, Setup, data_of, login_body, make_account, make_profile, signup_body
from .test_enumeration import CountedHashes
from .test_takeover import settle


@pytest.mark.settings(login_rate_limit_per_address="3/minute")
async def test_a_flood_of_sign_ups_is_limited_per_address(
    app: FastAPI, http: httpx.AsyncClient, setup: Setup
) -> None:
    await settle(http, setup.backend, enable_self_signup=True)
    hashes = CountedHashes(app)
    async with http_client(app, address="203.0.113.7") as flood:
        answers = [
            await flood.post(
                TOKENS_URL,
                json=signup_body(setup.profile, f"flood{number}"),
                headers=headers(setup.storefront),
            )
            for number in range(5)
        ]
    assert [a.status_code for a in answers] == [201, 201, 201, 429, 429]
    assert int(answers[-1].headers["retry-after"]) > 0
    assert hashes.taken() == 3  # the refused ones cost none
    # Another address still signs up.
    body = signup_body(setup.profile, "elsewhere")
    assert (
        await http.post(TOKENS_URL, json=body, headers=headers(setup.storefront))
    ).status_code == 201


LOGIN_FIELDS = [
    ({"password": "p" * 1025}, 400),
    ({"password": "p" * 1_000_000}, 413),  # the body limit, before a byte is parsed
    ({"password": "\U0001f511" * 20_000}, 413),
    ({"username": "u" * 255}, 400),
]
SIGN_UP_FIELDS = [
    *LOGIN_FIELDS,
    ({"name": "n" * 201}, 400),
    ({"email": "e" * 250 + "@example.com"}, 400),
]
OVERSIZED = [("password", *case) for case in LOGIN_FIELDS] + [
    ("self_signup", *case) for case in SIGN_UP_FIELDS
]


@pytest.mark.parametrize(("mechanism", "fields", "status"), OVERSIZED, ids=lambda v: str(v)[:16])
async def test_oversized_fields_are_refused_before_any_hash(
    app: FastAPI,
    http: httpx.AsyncClient,
    setup: Setup,
    mechanism: str,
    fields: dict[str, Any],
    status: int,
) -> None:
    await settle(http, setup.backend, enable_self_signup=True)
    hashes = CountedHashes(app)
    body = (login_body if mechanism == "password" else signup_body)(setup.profile, setup.a.username)
    body["data"].update(fields)
    assert_errors(await http.post(TOKENS_URL, json=body, headers=headers(setup.storefront)), status)
    assert hashes.taken() == 0


async def test_a_sign_up_refused_for_its_username_costs_no_hash(
    app: FastAPI, http: httpx.AsyncClient, setup: Setup
) -> None:
    await settle(http, setup.backend, enable_self_signup=True)
    emails_only = await make_profile(http, setup.backend, setup.realm, username_format="email")
    hashes = CountedHashes(app)
    body = signup_body(emails_only, "not an email")
    assert_errors(await http.post(TOKENS_URL, json=body, headers=headers(setup.storefront)), 400)
    assert hashes.taken() == 0


async def test_no_account_can_become_its_own_ancestor(
    http: httpx.AsyncClient, backend: str, make_client: MakeClient, make_store: MakeStore
) -> None:
    parent = await make_account(http, backend, "Parent")
    body = {"data": {"type": "account", "name": "Child", "parent_id": parent}}
    child = data_of(await http.post("/v2/accounts", json=body, headers=headers(backend)), 201)["id"]
    # A parent is set at creation, to an account that exists then, and never changes after: a
    # cycle would need an account to be its own ancestor's parent.
    for new_parent in (child, parent):
        update = {"data": {"type": "account", "name": "Parent", "parent_id": new_parent}}
        updated = data_of(
            await http.put(f"/v2/accounts/{parent}", json=update, headers=headers(backend)), 200
        )
        assert updated["relationships"] == {}
    # Another store's account is no parent here.
    store = await make_store("elsewhere")
    theirs = await make_account(
        http, await backend_token(http, await make_client(name="b", store_id=store.id)), "Theirs"
    )
    adopted = {"data": {"type": "account", "name": "Adopted", "parent_id": theirs}}
    assert_errors(await http.post("/v2/accounts", json=adopted, headers=headers(backend)), 404)


@pytest.mark.parametrize("url", ["/v2/accounts", "/v2/account-members"])
async def test_lists_take_no_more_than_a_page_of_a_hundred(
    http: httpx.AsyncClient, backend: str, url: str
) -> None:
    for query in (
        "page[limit]=101",
        "page[limit]=1000000",
        "page[offset]=10000001",
        "page[limit]=-1",
    ):
        assert_errors(await http.get(f"{url}?{query}", headers=headers(backend)), 400)
    many = "&".join(f"filter=eq(name,{n})" for n in range(40))
    assert_errors(await http.get(f"{url}?{many}", headers=headers(backend)), 400)
