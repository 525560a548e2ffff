"""The bare app Keyhouse is measured against: the same HTTP work, no OAuth work.

`POST /oauth/access_token` reads the raw body, parses it exactly as Keyhouse does
(`app.oauth.requests`: `parse_qsl(..., keep_blank_values=True, strict_parsing=True)`, repeated
names refused, empty values dropped), checks that the parameters the grant needs are present,
and answers 200 with the same headers as Keyhouse and a JSON body of the same shape and exactly
the same length. It does not authenticate a client or sign anything: that work is what the
benchmark prices. Each response is built and serialised per request, as Keyhouse builds its
own; nothing is cached by input.

Set by `bench/run.py` from what Keyhouse answered:

- `BENCH_BODY_BYTES` (JSON, e.g. `{"client_credentials": 775, "implicit": 737}`): the body
  length per grant; the dummy `access_token` is padded to reach it.
- `BENCH_HEADERS` (JSON): Keyhouse's response headers other than those Uvicorn and Starlette
  write for both apps (date, server, content-length, content-type); without it, the two
  `no-store` headers.
"""

import json
import os
import time
from typing import Any
from urllib.parse import parse_qsl

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
SCOPES = {"client_credentials": "read write", "implicit": "read"}
# Parameters each grant needs in the body (client_secret_post for client_credentials).
REQUIRED = {
    "client_credentials": ("client_id", "client_secret"),
    "implicit": ("client_id",),
}
TTL = 3600


def _body(access_token: str, grant_type: str, expires: int) -> dict[str, Any]:
    # The fields and order of Keyhouse's `IssuedToken.response_body()`.
    return {
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": TTL,
        "expires": expires,
        "identifier": grant_type,
        "scope": SCOPES[grant_type],
    }


def _dummy_tokens(lengths: dict[str, int]) -> dict[str, str]:
    """For each grant, a dummy access token that makes the whole body `lengths[grant]` bytes."""
    expires = int(time.time()) + TTL  # ten digits until 2286, like Keyhouse's
    tokens: dict[str, str] = {}
    for grant_type, length in lengths.items():
        if grant_type not in SCOPES:
            raise ValueError(f"unknown grant type {grant_type!r} in BENCH_BODY_BYTES")
        overhead = len(orjson.dumps(_body("", grant_type, expires)))
        if length < overhead:
            raise ValueError(f"BENCH_BODY_BYTES[{grant_type}] = {length} is below {overhead}")
        tokens[grant_type] = "x" * (length - overhead)
    return tokens


def _error(status: int, error: str) -> Response:
    return Response(orjson.dumps({"error": error}), status, NO_STORE, "application/json")


TOKENS = _dummy_tokens(json.loads(os.environ.get("BENCH_BODY_BYTES", "{}")))
HEADERS: dict[str, str] = json.loads(os.environ.get("BENCH_HEADERS") or json.dumps(NO_STORE))

app = FastAPI(title="Keyhouse benchmark baseline")


@app.post("/oauth/access_token")
async def issue_token(request: Request) -> Response:
    body = await request.body()
    try:
        pairs = parse_qsl(body.decode(), keep_blank_values=True, strict_parsing=True)
    except (UnicodeDecodeError, ValueError):
        return _error(400, "invalid_request")
    params = dict(pairs)
    if len(params) != len(pairs):
        return _error(400, "invalid_request")
    params = {name: value for name, value in params.items() if value}
    grant_type = params.get("grant_type")
    if grant_type is None:
        return _error(400, "invalid_request")
    token = TOKENS.get(grant_type)
    if token is None:
        return _error(400, "unsupported_grant_type")
    if any(name not in params for name in REQUIRED[grant_type]):
        return _error(400, "invalid_request")
    content = orjson.dumps(_body(token, grant_type, int(time.time()) + TTL))
    return Response(content, media_type="application/json", headers=HEADERS)
