"""The /v2 conventions' limits on input (`app/http/jsonapi.py`): JSON bodies nested too deeply, and
lists asked with too many query parameters, are 400s in the JSON:API error format."""

import re
import uuid
from collections.abc import Iterable, Iterator

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from app.http.jsonapi import MAX_QUERY_PARAMETERS, JsonApiRoute
from app.http.nesting import MAX_JSON_DEPTH
from app.main import create_app
from app.oauth.errors import OAuthRoute
from app.runtime.settings import Settings

from ..conftest import MakeClient
from ..customers.shoppers import backend_token

JSON = {"Content-Type": "application/json"}
TOO_DEEP = {
    "errors": [
        {"status": 400, "title": "Bad Request", "detail": "The JSON body is nested too deeply."}
    ]
}


def api_routes(routes: Iterable[BaseRoute]) -> Iterator[APIRoute]:
    """Every APIRoute, those of included routers too (FastAPI keeps their routers whole)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from api_routes(included.routes)


def routes_reading_bodies() -> list[APIRoute]:
    app = create_app(Settings(database_url="sqlite+aiosqlite:///:memory:"))  # never started
    return [route for route in api_routes(app.routes) if route.body_field]


def test_every_route_that_reads_a_json_body_measures_it_first() -> None:
    # The OAuth routes read their bodies by hand (app/oauth/requests.py), which measures them.
    unmeasured = [
        route.path
        for route in routes_reading_bodies()
        if not isinstance(route, JsonApiRoute | OAuthRoute)
    ]
    assert unmeasured == []


def concrete(path: str) -> str:
    """`path` with each `{parameter}` filled: the body is measured before they are validated."""
    return re.sub(r"\{[^}]+\}", str(uuid.uuid4()), path)


WRITES = [
    pytest.param(method, route.path, id=f"{method} {route.path}")
    for route in routes_reading_bodies()
    for method in sorted(route.methods)
]


@pytest.mark.parametrize(("method", "path"), WRITES)
@pytest.mark.parametrize(
    "body",
    [b"[" * 2000, b'{"data": ' + b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH + b"}"],
    ids=["2000 levels", "one level too many"],
)
async def test_a_body_nested_too_deeply_is_a_400_on_every_route(
    http: httpx.AsyncClient, method: str, path: str, body: bytes
) -> None:
    response = await http.request(method, concrete(path), content=body, headers=JSON)
    assert response.status_code == 400
    assert response.json() == TOO_DEEP


async def test_a_body_as_deep_as_allowed_goes_on_to_validation(http: httpx.AsyncClient) -> None:
    inner = MAX_JSON_DEPTH - 1
    body = b'{"data": ' + b"[" * inner + b"]" * inner + b"}"
    response = await http.post("/v2/products", content=body, headers=JSON)
    assert response.status_code == 401  # the body was read; the missing token is what counts


async def test_a_body_of_another_type_is_not_measured_as_json(http: httpx.AsyncClient) -> None:
    text = {"Content-Type": "text/plain"}
    response = await http.post("/v2/products", content=b"[" * 2000, headers=text)
    assert response.status_code == 401  # FastAPI does not parse it: the missing token counts


@pytest.mark.parametrize("path", ["/v2/products", "/v2/orders", "/v2/customers"])
async def test_a_list_with_too_many_query_parameters_is_a_400(
    http: httpx.AsyncClient, make_client: MakeClient, app: FastAPI, path: str
) -> None:
    token = await backend_token(http, await make_client(name="backend"))
    query = "&".join(f"p{n}=1" for n in range(MAX_QUERY_PARAMETERS + 1))
    response = await http.get(f"{path}?{query}", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 400
    assert response.json()["errors"][0]["detail"] == "The query has too many parameters."
    query = "&".join(f"p{n}=1" for n in range(MAX_QUERY_PARAMETERS))
    response = await http.get(f"{path}?{query}", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
