"""Schemathesis against the app's own OpenAPI schema: every check, every phase, no failure.

The run is Schemathesis's own engine, as `schemathesis run --checks all` runs it: the schema's
examples, the coverage phase (each parameter's boundaries, and the methods a path does not
serve), fuzzing with valid and invalid requests, and the stateful phase, which follows the
schema's links from what a request made to the operations that read, change and delete it.
Every check is on, `positive_data_acceptance` and `negative_data_rejection` included: a request
the schema allows must not be refused for its shape, and one it forbids must be refused.

The requests carry real tokens of a small store built through the API (tests/world.py): a
backend's `client_credentials` token, a storefront's read-only implicit token, and the
storefront's token with a shopper's customer token beside it. The bearer token goes in as the
schema's own security scheme, so that `ignored_auth` can send each request without it.

What no OpenAPI document can say, Schemathesis is told through its hooks, before each request
(tests/fuzz_hooks.py): a product's prices name each currency once, and a stateful step's body
names related resources that exist (and no provider's login code, which no step can have). No
failure is excused after the fact.

Each operation gets a small, fixed number of examples per phase, derandomized, so that every
run sends the same requests; `KEYHOUSE_FUZZ_EXAMPLES=200` looks deeper. The engine calls ASGI
apps on an event loop of its own, so it is given a bridge that hands each request over to the
app on the test's event loop, where the app, its lifespan and its database connections live.
"""

import asyncio
import os
import time
from dataclasses import dataclass, field

import httpx
import pytest
import schemathesis
import schemathesis.engine
from fastapi import FastAPI
from schemathesis.engine import Status, events
from schemathesis.engine.recorder import ScenarioRecorder
from starlette.types import ASGIApp, Receive, Scope, Send

from app.http.security import ACCESS_TOKEN
from app.oauth.stores import Store
from app.runtime.db import Database
from app.runtime.settings import Settings

from . import fuzz_hooks
from .conftest import TEST_ISSUER, MakeClient
from .smtp import MailServer, with_mail
from .world import Kind, World, build_world

# Small and fixed for CI (each token's run takes under a minute); set it to look deeper. The
# stateful phase follows links a few requests deep each time: it gets more runs than the others.
EXAMPLES_PER_OPERATION = int(os.environ.get("KEYHOUSE_FUZZ_EXAMPLES", "8"))
STATEFUL_EXAMPLES = 5 * EXAMPLES_PER_OPERATION
SEED = 20261207
# Operations a token's run leaves out, because its requests are not that caller's; each is in
# the other runs. A shopper's run keeps its customer token: logging it out would leave the rest
# of the run a row of 401s (the stateful phase's fresh logins log out). Nor does it sign up: a
# sign-up is a visitor's, made with the storefront's token alone (docs/contract.md §4 gives it no
# shopper's entry), and what the run would do next with the new customer, read, change or delete
# them with the shopper's token, is rightly a 404 (one shopper sees no other).
NOT_IN_RUN: dict[Kind, list[str]] = {
    "customer": ["revoke_current_customer_token", "create_customer"],
}


def bridge(http: httpx.AsyncClient, loop: asyncio.AbstractEventLoop) -> ASGIApp:
    """An ASGI app that forwards each request, read whole, to the app behind `http` on `loop`."""

    async def forward(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":  # the real app's lifespan is the `app` fixture's
            while (message := await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        body, more = b"", True
        while more:
            message = await receive()
            body, more = body + message.get("body", b""), message.get("more_body", False)
        query = b"?" + scope["query_string"] if scope["query_string"] else b""
        url = httpx.URL(TEST_ISSUER).copy_with(raw_path=scope["raw_path"] + query)
        request = http.build_request(scope["method"], url, headers=scope["headers"], content=body)
        answer = await asyncio.wrap_future(
            asyncio.run_coroutine_threadsafe(http.send(request), loop)
        )
        start = {"type": "http.response.start", "status": answer.status_code}
        await send({**start, "headers": answer.headers.raw})
        await send({"type": "http.response.body", "body": answer.content})

    return forward


def engine_config(bearer: str, headers: dict[str, str]) -> schemathesis.Config:
    """Every check and phase, a fixed seed, and the caller's credentials. Schemathesis signs
    no users up itself; the security headers are ours, not generated."""
    return schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "workers": 1,
            "headers": headers,
            "auth": {"openapi": {ACCESS_TOKEN: {"bearer": bearer}}, "auto-signup": False},
            "checks": {"enabled": True},
            "phases": {
                "enabled": True,
                "stateful": {"generation": {"max-examples": STATEFUL_EXAMPLES}},
            },
            "generation": {
                "max-examples": EXAMPLES_PER_OPERATION,
                "deterministic": True,
                "with-security-parameters": False,
            },
        }
    )


@dataclass
class Report:
    """What a run found: its failures (with a curl line each), and the links it followed."""

    failures: list[str] = field(default_factory=list)
    links_covered: set[str] = field(default_factory=set)
    links_total: int = 0

    def add(self, recorder: ScenarioRecorder) -> None:
        for checks in recorder.checks.values():
            for check in checks:
                if check.status != Status.FAILURE or check.failure_info is None:
                    continue
                failure = check.failure_info.failure
                self.failures.append(f"{failure.title}\n{check.failure_info.code_sample}")
        self.links_covered |= {
            case.transition.id
            for case in recorder.cases.values()
            if case.transition is not None and case.is_transition_applied
        }


def run_engine(
    app: FastAPI, forward: ASGIApp, config: schemathesis.Config, kind: Kind, world: World
) -> Report:
    schema = schemathesis.openapi.from_dict(app.openapi(), config=config)
    schema.app = forward
    fuzz_hooks.register(schema, world.accounts)
    for operation_id in NOT_IN_RUN.get(kind, []):
        schema = schema.exclude(operation_id=operation_id)
    report = Report()
    for event in schemathesis.engine.from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            report.add(event.recorder)
        elif isinstance(event, events.PhaseStarted) and event.payload is not None:
            report.links_total = event.payload.transitions_selected
        elif isinstance(event, events.NonFatalError | events.FatalError):
            report.failures.append(f"error: {event!r}")
        elif isinstance(event, events.EngineFinished):
            report.failures += [f"{failure.title}: {failure.message}" for failure in event.failures]
    return report


@pytest.fixture(name="settings")
def settings_with_mail(settings: Settings, mail_server: MailServer) -> Settings:
    """With mail and verification links configured, so the password reset and email
    verification routes are fuzzed as they serve (without them, they answer every request with
    a 404: not offered here)."""
    link = "https://shop.example/#verify_token={token}"
    return with_mail(settings, mail_server, email_verification_url=link)


@pytest.fixture
async def world(
    http: httpx.AsyncClient, make_client: MakeClient, database: Database, default_store: Store
) -> World:
    return await build_world(http, make_client, database, default_store.id)


@pytest.mark.parametrize("kind", ["backend", "implicit", "customer"])
async def test_fuzz(app: FastAPI, http: httpx.AsyncClient, world: World, kind: Kind) -> None:
    forward = bridge(http, asyncio.get_running_loop())
    started = time.monotonic()
    sent = world.headers(kind)  # and the customer token beside it, for `customer`
    bearer = sent.pop("Authorization").removeprefix("Bearer ")
    config = engine_config(bearer, sent)
    report = await asyncio.to_thread(run_engine, app, forward, config, kind, world)
    covered = f"{len(report.links_covered)}/{report.links_total} links"
    print(f"fuzzed in {time.monotonic() - started:.1f}s, {covered}")
    assert not report.failures, "\n\n".join(report.failures)


def test_the_schema_documents_400_for_bad_input_never_422(app: FastAPI) -> None:
    # Validation errors are 400 in the errors format (app/http/errors.py); FastAPI documents 422.
    schema = app.openapi()
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            assert "422" not in responses, (method, path)
            if operation.get("parameters") or operation.get("requestBody"):
                assert "400" in responses, (method, path)
    assert "HTTPValidationError" not in schema["components"]["schemas"]
