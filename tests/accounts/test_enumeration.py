"""Enumeration attacked: what a login, a sign-up or an id tells a stranger about members,
profiles and accounts that exist, and how fast it may ask."""

import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from ..conftest import MakeClient
from ..customers.conftest import MakeStore
from ..customers.shoppers import backend_token, headers, log_in, new_email, sign_up
from ..world import assert_errors
from .realm import (
    TOKENS_URL,
    Setup,
    add_member,
    data_of,
    infos_url,
    login_body,
    make_account,
    make_member,
    make_profile,
    passwords_url,
    profiles_url,
    realm_id,
    signup_body,
)
from .test_takeover import settle


class CountedHashes:
    """Counts the password hashes and checks the app runs."""

    def __init__(self, app: FastAPI) -> None:
        self.count = 0
        hasher = app.state.password_hasher
        hash_password, check = hasher.hash, hasher.check

        async def counted_hash(password: str) -> Any:
            self.count += 1
            return await hash_password(password)

        async def counted_check(password: str, stored_hash: str | None) -> Any:
            self.count += 1
            return await check(password, stored_hash)

        hasher.hash, hasher.check = counted_hash, counted_check

    def taken(self) -> int:
        count, self.count = self.count, 0
        return count


async def test_every_failed_login_costs_one_hash_and_answers_alike(
    app: FastAPI,
    http: httpx.AsyncClient,
    setup: Setup,
    make_client: MakeClient,
    make_store: MakeStore,
) -> None:
    store = await make_store("elsewhere")
    their_backend = await backend_token(http, await make_client(name="b", store_id=store.id))
    their_realm = await realm_id(http, their_backend)
    their_profile = await make_profile(http, their_backend, their_realm)
    await make_member(http, their_backend, their_realm, their_profile, username="theirs")
    hashes = CountedHashes(app)
    answers = []
    for body in (
        login_body(setup.profile, setup.a.username, "a wrong password"),
        login_body(setup.profile, "nobody@example.com"),
        login_body(str(uuid.uuid4()), setup.a.username),  # a profile of no one
        login_body(their_profile, "theirs"),  # another store's, with its member's password
    ):
        answers.append(await http.post(TOKENS_URL, json=body, headers=headers(setup.storefront)))
        assert hashes.taken() == 1, body  # so each takes as long as the others
    assert {a.status_code for a in answers} == {401}
    assert len({a.text for a in answers}) == 1
    assert len({a.headers["www-authenticate"] for a in answers}) == 1


@pytest.mark.settings(lockout_address_failures=4)
async def test_failed_member_and_customer_logins_count_against_one_address(
    http: httpx.AsyncClient, setup: Setup
) -> None:
    customer = new_email()
    assert (await sign_up(http, setup.storefront, email=customer)).status_code == 201
    for body in (
        login_body(setup.profile, setup.a.username, "a wrong password"),
        login_body(setup.profile, "nobody"),
        login_body(str(uuid.uuid4()), "nobody"),
    ):
        assert_errors(
            await http.post(TOKENS_URL, json=body, headers=headers(setup.storefront)), 401
        )
    assert_errors(await log_in(http, setup.storefront, email=customer, password="wrong"), 401)
    # The address is locked for members and customers, the right passwords included.
    right = login_body(setup.profile, setup.b.username)
    assert_errors(await http.post(TOKENS_URL, json=right, headers=headers(setup.storefront)), 429)
    assert_errors(await log_in(http, setup.storefront, email=customer), 429)


@pytest.mark.settings(lockout_address_failures=2)
async def test_a_sign_up_cannot_ask_faster_than_a_login_whether_a_username_is_taken(
    app: FastAPI, http: httpx.AsyncClient, setup: Setup
) -> None:
    await settle(http, setup.backend, enable_self_signup=True)
    hashes = CountedHashes(app)
    for username in (setup.a.username, setup.b.username):
        body = signup_body(setup.profile, username)
        taken = await http.post(TOKENS_URL, json=body, headers=headers(setup.storefront))
        assert_errors(taken, 409)
    hashes.taken()
    # Counted as failed logins: the address may ask no more, a free username included.
    free = signup_body(setup.profile, "free")
    assert_errors(await http.post(TOKENS_URL, json=free, headers=headers(setup.storefront)), 429)
    assert hashes.taken() == 0  # refused before the hash
    right = login_body(setup.profile, setup.a.username)
    assert_errors(await http.post(TOKENS_URL, json=right, headers=headers(setup.storefront)), 429)


async def test_ids_of_another_store_are_no_more_than_ids_of_nothing(
    http: httpx.AsyncClient, setup: Setup, make_client: MakeClient, make_store: MakeStore
) -> None:
    store = await make_store("elsewhere")
    theirs = await backend_token(http, await make_client(name="b", store_id=store.id))
    realm = await realm_id(http, theirs)
    profile = await make_profile(http, theirs, realm)
    member, _ = await make_member(http, theirs, realm, profile)
    account = await make_account(http, theirs, "Theirs")
    membership = await add_member(http, theirs, account, member)
    (secret,) = data_of(await http.get(passwords_url(realm, member), headers=headers(theirs)), 200)
    ours = setup.realm

    def urls(
        realm: str, profile: str, member: str, account: str, membership: str, secret: str
    ) -> list[str]:
        return [
            f"/v2/authentication-realms/{realm}",
            f"{profiles_url(ours)}/{profile}",
            f"{infos_url(ours)}/{member}",
            f"{passwords_url(ours, member)}",
            f"{passwords_url(ours, setup.a.id)}/{secret}",
            f"/v2/account-members/{member}",
            f"/v2/account-members/{member}/account-memberships",
            f"/v2/accounts/{account}",
            f"/v2/accounts/{account}/account-memberships",
            f"/v2/accounts/{setup.a.account}/account-memberships/{membership}",
        ]

    nothing = [str(uuid.uuid4()) for _ in range(6)]
    their_ids = [realm, profile, member, account, membership, secret["id"]]
    for their_url, no_url in zip(urls(*their_ids), urls(*nothing), strict=True):
        for sent in (headers(setup.backend), setup.as_member(setup.a)):
            their_answer = await http.get(their_url, headers=sent)
            no_answer = await http.get(no_url, headers=sent)
            assert their_answer.status_code == no_answer.status_code, their_url
            assert their_answer.status_code in (403, 404), their_url
            assert their_answer.json() == no_answer.json(), their_url
