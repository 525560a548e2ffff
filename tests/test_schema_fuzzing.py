"""Schemathesis against the app's own OpenAPI schema: no 500, no answer the schema does not allow.

Every operation gets a fixed, small number of generated requests, valid ones (positive) and
invalid ones (negative), derandomized so that every run sends the same requests. They carry real
tokens of a small store built through the API (tests/world.py) — a backend's `client_credentials`
token, a storefront's read-only implicit token, and the storefront's token with a shopper's
customer token beside it — so the fuzzer gets past authentication; the `ignored_auth` check
sends each request once more without a token, and once with a made-up one.

Hypothesis runs synchronously, so the fuzzing runs in a worker thread. Schemathesis calls ASGI
apps on an event loop of its own, so it is given a bridge that hands each request over to the
app on the test's event loop, where the app, its lifespan and its database connections live.
"""

import asyncio
import os
import re
import time
from collections.abc import Mapping
from typing import Any

import httpx
import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import Case, GenerationMode
from schemathesis.checks import CheckFunction
from schemathesis.specs.openapi import checks as openapi_checks
from starlette.types import ASGIApp, Receive, Scope, Send

from app.http.security import ACCESS_TOKEN
from app.oauth.stores import Store
from app.runtime.db import Database
from app.runtime.settings import Settings

from .conftest import TEST_ISSUER, MakeClient
from .smtp import MailServer, with_mail
from .world import Kind, World, build_world

# Small and fixed for CI (the file runs in well under a minute); set the variable to look deeper.
EXAMPLES_PER_OPERATION = int(os.environ.get("KEYHOUSE_FUZZ_EXAMPLES", "8"))

CHECKS: list[CheckFunction] = [
    schemathesis.checks.not_a_server_error,
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_headers_conformance,
    openapi_checks.response_schema_conformance,
    openapi_checks.negative_data_rejection,
    openapi_checks.ignored_auth,
    openapi_checks.unsupported_method,
    openapi_checks.allow_header_conformance,
    # Not `positive_data_acceptance`: a request that fits the schema may still rightly fail, since
    # the schema cannot say which ids exist (404), which carts hold items (checkout of an empty
    # cart is 400) or which email and password belong together (401).
]


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


METHOD_ORDER = ["GET", "POST", "PUT", "DELETE"]


def with_known_ids(case: Case, ids: Mapping[str, str]) -> Case:
    """The case, with the product it adds to a cart and the customer it checks out as known."""
    data = case.body.get("data") if isinstance(case.body, dict) else None
    if isinstance(data, dict):
        if data.get("type") == "cart_item" and "id" in data:
            data["id"] = ids["product_id"]
        customer = data.get("customer")
        if isinstance(customer, dict) and customer.get("id") is not None:
            customer["id"] = ids["customer_id"]
    return case


def fuzz_operation(
    operation: Any, mode: GenerationMode, sent: dict[str, str], ids: Mapping[str, str] | None
) -> str | None:
    """Fuzzes one operation, with generated ids or with `ids`; the failure found, if any."""
    if ids is None:
        strategy = operation.as_strategy(generation_mode=mode)
    else:
        names = re.findall(r"\{(\w+)\}", operation.path)
        path_parameters = {name: ids[name] for name in names}
        strategy = operation.as_strategy(generation_mode=mode, path_parameters=path_parameters)
        strategy = strategy.map(lambda case: with_known_ids(case, ids))

    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: a failure is shown as found
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case: Case) -> None:
        case.call_and_validate(headers=sent, checks=CHECKS)

    try:
        run()
    except Unsatisfiable:  # nothing to make invalid (no parameters, no body)
        return None
    # Each failure is reported, and the next operation fuzzed. (Schemathesis reports its checks'
    # failures as a group, which is not an `Exception`.)
    except (Exception, BaseExceptionGroup) as error:
        known = " with known ids" if ids else ""
        notes = "".join(f"\n{note}" for note in getattr(error, "__notes__", []))  # how to reproduce
        return f"{operation.label} ({mode.value}{known}): {type(error).__name__}: {error}{notes}"
    return None


def fuzz(
    app: FastAPI, forward: ASGIApp, bearer: str, sent: dict[str, str], ids: dict[str, str]
) -> list[str]:
    """Every operation, with generated ids, valid and invalid requests; then valid requests with
    the world's ids. Reads come first, then creations (an item added to the world's cart before
    its checkout), changes, and deletions last, so that the world's rows are there for the rest."""
    # The bearer token goes in as the schema's own security scheme, on every request: invalid
    # requests are invalid in their parameters and bodies, and `ignored_auth` tries each
    # operation without a token and with a made-up one. Schemathesis signs up no users itself.
    auth = {"openapi": {ACCESS_TOKEN: {"bearer": bearer}}, "auto-signup": False}
    generation = {"with-security-parameters": False}
    config = schemathesis.Config.from_dict({"auth": auth, "generation": generation})
    schema = schemathesis.openapi.from_dict(app.openapi(), config=config)
    schema.app = forward
    operations = [result.ok() for result in schema.get_all_operations()]
    operations.sort(key=lambda operation: METHOD_ORDER.index(operation.method.upper()))
    runs = [
        (operation, mode, None)
        for operation in operations
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    ]
    runs += [
        (operation, GenerationMode.POSITIVE, ids)
        for operation in operations
        if "{" in operation.path
    ]
    failures = [fuzz_operation(operation, mode, sent, known) for operation, mode, known in runs]
    return [failure for failure in failures if failure is not None]


@pytest.fixture(name="settings")
def settings_with_mail(settings: Settings, mail_server: MailServer) -> Settings:
    """With mail and verification links configured, so the password reset and email
    verification routes are fuzzed as they serve (without them, their requests are a 503,
    which the fuzzer counts as a server error)."""
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
    failures = await asyncio.to_thread(fuzz, app, forward, bearer, sent, world.path_parameters())
    print(f"fuzzed in {time.monotonic() - started:.1f}s")
    assert not failures, "\n\n".join(failures)


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
