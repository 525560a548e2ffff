"""The OpenAPI schema behind /docs: the bearer scheme, and on every protected operation the
scopes it needs, which must be the scopes the app enforces (CONTRACT §4).

The schema is read from the app, as /docs reads it. Its security requirements are compared with
the scope checks in each route's dependencies, and then with what the app answers, for every
documented operation, to no token, a made-up token, and tokens short of one scope or another.
"""

import typing
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts

from app.http.security import (
    ACCESS_TOKEN,
    CUSTOMER_TOKEN,
    CUSTOMER_TOKEN_HEADER,
    ReadCaller,
    WriteCaller,
)
from app.oauth.stores import Store
from app.runtime.db import Database

from .conftest import MakeClient
from .customers.shoppers import TOKEN_URL, backend_token, headers
from .world import World, build_world

# The callable behind both aliases, and the scopes each asks of it.
SCOPE_CHECK = typing.get_args(ReadCaller)[1].dependency
assert typing.get_args(WriteCaller)[1].dependency is SCOPE_CHECK

PUBLIC_OPERATIONS = {
    ("POST", "/oauth/access_token"),
    ("POST", "/oauth/revoke"),
    ("POST", "/oauth/introspect"),
    ("GET", "/.well-known/jwks.json"),
    ("GET", "/.well-known/oauth-authorization-server"),
    # A shopper's browser signing in with a login provider (app/customers/oidc).
    ("GET", "/oauth/customers/login/{provider}"),
    ("GET", "/oauth/customers/login/callback"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
}
# CONTRACT §4: what an implicit token may do, and what only a client_credentials token may.
READ_OPERATIONS = [
    ("GET", "/v2/login-providers"),
    ("GET", "/v2/products"),
    ("GET", "/v2/products/{product_id}"),
    ("POST", "/v2/customers"),
    ("GET", "/v2/carts/{cart_ref}"),
    ("GET", "/v2/carts/{cart_ref}/items"),
    ("POST", "/v2/carts/{cart_ref}/items"),
    ("PUT", "/v2/carts/{cart_ref}/items/{item_id}"),
    ("DELETE", "/v2/carts/{cart_ref}/items/{item_id}"),
    ("POST", "/v2/carts/{cart_ref}/checkout"),
]
WRITE_OPERATIONS = [
    ("POST", "/v2/products"),
    ("PUT", "/v2/products/{product_id}"),
    ("DELETE", "/v2/products/{product_id}"),
    ("GET", "/v2/customers"),
    ("DELETE", "/v2/customers/{customer_id}"),
    ("PUT", "/v2/orders/{order_id}"),
]


def operations(schema: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            yield method.upper(), path, operation


def checked_scopes(dependant: Dependant) -> set[str]:
    """Every scope the route's dependencies check, wherever `ReadCaller` or `WriteCaller` is."""
    found: set[str] = set()
    for sub in dependant.dependencies:
        if sub.call is SCOPE_CHECK:
            found |= set(sub.own_oauth_scopes or [])
        found |= checked_scopes(sub)
    return found


def documented_scopes(operation: dict[str, Any]) -> list[str]:
    (alone, with_customer) = operation["security"]
    assert alone[ACCESS_TOKEN] == with_customer[ACCESS_TOKEN]
    assert set(with_customer) == {ACCESS_TOKEN, CUSTOMER_TOKEN}
    scopes: list[str] = alone[ACCESS_TOKEN]
    return scopes


def test_security_schemes(app: FastAPI) -> None:
    schemes = app.openapi()["components"]["securitySchemes"]
    assert set(schemes) == {ACCESS_TOKEN, CUSTOMER_TOKEN}
    assert schemes[ACCESS_TOKEN] | {"description": ""} == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "",
    }
    assert schemes[CUSTOMER_TOKEN] | {"description": ""} == {
        "type": "apiKey",
        "in": "header",
        "name": "X-Moltin-Customer-Token",
        "description": "",
    }


def test_every_operation_documents_the_scopes_its_dependencies_check(app: FastAPI) -> None:
    schema = app.openapi()
    # The app's routes as FastAPI serves and documents them (those of included routers too).
    routes = [r for r in iter_route_contexts(app.routes) if isinstance(r.original_route, APIRoute)]
    documented = {(method, path) for method, path, _ in operations(schema)}
    assert documented == {(m, r.path_format) for r in routes for m in r.methods or ()}
    for route in routes:
        scopes = checked_scopes(route.dependant)
        for method in route.methods or ():
            operation = schema["paths"][route.path_format][method.lower()]
            where = (method, route.path_format)
            if not scopes:
                assert "security" not in operation, where
                continue
            expected = [scope for scope in ("read", "write") if scope in scopes]
            assert documented_scopes(operation) == expected, where
            sentence = f"Requires an access token with scope `{' '.join(expected)}`"
            assert operation["description"].startswith(sentence), where


def test_everything_under_v2_is_protected_and_nothing_else(app: FastAPI) -> None:
    for method, path, operation in operations(app.openapi()):
        assert ("security" in operation) == path.startswith("/v2/"), (method, path)
        if "security" not in operation:
            assert (method, path) in PUBLIC_OPERATIONS


@pytest.mark.parametrize(("method", "path"), READ_OPERATIONS)
def test_what_implicit_tokens_may_do_needs_read(app: FastAPI, method: str, path: str) -> None:
    operation = app.openapi()["paths"][path][method.lower()]
    assert documented_scopes(operation) == ["read"]


@pytest.mark.parametrize(("method", "path"), WRITE_OPERATIONS)
def test_what_backends_alone_may_do_needs_write(app: FastAPI, method: str, path: str) -> None:
    operation = app.openapi()["paths"][path][method.lower()]
    assert "write" in documented_scopes(operation)


async def write_only_token(http: httpx.AsyncClient, make_client: MakeClient) -> str:
    """A client_credentials token narrowed to `write` alone."""
    client = await make_client(name="writer")
    assert client.client_secret is not None
    form = {"grant_type": "client_credentials", "scope": "write"}
    response = await http.post(TOKEN_URL, data=form, auth=(client.client.id, client.client_secret))
    assert response.json()["scope"] == "write", response.text
    token: str = response.json()["access_token"]
    return token


def example(operation: dict[str, Any], status: int, name: str) -> tuple[Any, str]:
    """The documented example `name` of a `status` answer: its body, and its challenge."""
    response = operation["responses"][str(status)]
    body = response["content"]["application/json"]["examples"][name]["value"]
    challenge = response["headers"]["WWW-Authenticate"]["examples"][name]["value"]
    return body, challenge


def assert_is_example(response: httpx.Response, operation: dict[str, Any], name: str) -> None:
    body, challenge = example(operation, response.status_code, name)
    assert (response.json(), response.headers["www-authenticate"]) == (body, challenge)


METHOD_ORDER = ["GET", "POST", "PUT", "DELETE"]  # the world's rows deleted last


async def test_documented_scopes_are_the_enforced_ones(
    app: FastAPI,
    http: httpx.AsyncClient,
    make_client: MakeClient,
    database: Database,
    default_store: Store,
) -> None:
    """Each protected operation, sent without a body: the scope checks run first, and what
    they let through fails on the body (400) or goes on to its answer."""
    world: World = await build_world(http, make_client, database, default_store.id)
    tokens = {  # the backend last: its requests change the world
        frozenset({"read"}): world.headers("implicit"),
        frozenset({"write"}): headers(await write_only_token(http, make_client)),
        frozenset({"read", "write"}): world.headers("backend"),
    }
    protected = [op for op in operations(app.openapi()) if "security" in op[2]]
    protected.sort(key=lambda op: METHOD_ORDER.index(op[0]))
    assert len(protected) > 20
    for method, path, operation in protected:
        url = path.format(**world.path_parameters())
        needed = set(documented_scopes(operation))
        answer = await http.request(method, url)
        assert answer.status_code == 401, (method, path)
        assert_is_example(answer, operation, "missing_token")
        answer = await http.request(method, url, headers=headers("made-up"))
        assert answer.status_code == 401, (method, path)
        assert_is_example(answer, operation, "invalid_token")
        for scopes, sent in tokens.items():
            answer = await http.request(method, url, headers=sent)
            missing = needed - scopes
            if missing:
                assert answer.status_code == 403, (method, path, scopes, answer.text)
                (scope,) = [
                    s for s in missing if f'scope="{s}"' in answer.headers["www-authenticate"]
                ]
                assert_is_example(answer, operation, f"without_{scope}")
            elif "write" in scopes:  # a read-only token may meet a rule of the route's own
                assert answer.status_code not in (401, 403), (method, path, scopes, answer.text)


async def test_docs_page_serves_the_schema(app: FastAPI, http: httpx.AsyncClient) -> None:
    page = await http.get("/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "swagger-ui" in page.text and "/openapi.json" in page.text
    served = await http.get("/openapi.json")
    assert served.status_code == 200
    assert served.json() == app.openapi()


async def test_a_token_is_verified_once_whatever_scopes_the_route_checks(
    app: FastAPI,
    http: httpx.AsyncClient,
    make_client: MakeClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # FastAPI resolves a dependency once per set of scopes asked of it when it, or one below
    # it, is a security scheme; the verification must not be one of those.
    backend = headers(await backend_token(http, await make_client(name="backend")))
    verifier = app.state.token_verifier
    calls: list[str] = []
    verify = verifier.access_token

    async def counted(token: str) -> Any:
        calls.append(token)
        return await verify(token)

    monkeypatch.setattr(verifier, "access_token", counted)
    # `WriteCaller`, and `ReadCaller` through the product's own dependency
    answer = await http.delete(f"/v2/products/{uuid.uuid4()}", headers=backend)
    assert answer.status_code == 404
    assert len(calls) == 1


def test_the_routes_of_a_shopper_alone_require_their_header(app: FastAPI) -> None:
    # The customer token is a security scheme beside the bearer token on every /v2 route; where a
    # route needs it, it is also a required header, which a generated client must send.
    by_id = {op["operationId"]: op for _, _, op in operations(app.openapi())}
    needing = {
        operation_id
        for operation_id, operation in by_id.items()
        for parameter in operation.get("parameters", [])
        if parameter["name"] == CUSTOMER_TOKEN_HEADER and parameter["required"]
    }
    assert needing == {
        "change_password",
        "revoke_current_customer_token",
        "request_email_change",
        "start_provider_link",
    }
