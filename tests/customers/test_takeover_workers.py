"""Logins in flight across a change of credentials, on `keyhouse serve --workers 2` and
PostgreSQL (issue 19, item 3): every token a login with the old credentials obtained, before,
during or after the change, is refused by both workers once the change has reached them.

Each login reads the customer, then queues for the password hash (one thread per worker on this
machine). A backend moves the account to a new email meanwhile, a change that needs no hash and
so commits while most logins wait: they sign their tokens after it, with the epoch they read
before, as in the attack that found this (4 tokens of 30 outlived a password change when
revocation was a cutoff by `iat`). The same race with a password change, made deterministic by
holding the logins' checks, is in test_takeover.py.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from app.oauth.stores import Store

from ..conftest import POSTGRES_URL, MakeClient
from ..serve import Serving, serving
from .shoppers import backend_token, headers, implicit_token, log_in, new_email, sign_up

pytestmark = [
    pytest.mark.skipif(not POSTGRES_URL, reason="several workers need PostgreSQL"),
    pytest.mark.timing,
]

LOGINS = 20
ROUNDS = 8  # each about a second
PROPAGATION_SECONDS = 1.0  # four revocation polls of 0.25 s
PROBES_PER_TOKEN = 4  # on fresh connections, so both workers are asked


@pytest.fixture
def two_workers(tmp_path: Path, default_store: Store, database_url: str) -> Iterator[Serving]:
    environment = {
        "KEYHOUSE_DATABASE_URL": database_url,
        # The logins all come from one address: neither the limit nor the lockout may stop them.
        "KEYHOUSE_LOGIN_RATE_LIMIT_PER_ADDRESS": "100000/minute",
        "KEYHOUSE_LOCKOUT_PAIR_FAILURES": "100000",
    }
    with serving(tmp_path, workers=2, environment=environment) as served:
        yield served


async def test_no_login_with_the_old_credentials_outlives_the_change_on_any_worker(
    two_workers: Serving, make_client: MakeClient
) -> None:
    async with httpx.AsyncClient(base_url=two_workers.url, timeout=30) as http:
        storefront = await implicit_token(http, await make_client(public=True))
        backend = await backend_token(http, await make_client(name="backend"))
        race, answers = await race_in_rounds(
            lambda: race_logins_against_a_change(http, storefront, backend, two_workers.url)
        )
    tokens = [answer.json()["data"]["token"] for answer in answers]
    await assert_refused_everywhere(
        two_workers, race, [headers(storefront, token) for token in tokens]
    )


@dataclass
class Race:
    probe_url: str  # where each token is tried afterwards
    changed_at: float
    answers: list[tuple[httpx.Response, float]]

    @property
    def successes(self) -> list[httpx.Response]:
        return [answer for answer, _ in self.answers if answer.is_success]

    @property
    def late_successes(self) -> list[httpx.Response]:
        return [answer for answer, at in self.answers if answer.is_success and at > self.changed_at]


async def race_in_rounds(race: Callable[[], Awaitable[Race]]) -> tuple[Race, list[httpx.Response]]:
    """Runs `race` until a login of it signed its token after the change: that last race, and
    the successful logins of every round."""
    successes: list[httpx.Response] = []
    for _ in range(ROUNDS):
        raced = await race()
        successes += raced.successes
        if raced.late_successes:
            return raced, successes
    pytest.fail(f"in {ROUNDS} rounds no login signed its token after the change")


async def assert_refused_everywhere(
    two_workers: Serving, race: Race, sent: list[dict[str, str]]
) -> None:
    """Once the change has reached every worker, each of the headers `sent` (one a token) is
    refused at the race's probe URL by both workers."""
    await asyncio.sleep(max(0.0, race.changed_at + PROPAGATION_SECONDS - time.monotonic()))
    for request_headers in sent:
        for _ in range(PROBES_PER_TOKEN):
            read = two_workers.get(race.probe_url, headers=request_headers)
            assert read.status_code == 401, read.text
    assert len(two_workers.pids_that_answered(race.probe_url)) == 2


async def race_logins_against_a_change(
    http: httpx.AsyncClient, storefront: str, backend: str, url: str
) -> Race:
    """Logins with the password of a fresh shopper, and a backend's email change once the first
    has its token. Whether any of the others read the account before the change commits is up
    to the scheduler (in some runs none has): the caller runs rounds until one did."""
    email = new_email()
    signed_up = await sign_up(http, storefront, email=email)
    customer_url = f"/v2/customers/{signed_up.json()['data']['id']}"

    async def old_password_login() -> tuple[httpx.Response, float]:
        async with httpx.AsyncClient(base_url=url, timeout=30) as fresh:
            return await log_in(fresh, storefront, email=email), time.monotonic()

    logins = [asyncio.create_task(old_password_login()) for _ in range(LOGINS)]
    # Once one has its token, the others are hashing or queued for the hash.
    await asyncio.wait(logins, return_when=asyncio.FIRST_COMPLETED)
    update = {"data": {"type": "customer", "email": new_email()}}
    changed = await http.put(customer_url, json=update, headers=headers(backend))
    assert changed.status_code == 200, changed.text
    changed_at = time.monotonic()
    answers = await asyncio.gather(*logins)
    assert {answer.status_code for answer, _ in answers} <= {200, 401}
    return Race(customer_url, changed_at, list(answers))
