"""The token endpoint's examples in /docs (app/oauth/documents.py), against CONTRACT §1 and
against the endpoint itself: each request example, sent with a real client's credentials,
gets an answer of the documented shape, and each error example is, to the byte, the body the
endpoint answers to its case.
"""

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import jwt
import pytest
from fastapi import FastAPI

from app.oauth.clients import CreatedClient
from app.oauth.documents import EXAMPLE_CLIENT_ID, EXAMPLE_CLIENT_SECRET, TokenResponse

from ..conftest import MakeClient

TOKEN_URL = "/oauth/access_token"
FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
CONTRACT_KEYS = {"access_token", "token_type", "expires_in", "expires", "identifier", "scope"}


def token_operation(app: FastAPI) -> dict[str, Any]:
    operation: dict[str, Any] = app.openapi()["paths"][TOKEN_URL]["post"]
    return operation


def values(media: dict[str, Any]) -> dict[str, Any]:
    return {name: example["value"] for name, example in media["examples"].items()}


def answer_examples(app: FastAPI, status: int) -> dict[str, Any]:
    return values(token_operation(app)["responses"][str(status)]["content"][JSON])


def test_token_answer_examples_have_the_contract_shape(app: FastAPI) -> None:
    examples = answer_examples(app, 200)
    assert set(examples) == {"implicit", "client_credentials"}
    for grant_type, body in examples.items():
        assert set(body) == CONTRACT_KEYS
        assert type(body["expires"]) is int and type(body["expires_in"]) is int
        assert body["expires"] < 10**10  # epoch seconds, never milliseconds
        assert (body["token_type"], body["identifier"]) == ("Bearer", grant_type)
        TokenResponse.model_validate(body)  # the model the schema's answers are checked against
    assert examples["implicit"]["scope"] == "read"
    assert examples["client_credentials"]["scope"] == "read write"


def test_request_examples_are_the_same_for_both_media_types(app: FastAPI) -> None:
    content = token_operation(app)["requestBody"]["content"]
    assert set(content) == {FORM, JSON}
    assert values(content[FORM]) == values(content[JSON])
    examples = values(content[FORM])
    assert set(examples) == {"implicit", "client_secret_post", "client_secret_basic"}
    assert examples["client_secret_basic"] == {"grant_type": "client_credentials"}


def with_client(example: dict[str, str], created: CreatedClient) -> dict[str, str]:
    """The example, with the placeholder credentials replaced by `created`'s."""
    real = {EXAMPLE_CLIENT_ID: created.client.id, EXAMPLE_CLIENT_SECRET: created.client_secret}
    return {name: real.get(value) or value for name, value in example.items()}


@pytest.mark.parametrize("media_type", [FORM, JSON])
async def test_each_request_example_gets_the_documented_answer(
    app: FastAPI, http: httpx.AsyncClient, make_client: MakeClient, media_type: str
) -> None:
    shop = await make_client(name="shop")  # confidential: its id alone also gets implicit
    assert shop.client_secret is not None
    answers = answer_examples(app, 200)
    requests = values(token_operation(app)["requestBody"]["content"][media_type])
    for name, example in requests.items():
        sent = with_client(example, shop)
        auth = (shop.client.id, shop.client_secret) if name == "client_secret_basic" else None
        if media_type == FORM:
            response = await http.post(TOKEN_URL, data=sent, auth=auth)
        else:
            response = await http.post(TOKEN_URL, json=sent, auth=auth)
        assert response.status_code == 200, (name, response.text)
        answer, documented = response.json(), answers[example["grant_type"]]
        assert {key: type(value) for key, value in answer.items()} == {
            key: type(value) for key, value in documented.items()
        }
        assert (answer["identifier"], answer["scope"]) == (
            documented["identifier"],
            documented["scope"],
        )
        issued_at = jwt.decode(answer["access_token"], options={"verify_signature": False})["iat"]
        assert answer["expires"] == issued_at + answer["expires_in"]


Send = Callable[[httpx.AsyncClient, MakeClient], Awaitable[httpx.Response]]


async def _no_grant_type(http: httpx.AsyncClient, make_client: MakeClient) -> httpx.Response:
    shop = await make_client(name="shop", public=True)
    return await http.post(TOKEN_URL, data={"client_id": shop.client.id})


async def _unknown_grant(http: httpx.AsyncClient, make_client: MakeClient) -> httpx.Response:
    shop = await make_client(name="shop", public=True)
    return await http.post(TOKEN_URL, data={"grant_type": "password", "client_id": shop.client.id})


async def _grant_not_allowed(http: httpx.AsyncClient, make_client: MakeClient) -> httpx.Response:
    backend = await make_client(name="backend", grant_types=["client_credentials"])
    form = {"grant_type": "implicit", "client_id": backend.client.id}
    return await http.post(TOKEN_URL, data=form)


async def _too_much_scope(http: httpx.AsyncClient, make_client: MakeClient) -> httpx.Response:
    shop = await make_client(name="shop", public=True)
    form = {"grant_type": "implicit", "client_id": shop.client.id, "scope": "write"}
    return await http.post(TOKEN_URL, data=form)


async def _wrong_secret(http: httpx.AsyncClient, make_client: MakeClient) -> httpx.Response:
    backend = await make_client(name="backend")
    form = {"grant_type": "client_credentials"}
    return await http.post(TOKEN_URL, data=form, auth=(backend.client.id, "wrong"))


async def _too_many(http: httpx.AsyncClient, make_client: MakeClient) -> httpx.Response:
    shop = await make_client(name="shop", public=True)
    form = {"grant_type": "implicit", "client_id": shop.client.id}
    for _ in range(2):  # the limit, set below
        assert (await http.post(TOKEN_URL, data=form)).status_code == 200
    return await http.post(TOKEN_URL, data=form)


ERROR_CASES: dict[tuple[int, str], Send] = {
    (400, "invalid_request"): _no_grant_type,
    (400, "unsupported_grant_type"): _unknown_grant,
    (400, "unauthorized_client"): _grant_not_allowed,
    (400, "invalid_scope"): _too_much_scope,
    (401, "invalid_client"): _wrong_secret,
    (429, "slow_down"): _too_many,
}


def test_every_error_example_has_a_case(app: FastAPI) -> None:
    documented = {
        (int(status), name)
        for status, response in token_operation(app)["responses"].items()
        if status != "200"
        for name in response["content"][JSON]["examples"]
    }
    assert documented == set(ERROR_CASES)


@pytest.mark.settings(token_rate_limit_per_address="2/minute")
@pytest.mark.parametrize(("status", "error"), ERROR_CASES, ids=[e for _, e in ERROR_CASES])
async def test_each_error_example_is_what_the_endpoint_answers(
    app: FastAPI, http: httpx.AsyncClient, make_client: MakeClient, status: int, error: str
) -> None:
    response = await ERROR_CASES[status, error](http, make_client)
    documented = token_operation(app)["responses"][str(status)]
    assert response.status_code == status, response.text
    assert response.json() == documented["content"][JSON]["examples"][error]["value"]
    for header, about in documented.get("headers", {}).items():
        assert header.lower() in response.headers
        if header == "WWW-Authenticate":
            assert response.headers[header] == about["examples"][error]["value"]
