"""Races on account members, made deterministic by holding requests at the moment that matters:
logins in flight across a change of credentials or the member's deletion, two changes of one
password at once, two sign-ups of one username at once."""

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from ..customers.shoppers import PASSWORD, headers
from ..customers.test_takeover import IN_FLIGHT, HeldLogins
from ..world import assert_errors
from .realm import TOKENS_URL, Setup, data_of, infos_url, login_body, signup_body
from .test_replay import ENDINGS, Ending, password_change, secret_url
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


Hold = Callable[[FastAPI], tuple[asyncio.Event, Callable[[int], Awaitable[None]]]]


def after_the_password_check(
    app: FastAPI,
) -> tuple[asyncio.Event, Callable[[int], Awaitable[None]]]:
    held = HeldLogins(app, PASSWORD)
    return held.release, held.all_checked


def after_the_accounts_read(app: FastAPI) -> tuple[asyncio.Event, Callable[[int], Awaitable[None]]]:
    held = HeldIssues(app)
    return held.release, held.all_waiting


HOLDS = [after_the_password_check, after_the_accounts_read]


@pytest.mark.parametrize("ending", ENDINGS[1:], ids=[e.__name__ for e in ENDINGS[1:]])
@pytest.mark.parametrize("hold", HOLDS, ids=[h.__name__ for h in HOLDS])
async def test_a_login_in_flight_across_an_end_gets_no_live_token(
    app: FastAPI,
    http: httpx.AsyncClient,
    setup: Setup,
    make_client: Any,
    hold: Hold,
    ending: Ending,
) -> None:
    await settle(http, setup.backend, account_member_self_management="update_only")
    release, all_held = hold(app)
    logins = [_log_in(http, setup) for _ in range(IN_FLIGHT)]
    await all_held(IN_FLIGHT)
    await ending(http, setup, make_client)
    await asyncio.sleep(PAST_THE_SECOND)
    release.set()
    for login in logins:
        for token in data_of(await login, 201):
            assert not await can_read_account(http, setup, token["token"])


async def test_of_two_password_changes_at_once_the_later_leaves_no_token_of_the_earlier(
    app: FastAPI, http: httpx.AsyncClient, setup: Setup
) -> None:
    first, second = "the first new password", "the second new password"
    hasher = app.state.password_hasher
    hash_password, release = hasher.hash, asyncio.Event()

    async def held_hash(password: str) -> str:
        if password == first:  # the first change reads the member, then waits for its hash
            await release.wait()
        return await hash_password(password)

    hasher.hash = held_hash
    url = await secret_url(http, setup, setup.a)
    sent = headers(setup.backend)
    first_change = asyncio.create_task(http.put(url, json=password_change(first), headers=sent))
    await asyncio.sleep(0.2)
    data_of(await http.put(url, json=password_change(second), headers=sent), 200)
    login = login_body(setup.profile, setup.a.username, second)
    (token,) = data_of(
        await http.post(TOKENS_URL, json=login, headers=headers(setup.storefront)), 201
    )
    release.set()
    changed = await first_change
    if changed.status_code == 200:  # the second password is gone: so is its token
        assert not await can_read_account(http, setup, token["token"])
    else:  # the first change was refused, and changed nothing
        assert_errors(changed, 409)
        assert await can_read_account(http, setup, token["token"])
        assert_errors(
            await http.post(
                TOKENS_URL,
                json=login_body(setup.profile, setup.a.username, first),
                headers=headers(setup.storefront),
            ),
            401,
        )


@pytest.mark.parametrize("own_account", [False, True], ids=["member", "member_and_account"])
async def test_two_sign_ups_of_one_username_at_once_make_one_member(
    http: httpx.AsyncClient, setup: Setup, own_account: bool
) -> None:
    await settle(
        http,
        setup.backend,
        enable_self_signup=True,
        auto_create_account_for_account_members=own_account,
    )
    spellings = ["twin", "TWIN", " Twin", "twin ", "tWin"]
    sign_ups = [
        http.post(
            TOKENS_URL,
            json=signup_body(setup.profile, username, password=f"{PASSWORD} {number}"),
            headers=headers(setup.storefront),
        )
        for number, username in enumerate(spellings)
    ]
    answers = await asyncio.gather(*sign_ups)
    assert sorted(a.status_code for a in answers) == [201, 409, 409, 409, 409], [
        a.text for a in answers
    ]
    for refused in (a for a in answers if a.status_code == 409):
        assert_errors(refused, 409)
    (won,) = [number for number, a in enumerate(answers) if a.status_code == 201]
    login = login_body(setup.profile, "TWIN", f"{PASSWORD} {won}")
    response = await http.post(TOKENS_URL, json=login, headers=headers(setup.storefront))
    member = response.json()["meta"]["account_member_id"]
    assert member == answers[won].json()["meta"]["account_member_id"]
    listed = await http.get(infos_url(setup.realm), headers=headers(setup.backend))
    assert len(data_of(listed, 200)) == 3  # A, B and the one sign-up that won
    accounts = await http.get("/v2/accounts", headers=headers(setup.backend))
    assert len(data_of(accounts, 200)) == 2 + own_account
