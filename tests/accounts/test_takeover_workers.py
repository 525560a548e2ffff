"""Member logins in flight across a change of credentials, on `keyhouse serve --workers 2` and
PostgreSQL: every token a login with the old credentials obtained, before, during or after the
change, is refused by both workers once the change has reached them.

As tests/customers/test_takeover_workers.py races shoppers' logins against an email change,
these race a member's logins against a backend removing their username and password: a change
that needs no hash, so it commits while most logins wait for theirs, and they sign their tokens
after it with the epoch they read before. The same race, made deterministic by holding the
logins, is in test_races.py, for every way a token ends.
"""

import asyncio
import time

import httpx
import pytest

from ..conftest import POSTGRES_URL, MakeClient
from ..customers.shoppers import backend_token, headers, implicit_token
from ..customers.test_takeover_workers import (
    LOGINS,
    Race,
    assert_refused_everywhere,
    race_in_rounds,
)
from ..serve import Serving
from .realm import (
    HEADER,
    TOKENS_URL,
    add_member,
    data_of,
    login_body,
    make_account,
    make_member,
    make_profile,
    passwords_url,
    realm_id,
)

pytestmark = [
    pytest.mark.skipif(not POSTGRES_URL, reason="several workers need PostgreSQL"),
    pytest.mark.timing,
]


async def test_no_member_login_with_the_old_credentials_outlives_the_change_on_any_worker(
    two_workers: Serving, make_client: MakeClient
) -> None:
    async with httpx.AsyncClient(base_url=two_workers.url, timeout=30) as http:
        storefront = await implicit_token(http, await make_client(public=True))
        backend = await backend_token(http, await make_client(name="backend"))
        realm = await realm_id(http, backend)
        profile = await make_profile(http, backend, realm)
        race, answers = await race_in_rounds(
            lambda: race_logins_against_a_removal(http, storefront, backend, realm, profile)
        )
    tokens = [token["token"] for answer in answers for token in answer.json()["data"]]
    await assert_refused_everywhere(
        two_workers, race, [{**headers(storefront), HEADER: token} for token in tokens]
    )


async def race_logins_against_a_removal(
    http: httpx.AsyncClient, storefront: str, backend: str, realm: str, profile: str
) -> Race:
    """Logins of a fresh member of a fresh account, and the removal of their username and
    password once the first has its token. Whether any of the others read the member before
    the removal commits is up to the scheduler: the caller runs rounds until one did."""
    member, username = await make_member(http, backend, realm, profile)
    account = await make_account(http, backend)
    await add_member(http, backend, account, member)
    (secret,) = data_of(await http.get(passwords_url(realm, member), headers=headers(backend)), 200)

    async def old_password_login() -> tuple[httpx.Response, float]:
        async with httpx.AsyncClient(base_url=http.base_url, timeout=30) as fresh:
            body = login_body(profile, username)
            answer = await fresh.post(TOKENS_URL, json=body, headers=headers(storefront))
            return answer, time.monotonic()

    logins = [asyncio.create_task(old_password_login()) for _ in range(LOGINS)]
    # Once one has its token, the others are hashing or queued for the hash.
    await asyncio.wait(logins, return_when=asyncio.FIRST_COMPLETED)
    removed = await http.delete(
        f"{passwords_url(realm, member)}/{secret['id']}", headers=headers(backend)
    )
    assert removed.status_code == 204, removed.text
    changed_at = time.monotonic()
    answers = await asyncio.gather(*logins)
    assert {answer.status_code for answer, _ in answers} <= {201, 401}
    return Race(f"/v2/accounts/{account}", changed_at, list(answers))
