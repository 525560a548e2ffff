"""Races on account members, made deterministic by holding requests at the moment that matters:
logins in flight across a change of credentials or the member's deletion, two changes of one
password at once, two sign-ups of one username at once."""

import asyncio
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from ..customers.shoppers import PASSWORD, headers
from ..customers.test_takeover import IN_FLIGHT, HeldLogins
from .realm import (
    TOKENS_URL,
    Setup,
    data_of,
    login_body,
)
from .test_replay import ENDINGS, Ending
from .test_takeover import settle

# Past the second of the change: a cutoff by `iat` would let a token signed now through.
PAST_THE_SECOND = 1.1


async def can_read_account(http: httpx.AsyncClient, setup: Setup, token: str) -> bool:
    response = await http.get(
        f"/v2/accounts/{setup.a.account}", headers=setup.as_member(setup.a, token)
    )
    assert response.status_code in (200, 401), response.text
    return response.status_code == 200


def _log_in(http: httpx.AsyncClient, setup: Setup) -> "asyncio.Task[httpx.Response]":
    body = login_body(setup.profile, setup.a.username)
    return asyncio.create_task(http.post(TOKENS_URL, json=body, headers=headers(setup.storefront)))


@pytest.mark.parametrize("ending", ENDINGS[1:], ids=[e.__name__ for e in ENDINGS[1:]])
async def test_a_login_that_checked_the_password_before_an_end_gets_no_live_token(
    app: FastAPI, http: httpx.AsyncClient, setup: Setup, make_client: Any, ending: Ending
) -> None:
    await settle(http, setup.backend, account_member_self_management="update_only")
    held = HeldLogins(app, PASSWORD)
    logins = [_log_in(http, setup) for _ in range(IN_FLIGHT)]
    await held.all_checked(IN_FLIGHT)
    await ending(http, setup, make_client)
    await asyncio.sleep(PAST_THE_SECOND)
    held.release.set()
    for login in logins:
        for token in data_of(await login, 201):
            assert not await can_read_account(http, setup, token["token"])


class HeldIssues:
    """Holds the signing of account tokens, once the login has read the member's accounts,
    until released."""

    def __init__(self, app: FastAPI) -> None:
        self.waiting = 0
        self.holding = True
        self.release = asyncio.Event()
        issuer = app.state.account_token_issuer
        issue = issuer.issue

        async def held_issue(*args: Any, **options: Any) -> Any:
            if self.holding:
                self.waiting += 1
                await self.release.wait()
            return await issue(*args, **options)

        issuer.issue = held_issue

    async def all_waiting(self, count: int) -> None:
        async with asyncio.timeout(30):
            while self.waiting < count:  # noqa: ASYNC110 (a plain counter to watch)
                await asyncio.sleep(0.01)
        self.holding = False  # the ending's own login, if any, goes through


@pytest.mark.parametrize("ending", ENDINGS[1:], ids=[e.__name__ for e in ENDINGS[1:]])
async def test_a_login_that_read_the_accounts_before_an_end_gets_no_live_token(
    app: FastAPI, http: httpx.AsyncClient, setup: Setup, make_client: Any, ending: Ending
) -> None:
    await settle(http, setup.backend, account_member_self_management="update_only")
    held = HeldIssues(app)
    logins = [_log_in(http, setup) for _ in range(IN_FLIGHT)]
    await held.all_waiting(IN_FLIGHT)
    await ending(http, setup, make_client)
    await asyncio.sleep(PAST_THE_SECOND)
    held.release.set()
    for login in logins:
        for token in data_of(await login, 201):
            assert not await can_read_account(http, setup, token["token"])
