"""A revocation made through one worker is honoured by the others within a second (contract §5).

`keyhouse serve --workers 2` on PostgreSQL: both workers first accept (and remember) a token,
then it is revoked through one of them, and fresh connections, which the kernel hands to
either worker, are refused from then on. Each worker's pid in its JSON log lines shows that
both took part.
"""

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.oauth.clients import CreatedClient
from app.oauth.stores import Store

from ..conftest import POSTGRES_URL, MakeClient
from ..serve import Serving, serving

pytestmark = [
    pytest.mark.skipif(not POSTGRES_URL, reason="several workers need PostgreSQL"),
    pytest.mark.timing,
]

PROBES = 40  # requests on fresh connections; each worker gets some of them
BOUND_SECONDS = 1.0


class Workers(Serving):
    def probe(self, token: str, rounds: int = PROBES) -> list[tuple[float, int]]:
        """When each GET /v2/products was answered, and its status; each on a new connection,
        so either worker may answer it."""
        answers = []
        for _ in range(rounds):
            response = self.get("/v2/products", headers={"Authorization": f"Bearer {token}"})
            answers.append((time.monotonic(), response.status_code))
        return answers


@pytest.fixture
def two_workers(tmp_path: Path, default_store: Store, database_url: str) -> Iterator[Workers]:
    environment = {"KEYHOUSE_DATABASE_URL": database_url}
    with serving(tmp_path, workers=2, environment=environment) as served:
        yield Workers(served.url, served.log)


def backend_token(workers: Workers, client: CreatedClient) -> str:
    assert client.client_secret is not None
    response = httpx.post(
        workers.url + "/oauth/access_token",
        data={"grant_type": "client_credentials"},
        auth=(client.client.id, client.client_secret),
        timeout=5,
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


async def test_a_token_revoked_through_one_worker_is_refused_by_all_within_a_second(
    two_workers: Workers, make_client: MakeClient
) -> None:
    backend = await make_client(name="backend")
    # Blocking HTTP from here on, off the event loop.
    await asyncio.to_thread(revoke_and_watch, two_workers, backend)


def revoke_and_watch(workers: Workers, backend: CreatedClient) -> None:
    token = backend_token(workers, backend)
    # Both workers now remember it as valid.
    assert {status for _, status in workers.probe(token)} == {200}

    assert backend.client_secret is not None
    revoked = httpx.post(
        workers.url + "/oauth/revoke",
        data={"token": token},
        auth=(backend.client.id, backend.client_secret),
        timeout=5,
    )
    assert revoked.status_code == 200
    revoked_at = time.monotonic()
    answers: list[tuple[float, int]] = []
    while time.monotonic() - revoked_at < BOUND_SECONDS + 0.5:
        answers += workers.probe(token, rounds=5)
    late = [status for at, status in answers if at - revoked_at >= BOUND_SECONDS]
    assert late and set(late) == {401}, answers
    accepted = [at - revoked_at for at, status in answers if status == 200]
    print(f"last acceptance {max(accepted, default=0):.3f} s after revocation")
