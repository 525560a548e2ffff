"""Every row of the token endpoint's error table (CONTRACT §1), end to end.

Each case asserts the status, the hybrid RFC 6749 + JSON:API body and the key headers.
"""

import base64
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.oauth.clients import CreatedClient, disable_client
from app.runtime.db import Database

from ..conftest import MakeClient

TOKEN_URL = "/oauth/access_token"


@dataclass
class Clients:
    backend: CreatedClient
    storefront: CreatedClient
    disabled: CreatedClient
    backend_only: CreatedClient  # confidential, client_credentials only
    read_only: CreatedClient  # confidential, allowed scope "read"

    @property
    def secret(self) -> str:
        assert self.backend.client_secret is not None
        return self.backend.client_secret


@pytest.fixture
async def clients(make_client: MakeClient, database: Database) -> Clients:
    disabled = await make_client(name="disabled")
    async with database.sessions() as session:
        await disable_client(session, client_id=disabled.client.id, issuing_lag_seconds=1)
    return Clients(
        backend=await make_client(name="backend"),
        storefront=await make_client(name="storefront", public=True),
        disabled=disabled,
        backend_only=await make_client(name="backend only", grant_types=["client_credentials"]),
        read_only=await make_client(name="read only", scope="read"),
    )


def basic_header(value: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(value.encode()).decode()}


@dataclass
class Case:
    """One request and the error it must get."""

    status: int
    error: str
    form: Callable[[Clients], dict[str, str]] | None = None
    content: Callable[[Clients], bytes] | None = None
    headers: Callable[[Clients], dict[str, str]] = field(default=lambda _c: {})

    async def send(self, http: httpx.AsyncClient, clients: Clients) -> httpx.Response:
        headers = self.headers(clients)
        if self.content is not None:
            return await http.post(TOKEN_URL, content=self.content(clients), headers=headers)
        form = self.form(clients) if self.form else {}
        return await http.post(TOKEN_URL, data=form, headers=headers)


CC = "client_credentials"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}

CASES: dict[str, Case] = {
    # 401 invalid_client: the same body for unknown id, wrong secret and disabled client.
    "unknown client id": Case(
        401,
        "invalid_client",
        lambda c: {"grant_type": CC, "client_id": "no-such-client", "client_secret": c.secret},
    ),
    "wrong secret (post)": Case(
        401,
        "invalid_client",
        lambda c: {"grant_type": CC, "client_id": c.backend.client.id, "client_secret": "wrong"},
    ),
    "wrong secret (basic)": Case(
        401,
        "invalid_client",
        lambda c: {"grant_type": CC},
        headers=lambda c: basic_header(f"{c.backend.client.id}:wrong"),
    ),
    "secret of another client": Case(
        401,
        "invalid_client",
        lambda c: {"grant_type": CC, "client_id": c.read_only.client.id, "client_secret": c.secret},
    ),
    "disabled client, client_credentials": Case(
        401,
        "invalid_client",
        lambda c: {
            "grant_type": CC,
            "client_id": c.disabled.client.id,
            "client_secret": c.disabled.client_secret or "",
        },
    ),
    "disabled client, implicit": Case(
        401,
        "invalid_client",
        lambda c: {"grant_type": "implicit", "client_id": c.disabled.client.id},
    ),
    "unknown client id, implicit": Case(
        401, "invalid_client", lambda c: {"grant_type": "implicit", "client_id": "nobody"}
    ),
    "id with characters no client id has": Case(
        401, "invalid_client", lambda c: {"grant_type": "implicit", "client_id": "a\x00b'; --"}
    ),
    "public client asking client_credentials": Case(
        401,
        "invalid_client",
        lambda c: {"grant_type": CC, "client_id": c.storefront.client.id, "client_secret": "x"},
    ),
    "implicit with a wrong secret": Case(
        401,
        "invalid_client",
        lambda c: {
            "grant_type": "implicit",
            "client_id": c.backend.client.id,
            "client_secret": "x",
        },
    ),
    # 401 invalid_client: no client authentication at all.
    "client_credentials without secret": Case(
        401, "invalid_client", lambda c: {"grant_type": CC, "client_id": c.backend.client.id}
    ),
    "client_credentials without anything": Case(
        401, "invalid_client", lambda c: {"grant_type": CC}
    ),
    # 400 invalid_request.
    "missing grant_type": Case(
        400, "invalid_request", lambda c: {"client_id": c.backend.client.id}
    ),
    "empty grant_type": Case(400, "invalid_request", lambda c: {"grant_type": ""}),
    "repeated grant_type": Case(
        400,
        "invalid_request",
        content=lambda c: (
            f"grant_type=implicit&grant_type=implicit&client_id={c.backend.client.id}".encode()
        ),
        headers=lambda _c: FORM,
    ),
    "repeated client_id": Case(
        400,
        "invalid_request",
        content=lambda c: (
            f"grant_type=implicit&client_id={c.backend.client.id}&client_id={c.backend.client.id}"
        ).encode(),
        headers=lambda _c: FORM,
    ),
    "missing client_id, implicit": Case(
        400, "invalid_request", lambda c: {"grant_type": "implicit"}
    ),
    "secret without client_id": Case(
        400, "invalid_request", lambda c: {"grant_type": CC, "client_secret": c.secret}
    ),
    "malformed form": Case(
        400, "invalid_request", content=lambda _c: b"grant_type&&=", headers=lambda _c: FORM
    ),
    "form that is not UTF-8": Case(
        400,
        "invalid_request",
        content=lambda _c: b"grant_type=implicit&client_id=\xff\xfe",
        headers=lambda _c: FORM,
    ),
    "malformed JSON": Case(
        400,
        "invalid_request",
        content=lambda _c: b'{"grant_type": ',
        headers=lambda _c: {"Content-Type": "application/json"},
    ),
    "JSON array": Case(
        400,
        "invalid_request",
        content=lambda _c: b'["grant_type", "implicit"]',
        headers=lambda _c: {"Content-Type": "application/json"},
    ),
    "JSON with a non-string value": Case(
        400,
        "invalid_request",
        content=lambda _c: b'{"grant_type": "implicit", "client_id": 42}',
        headers=lambda _c: {"Content-Type": "application/json"},
    ),
    "JSON with an unpaired surrogate": Case(
        400,
        "invalid_request",
        # Valid JSON, but no UTF-8 string: it must not reach the secret's hash (a 500).
        content=lambda c: (
            f'{{"grant_type": "client_credentials", "client_id": "{c.backend.client.id}", '
            f'"client_secret": "\\ud800"}}'
        ).encode(),
        headers=lambda _c: {"Content-Type": "application/json"},
    ),
    "JSON with a repeated key": Case(
        400,
        "invalid_request",
        content=lambda c: (
            f'{{"grant_type": "implicit", "grant_type": "implicit", '
            f'"client_id": "{c.backend.client.id}"}}'
        ).encode(),
        headers=lambda _c: {"Content-Type": "application/json"},
    ),
    "unsupported content type": Case(
        400,
        "invalid_request",
        content=lambda _c: b"grant_type=implicit",
        headers=lambda _c: {"Content-Type": "text/plain"},
    ),
    "body too large": Case(
        400,
        "invalid_request",
        content=lambda _c: b"grant_type=implicit&pad=" + b"x" * 20_000,
        headers=lambda _c: FORM,
    ),
    "length of too many digits": Case(
        400,
        "invalid_request",
        content=lambda _c: b"grant_type=implicit",
        headers=lambda _c: {**FORM, "Content-Length": "9" * 5000},
    ),
    "Basic that is not base64": Case(
        400,
        "invalid_request",
        lambda _c: {"grant_type": CC},
        headers=lambda _c: {"Authorization": "Basic %%%not-base64%%%"},
    ),
    "Basic without a colon": Case(
        400, "invalid_request", lambda _c: {"grant_type": CC}, headers=lambda _c: basic_header("id")
    ),
    "Basic that is not UTF-8": Case(
        400,
        "invalid_request",
        lambda _c: {"grant_type": CC},
        headers=lambda _c: {"Authorization": "Basic " + base64.b64encode(b"\xff:\xfe").decode()},
    ),
    "Basic plus a body secret": Case(
        400,
        "invalid_request",
        lambda c: {"grant_type": CC, "client_secret": c.secret},
        headers=lambda c: basic_header(f"{c.backend.client.id}:{c.secret}"),
    ),
    "Basic plus a different body client_id": Case(
        400,
        "invalid_request",
        lambda c: {"grant_type": CC, "client_id": c.storefront.client.id},
        headers=lambda c: basic_header(f"{c.backend.client.id}:{c.secret}"),
    ),
    # 400 unsupported_grant_type / unauthorized_client.
    "unknown grant type": Case(
        400,
        "unsupported_grant_type",
        lambda c: {"grant_type": "password", "client_id": c.backend.client.id},
    ),
    "grant not allowed for this client": Case(
        400,
        "unauthorized_client",
        lambda c: {"grant_type": "implicit", "client_id": c.backend_only.client.id},
    ),
    # 400 invalid_scope.
    "implicit asking for write": Case(
        400,
        "invalid_scope",
        lambda c: {"grant_type": "implicit", "client_id": c.storefront.client.id, "scope": "write"},
    ),
    "more than the client may have": Case(
        400,
        "invalid_scope",
        lambda c: {
            "grant_type": CC,
            "client_id": c.read_only.client.id,
            "client_secret": c.read_only.client_secret or "",
            "scope": "read write",
        },
    ),
    "unknown scope": Case(
        400,
        "invalid_scope",
        lambda c: {
            "grant_type": CC,
            "client_id": c.backend.client.id,
            "client_secret": c.secret,
            "scope": "read admin",
        },
    ),
}


def assert_error_response(response: httpx.Response, status: int, error: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"
    body: dict[str, Any] = response.json()
    assert set(body) == {"error", "error_description", "errors"}
    assert body["error"] == error
    assert body["errors"] == [
        {"status": status, "title": error, "detail": body["error_description"]}
    ]
    if status == 401:
        assert response.headers["www-authenticate"].startswith("Basic ")
    else:
        assert "www-authenticate" not in response.headers
    return body


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
async def test_error_table(http: httpx.AsyncClient, clients: Clients, case: Case) -> None:
    response = await case.send(http, clients)
    assert_error_response(response, case.status, case.error)


async def test_unknown_wrong_and_disabled_are_indistinguishable(
    http: httpx.AsyncClient, clients: Clients
) -> None:
    names = ["unknown client id", "wrong secret (post)", "disabled client, client_credentials"]
    responses = [await CASES[name].send(http, clients) for name in names]
    assert len({response.content for response in responses}) == 1
    assert len({response.headers["www-authenticate"] for response in responses}) == 1


async def test_origin_not_listed_by_the_client_gets_no_token(
    http: httpx.AsyncClient, make_client: MakeClient
) -> None:
    shop = await make_client(public=True, origins=["https://shop.example"])
    response = await http.post(
        TOKEN_URL,
        data={"grant_type": "implicit", "client_id": shop.client.id},
        headers={"Origin": "https://evil.example"},
    )
    assert_error_response(response, 400, "unauthorized_client")
    assert "access-control-allow-origin" not in response.headers


RequestMaker = Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]


@pytest.mark.parametrize(
    "send",
    [
        lambda http: http.get(TOKEN_URL),
        lambda http: http.put(TOKEN_URL, data={"grant_type": "implicit"}),
    ],
    ids=["GET", "PUT"],
)
async def test_other_methods_are_405_in_the_errors_envelope(
    http: httpx.AsyncClient, send: RequestMaker
) -> None:
    response = await send(http)
    assert response.status_code == 405
    assert response.json()["errors"][0]["status"] == 405
    assert response.headers["allow"] == "OPTIONS, POST"


async def test_chunked_body_over_the_limit_is_refused(
    http: httpx.AsyncClient, clients: Clients
) -> None:
    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: sent chunked
        yield f"grant_type=implicit&client_id={clients.storefront.client.id}&pad=".encode()
        for _ in range(20):
            yield b"x" * 1024

    response = await http.post(TOKEN_URL, content=chunks(), headers=FORM)
    assert "content-length" not in response.request.headers
    assert_error_response(response, 400, "invalid_request")


async def test_unexpected_failure_is_a_clean_500(
    app: FastAPI, clients: Clients, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*_args: object) -> None:
        raise RuntimeError("signing backend exploded: secret-ish detail")

    monkeypatch.setattr(app.state.token_issuer, "issue", broken)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://keyhouse.test") as http:
        response = await http.post(
            TOKEN_URL, data={"grant_type": "implicit", "client_id": clients.storefront.client.id}
        )
    assert response.status_code == 500
    assert response.json() == {
        "errors": [
            {
                "status": 500,
                "title": "Internal Server Error",
                "detail": "Something went wrong on our side; the error has been logged.",
            }
        ]
    }
    assert "exploded" not in response.text


# Bodies that cost a parser more than their size suggests; each is refused before parsing.
JSON = {"Content-Type": "application/json"}
HOSTILE_BODIES: dict[str, tuple[bytes, dict[str, str], str]] = {
    # `json.loads` recursed into it and raised RecursionError: a 500.
    "nested JSON": (b"[" * 2000, JSON, "The JSON body is nested too deeply."),
    "nested objects": (b'{"a":' * 1000 + b"1" + b"}" * 1000, JSON, "nested too deeply."),
    "nested past the limit": (b'{"a":' + b"[" * 40 + b"]" * 40 + b"}", JSON, "nested too deeply."),
    "many form fields": (
        b"&".join([b"a%d=1" % n for n in range(33)]),
        FORM,
        "too many parameters.",
    ),
    "many JSON members": (
        b"{" + b",".join(b'"a%d":"1"' % n for n in range(33)) + b"}",
        JSON,
        "too many parameters.",
    ),
}
OAUTH_BODY_PATHS = [TOKEN_URL, "/oauth/token", "/oauth/revoke", "/oauth/introspect"]


@pytest.mark.parametrize("path", OAUTH_BODY_PATHS)
@pytest.mark.parametrize(("body", "headers", "says"), HOSTILE_BODIES.values(), ids=HOSTILE_BODIES)
async def test_hostile_bodies_are_invalid_requests_at_every_oauth_endpoint(
    http: httpx.AsyncClient, path: str, body: bytes, headers: dict[str, str], says: str
) -> None:
    response = await http.post(path, content=body, headers=headers)
    description = assert_error_response(response, 400, "invalid_request")["error_description"]
    assert description.endswith(says)


async def test_a_body_nested_as_deep_as_allowed_is_parsed(http: httpx.AsyncClient) -> None:
    # 32 levels are read (and then refused for what they hold, not for their depth).
    body = b'{"grant_type": ' + b"[" * 31 + b"]" * 31 + b"}"
    response = await http.post(TOKEN_URL, content=body, headers=JSON)
    description = assert_error_response(response, 400, "invalid_request")["error_description"]
    assert description == "The request body is not a valid form or JSON object."
