"""Renewal (`authentication_mechanism: account_management_authentication_token`) attacked: a
token that has ended, or is about to, must not buy fresh ones that outlive its end."""

import httpx
import jwt
import pytest
from fastapi import FastAPI

from app.oauth.revocation import RevocationList
from app.runtime.db import Database
from app.runtime.settings import Settings

from ..conftest import MakeClient, http_client, serving
from ..customers.shoppers import headers
from ..world import assert_errors
from .realm import RENEWAL, TOKENS_URL, Setup, data_of, login_body, passwords_url
from .test_replay import ENDINGS, NEW_PASSWORD, Ending, password_change
from .test_store_access import expired_token
from .test_takeover import settle


def claims(token: str) -> dict[str, object]:
    decoded: dict[str, object] = jwt.decode(token, options={"verify_signature": False})
    return decoded


async def test_renewal_keeps_the_credential_epoch_of_the_token_it_renews(
    http: httpx.AsyncClient, setup: Setup
) -> None:
    a = setup.a
    url = passwords_url(setup.realm, a.id)
    (secret,) = data_of(await http.get(url, headers=headers(setup.backend)), 200)
    change = password_change()
    data_of(
        await http.put(f"{url}/{secret['id']}", json=change, headers=headers(setup.backend)), 200
    )
    login = login_body(setup.profile, a.username, NEW_PASSWORD)
    (fresh,) = data_of(
        await http.post(TOKENS_URL, json=login, headers=headers(setup.storefront)), 201
    )
    (renewed,) = data_of(
        await http.post(TOKENS_URL, json=RENEWAL, headers=setup.as_member(a, fresh["token"])), 201
    )
    assert claims(renewed["token"])["cred_epoch"] == claims(fresh["token"])["cred_epoch"] == 1
    assert claims(renewed["token"])["jti"] != claims(fresh["token"])["jti"]


async def test_the_token_a_member_changed_their_password_with_renews_to_live_tokens(
    http: httpx.AsyncClient, setup: Setup
) -> None:
    a = setup.a
    await settle(http, setup.backend, account_member_self_management="update_only")
    url = passwords_url(setup.realm, a.id)
    (secret,) = data_of(await http.get(url, headers=headers(setup.backend)), 200)
    changed = await http.put(
        f"{url}/{secret['id']}", json=password_change(), headers=setup.as_member(a)
    )
    data_of(changed, 200)
    (renewed,) = data_of(await http.post(TOKENS_URL, json=RENEWAL, headers=setup.as_member(a)), 201)
    assert claims(renewed["token"])["cred_epoch"] == 1  # of the new password
    read = await http.get(f"/v2/accounts/{a.account}", headers=setup.as_member(a, renewed["token"]))
    assert read.status_code == 200, read.text


@pytest.mark.parametrize("ending", ENDINGS, ids=[e.__name__ for e in ENDINGS])
async def test_a_token_ended_through_another_worker_renews_nothing(
    app: FastAPI,
    http: httpx.AsyncClient,
    setup: Setup,
    settings: Settings,
    make_client: MakeClient,
    ending: Ending,
) -> None:
    await settle(http, setup.backend, account_member_self_management="update_only")
    revocations: RevocationList = app.state.revocations
    await revocations.stop()  # this worker hears of no revocation by itself from now on
    async with serving(settings) as other_worker, http_client(other_worker) as other:
        await ending(other, setup, make_client)
    renewal = await http.post(TOKENS_URL, json=RENEWAL, headers=setup.as_member(setup.a))
    assert_errors(renewal, 401)


async def test_an_expired_token_renews_nothing(
    app: FastAPI, http: httpx.AsyncClient, setup: Setup, database: Database
) -> None:
    expired = await expired_token(app, database, setup.a)
    renewal = await http.post(TOKENS_URL, json=RENEWAL, headers=setup.as_member(setup.a, expired))
    assert_errors(renewal, 401)
