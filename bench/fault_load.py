"""The load of the fault scripts, and what its answers add up to.

A few httpx clients over loopback, each looping over its kinds of request until told to stop:
`client_credentials` and `implicit` token requests, `write` (a product created with a backend
token: each 201 is an acknowledged write, looked for in the database afterwards), `read` (a page
of 25 products) and `login` (a shopper's customer token, which the lockout counts in Redis).
Every answer is recorded with when it was sent and how long it took; no answer within
`REQUEST_TIMEOUT_SECONDS` is a `timeout`, a connection closed under a request is `dropped`.
"""

import asyncio
import contextlib
import itertools
import statistics
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
from harness import TOKEN_PATH, Client, fail

REQUEST_TIMEOUT_SECONDS = 5.0
EXPECTED = {"client_credentials": 200, "implicit": 200, "write": 201, "read": 200, "login": 200}
PASSWORD = "correct horse battery staple"  # noqa: S105 (the load's own shopper)


@dataclass(frozen=True, slots=True)
class Answer:
    kind: str
    sent: float  # monotonic
    took: float
    outcome: str  # the status ("200", "503"), or "timeout", "dropped"

    @property
    def succeeded(self) -> bool:
        return self.outcome == str(EXPECTED[self.kind])


@dataclass(frozen=True, slots=True)
class Callers:
    """Who the load acts as: a backend client, a public one, and a shopper of the store."""

    backend: Client
    public_id: str
    email: str


@dataclass
class Load:
    """One client per plan, each looping over its plan's kinds of request until stopped."""

    url: str
    callers: Callers
    plans: Sequence[Sequence[str]]
    answers: list[Answer] = field(default_factory=list)
    acknowledged: set[str] = field(default_factory=set)  # skus answered 201
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _skus: "itertools.count[int]" = field(default_factory=itertools.count)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator["Load"]:
        tasks = [asyncio.create_task(self._loop(plan)) for plan in self.plans]
        try:
            await asyncio.sleep(0)
            yield self
        finally:
            self._stop.set()
            await asyncio.wait_for(asyncio.gather(*tasks), REQUEST_TIMEOUT_SECONDS + 10)

    async def _loop(self, plan: Sequence[str]) -> None:
        limits = httpx.Limits(max_connections=1)  # one keep-alive connection per client
        timeout = httpx.Timeout(REQUEST_TIMEOUT_SECONDS)
        async with httpx.AsyncClient(base_url=self.url, timeout=timeout, limits=limits) as http:
            bearers = await self._bearers(http)
            while not self._stop.is_set():
                for kind in plan:
                    await self._send(http, kind, bearers)

    async def _bearers(self, http: httpx.AsyncClient) -> dict[str, str]:
        backend = self.callers.backend
        auth = (backend.client_id, backend.client_secret)
        form = {"grant_type": "client_credentials"}
        answer = await http.post(TOKEN_PATH, data=form, auth=auth)
        public = {"grant_type": "implicit", "client_id": self.callers.public_id}
        storefront = await http.post(TOKEN_PATH, data=public)
        if answer.status_code != 200 or storefront.status_code != 200:
            fail(f"no tokens before the fault: {answer.status_code}, {storefront.status_code}")
        return {
            "write": answer.json()["access_token"],
            "login": storefront.json()["access_token"],
        }

    async def _send(self, http: httpx.AsyncClient, kind: str, bearers: dict[str, str]) -> None:
        sent = time.monotonic()
        sku = None
        try:
            if kind == "client_credentials":
                backend = self.callers.backend
                auth = (backend.client_id, backend.client_secret)
                response = await http.post(TOKEN_PATH, data={"grant_type": kind}, auth=auth)
            elif kind == "implicit":
                form = {"grant_type": kind, "client_id": self.callers.public_id}
                response = await http.post(TOKEN_PATH, data=form)
            elif kind == "write":
                sku = f"FAULT-{next(self._skus)}"
                body = {"data": product(sku)}
                response = await http.post("/v2/products", json=body, headers=bearer(bearers))
            elif kind == "read":
                page = {"page[limit]": "25"}
                response = await http.get("/v2/products", params=page, headers=bearer(bearers))
            else:
                data = {"type": "token", "email": self.callers.email, "password": PASSWORD}
                headers = {"Authorization": f"Bearer {bearers['login']}"}
                response = await http.post(
                    "/v2/customers/tokens", json={"data": data}, headers=headers
                )
            outcome = str(response.status_code)
        except httpx.TimeoutException:
            outcome = "timeout"
        except httpx.TransportError:
            outcome = "dropped"
        if sku is not None and outcome == "201":
            self.acknowledged.add(sku)
        self.answers.append(Answer(kind, sent, time.monotonic() - sent, outcome))


def bearer(bearers: dict[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {bearers['write']}"}


def product(sku: str) -> dict[str, Any]:
    price = [{"amount": 100, "currency": "USD", "includes_tax": True}]
    return {
        "type": "product",
        "name": sku,
        "slug": sku.lower(),
        "sku": sku,
        "manage_stock": False,
        "price": price,
        "status": "live",
        "commodity_type": "physical",
    }


def sign_up_shopper(url: str, public_id: str) -> str:
    """A shopper of the store (its email): the one the `login` requests log in."""
    email = f"faults-{time.time_ns()}@example.com"
    with httpx.Client(base_url=url, timeout=REQUEST_TIMEOUT_SECONDS) as http:
        token = http.post(TOKEN_PATH, data={"grant_type": "implicit", "client_id": public_id})
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        data = {"type": "customer", "name": "Fault", "email": email, "password": PASSWORD}
        created = http.post("/v2/customers", json={"data": data}, headers=headers)
        if created.status_code != 201:
            fail(f"could not sign a shopper up: {created.status_code} {created.text[:200]}")
    return email


# --- what the answers add up to -------------------------------------------------------------


def outcomes(answers: Sequence[Answer]) -> dict[str, dict[str, int]]:
    """Per kind, how many answers had each outcome."""
    counts: dict[str, Counter[str]] = {}
    for answer in answers:
        counts.setdefault(answer.kind, Counter())[answer.outcome] += 1
    return {kind: dict(sorted(counted.items())) for kind, counted in sorted(counts.items())}


def errors(answers: Sequence[Answer]) -> dict[str, int]:
    """The answers that are neither the expected status nor a 503 or 429 (a refusal the
    contract allows), by class: `500`, `timeout`, `dropped`..."""
    allowed = {"503", "429"}
    counted = Counter(a.outcome for a in answers if not a.succeeded and a.outcome not in allowed)
    return dict(sorted(counted.items()))


def between(answers: Sequence[Answer], start: float, end: float) -> list[Answer]:
    return [answer for answer in answers if start <= answer.sent < end]


def latency_ms(answers: Sequence[Answer]) -> dict[str, float]:
    took = sorted(answer.took * 1000 for answer in answers)
    if not took:
        return {}
    p99 = took[min(len(took) - 1, int(len(took) * 0.99))]
    return {
        "p50": round(statistics.median(took), 2),
        "p99": round(p99, 2),
        "max": round(took[-1], 2),
    }


def recovery_seconds(answers: Sequence[Answer], kind: str, mended: float) -> float | None:
    """From `mended` to the first success of `kind` among the requests sent after it."""
    done = [a.sent + a.took for a in answers if a.kind == kind and a.sent >= mended and a.succeeded]
    return round(min(done) - mended, 3) if done else None


def failed_after(answers: Sequence[Answer], since: float) -> int:
    """Requests sent after `since` that did not get their expected answer."""
    return sum(not answer.succeeded for answer in answers if answer.sent >= since)
