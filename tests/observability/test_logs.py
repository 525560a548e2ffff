"""Server logs (`app/observability/logs.py`) and request ids (`app/http/request_id.py`), in-process.

The log tests apply the server's own logging config (`logging_config()`, as `keyhouse serve`
hands it to Uvicorn) at DEBUG, with stderr swapped for a buffer. `test_serve_logs.py` runs the
real server and checks its whole output for leaks.
"""

import io
import json
import logging
import logging.config
import os
import re
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import given, settings
from hypothesis import strategies as st

from app.oauth.clients import CreatedClient
from app.observability.audit import record_now
from app.observability.logs import (
    LOGGED_CHARS,
    JsonFormatter,
    RedactSecrets,
    TextFormatter,
    logging_config,
    redact,
)
from app.runtime.db import Database

from ..conftest import TEST_ISSUER, MakeClient

TOKEN_URL = "/oauth/access_token"
SHOP = "https://shop.example"
GENERATED_ID = re.compile(r"[0-9a-f]{32}")
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
# Shaped like the real things; none of them may reach a log line.
JWT = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJzaG9wcGVyIn0.c2lnbmF0dXJlLW9mLXRoZS10b2tlbg"
SECRET = "Zt3vQ9rWm2Kp7Lx4Yb8Nc1Hd6Fg0Js5Ae_-QwErTy"
PASSWORD = "correct horse battery staple"


class Saved:
    """Every logger's configuration, to put back after a test reconfigured logging."""

    def __init__(self) -> None:
        manager = logging.Logger.manager
        loggers = [logging.getLogger(), *manager.loggerDict.values()]
        self.state = [
            (logger, logger.level, logger.handlers[:], logger.propagate, logger.disabled)
            for logger in loggers
            if isinstance(logger, logging.Logger)
        ]

    def restore(self) -> None:
        known = {id(logger) for logger, *_ in self.state}
        for logger in logging.Logger.manager.loggerDict.values():
            if isinstance(logger, logging.Logger) and id(logger) not in known:
                logger.setLevel(logging.NOTSET)
                logger.handlers[:] = []
                logger.propagate, logger.disabled = True, False
        for logger, level, handlers, propagate, disabled in self.state:
            logger.setLevel(level)
            logger.handlers[:] = handlers
            logger.propagate, logger.disabled = propagate, disabled


class Logs:
    """What the server's handler wrote."""

    def __init__(self) -> None:
        self.buffer = io.StringIO()

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.buffer.getvalue().splitlines()]

    def of(self, logger: str) -> list[dict[str, Any]]:
        return [line for line in self.lines() if line["logger"] == logger]


@pytest.fixture
def server_logs(monkeypatch: pytest.MonkeyPatch) -> Iterator[Logs]:
    """The server's logging config at DEBUG, its stderr a buffer."""
    saved, logs = Saved(), Logs()
    with monkeypatch.context() as patch:
        patch.setattr(sys, "stderr", logs.buffer)
        logging.config.dictConfig(logging_config(level="DEBUG"))
    try:
        yield logs
    finally:
        saved.restore()


@pytest.fixture
async def storefront(make_client: MakeClient) -> CreatedClient:
    return await make_client(name="storefront", public=True, origins=[SHOP])


def in_process(app: FastAPI) -> httpx.AsyncClient:
    # Server errors come back as the 500 the app sent, as from a real server.
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url=TEST_ISSUER)


# Lines and their fields


async def test_a_line_logged_in_a_request_is_json_with_the_request_id(
    app: FastAPI, server_logs: Logs
) -> None:
    async def note() -> dict[str, str]:
        logging.getLogger("keyhouse.test").info(
            "noted %s", "a thing", extra={"store_id": "s-1", "details": {"count": 2}}
        )
        return {}

    app.add_api_route("/note", note)
    logging.getLogger("keyhouse.test").debug("outside any request")
    async with in_process(app) as http:
        response = await http.get("/note", headers={"X-Request-Id": "trace-42.A_b"})
    assert response.headers["x-request-id"] == "trace-42.A_b"

    outside, inside = server_logs.of("keyhouse.test")
    assert "request_id" not in outside
    assert outside["level"] == "DEBUG"
    assert inside == {
        "timestamp": inside["timestamp"],
        "level": "INFO",
        "logger": "keyhouse.test",
        "message": "noted a thing",
        "request_id": "trace-42.A_b",
        "pid": os.getpid(),
        "store_id": "s-1",
        "details": {"count": 2},
    }
    assert TIMESTAMP.fullmatch(inside["timestamp"])


async def test_audit_events_are_lines_with_their_fields_at_the_top(
    database: Database, server_logs: Logs
) -> None:
    await record_now(
        database, "customer.login_failed", subject="ron@example.com", address="10.0.0.1", tries=3
    )
    (line,) = server_logs.of("keyhouse.audit")
    assert line["message"] == "audit customer.login_failed"
    assert line["event"] == "customer.login_failed"
    assert line["subject"] == "ron@example.com"
    assert line["address"] == "10.0.0.1"
    assert line["details"] == {"tries": 3}


async def test_an_unhandled_error_is_a_500_with_the_id_and_a_redacted_traceback(
    app: FastAPI, server_logs: Logs
) -> None:
    async def fail() -> None:
        raise RuntimeError(f"password={PASSWORD} client_secret={SECRET} token {JWT}")

    app.add_api_route("/fail", fail)
    async with in_process(app) as http:
        response = await http.get("/fail")
    assert response.status_code == 500
    assert response.json()["errors"][0]["title"] == "Internal Server Error"
    request_id = response.headers["x-request-id"]
    assert GENERATED_ID.fullmatch(request_id)

    (line,) = server_logs.of("keyhouse.errors")
    assert line["level"] == "ERROR"
    assert line["message"] == "unhandled error on GET /fail"
    assert line["request_id"] == request_id
    assert line["exception"].endswith("RuntimeError: password=[redacted]")
    for secret in (PASSWORD, SECRET, JWT):
        assert secret not in server_logs.buffer.getvalue()


def test_the_config_keeps_database_drivers_quiet_at_debug(server_logs: Logs) -> None:
    assert logging.getLogger("keyhouse.audit").isEnabledFor(logging.DEBUG)
    assert not logging.getLogger("keyhouse.audit").disabled
    assert logging.getLogger("uvicorn.access").isEnabledFor(logging.DEBUG)
    assert logging.getLogger("uvicorn.error").isEnabledFor(logging.DEBUG)
    # SQLAlchemy logs every statement with its parameters at INFO, aiosqlite at DEBUG.
    for name in ("sqlalchemy.engine.Engine", "aiosqlite", "asyncpg"):
        assert not logging.getLogger(name).isEnabledFor(logging.INFO)
        assert logging.getLogger(name).isEnabledFor(logging.WARNING)


# Request ids


async def test_a_request_id_is_made_for_every_response(
    http: httpx.AsyncClient, storefront: CreatedClient
) -> None:
    form = {"grant_type": "implicit", "client_id": storefront.client.id}
    responses = [
        await http.post(TOKEN_URL, data=form),
        await http.post(TOKEN_URL, data={"grant_type": "implicit", "client_id": "nobody"}),
        await http.post(TOKEN_URL, content=b"\xff", headers={"Content-Type": "text/plain"}),
        await http.get("/.well-known/jwks.json"),
        await http.get("/v2/products"),
        await http.get("/no/such/path"),
    ]
    assert [response.status_code for response in responses] == [200, 401, 400, 200, 401, 404]
    ids = [response.headers["x-request-id"] for response in responses]
    assert all(GENERATED_ID.fullmatch(request_id) for request_id in ids)
    assert len(set(ids)) == len(ids)


SANE_IDS = ["a", "0af7651916cd43dd8448eb211c80319c", "req-1.2_3", "x" * 64]
BAD_IDS = ["x" * 65, "two words", 'quote"d', "semi;colon", "", "new\tline", "caf\u00e9"]


@pytest.mark.parametrize("incoming", SANE_IDS)
async def test_a_plain_incoming_request_id_is_kept(http: httpx.AsyncClient, incoming: str) -> None:
    response = await http.get("/.well-known/jwks.json", headers={"X-Request-Id": incoming})
    assert response.headers.get_list("x-request-id") == [incoming]


@pytest.mark.parametrize("incoming", BAD_IDS, ids=repr)
async def test_any_other_incoming_request_id_is_replaced(
    http: httpx.AsyncClient, incoming: str
) -> None:
    headers = {"X-Request-Id": incoming.encode()}
    response = await http.post(TOKEN_URL, data={"grant_type": "implicit"}, headers=headers)
    assert response.status_code == 400
    (replaced,) = response.headers.get_list("x-request-id")
    assert GENERATED_ID.fullmatch(replaced)


async def test_browsers_may_read_the_request_id(
    http: httpx.AsyncClient, storefront: CreatedClient
) -> None:
    form = {"grant_type": "implicit", "client_id": storefront.client.id}
    response = await http.post(TOKEN_URL, data=form, headers={"Origin": SHOP})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == SHOP
    exposed = response.headers["access-control-expose-headers"].lower().split(",")
    assert {"x-request-id", "www-authenticate"} <= {name.strip() for name in exposed}
    assert GENERATED_ID.fullmatch(response.headers["x-request-id"])


# Redaction


LEAKY = {
    "JWT": (f"got {JWT} here", JWT),
    "form pair": (f"grant_type=client_credentials&client_secret={SECRET}&x=1", SECRET),
    "query token": (f'"GET /v2/products?access_token={JWT[:20]} HTTP/1.1" 401', JWT[:20]),
    "JSON password": (f'{{"email": "a@b.c", "password": "{PASSWORD}"}}', PASSWORD),
    "escaped quote": ('{"password": "se\\"cr et"}', "cr et"),
    "spaces": (f"password={PASSWORD}", PASSWORD.split()[-1]),
    "repr password": (f"{{'password': '{PASSWORD}'}}", PASSWORD),
    "Authorization header": (f"Authorization: Basic {SECRET}==", SECRET),
    "Bearer in raw headers": (f"[(b'authorization', b'Bearer {SECRET}')]", SECRET),
    "customer token header": (f"x-moltin-customer-token: {SECRET}", SECRET),
    "upper case": (f"CLIENT_SECRET={SECRET}", SECRET),
    "beside text whose case changes length": (f"\u0130 Password: {SECRET}", SECRET),
    "URL password": (f"postgresql+asyncpg://keyhouse:{SECRET}@db/keyhouse", SECRET),
    # A login provider's answer (app/customers/oidc): its code, and the sign-in's state.
    "provider code": (f'"GET /oauth/customers/login/callback?code={SECRET}&iss=x"', SECRET),
    "sign-in state": (f'"GET /oauth/customers/login/callback?iss=x&state={SECRET} HTTP', SECRET),
}
HARMLESS = [
    "audit token.revoked",
    '127.0.0.1:5000 - "POST /oauth/access_token HTTP/1.1" 200',
    "token_type=Bearer expires_in=3600 scope=read",
    "Started server process [123]",
    "postgresql+asyncpg://root@127.0.0.1:5432/keyhouse",
    "customer 0af76519-16cd-43dd-8448-eb211c80319c",
    "GET /oauth/customers/login/example?code_challenge_method=S256",
]


@pytest.mark.parametrize(("text", "secret"), LEAKY.values(), ids=LEAKY.keys())
def test_secret_shaped_text_is_redacted(text: str, secret: str) -> None:
    redacted = redact(text)
    assert secret not in redacted
    assert "[redacted]" in redacted
    assert redact(redacted) == redacted


@pytest.mark.parametrize("text", HARMLESS)
def test_other_text_is_left_alone(text: str) -> None:
    assert redact(text) == text


# The JWT pattern as it was: right, but quadratic on runs of `eyJ` (21 s for a 63 KB path).
PLAIN_JWT = re.compile(r"eyJ[A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]*){2,4}")


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(["eyJ", "eyJa.b", ".", "a", "e", "J", "-", "/", " ", "%22"])))
def test_jwts_are_found_where_the_plain_pattern_finds_them(pieces: list[str]) -> None:
    text = "".join(pieces)
    assert redact(text) == PLAIN_JWT.sub("[redacted]", text)


# Texts of 64 KB that made a pattern try again and again: each is redacted in linear time.
HOSTILE_TEXTS = {
    "a run of eyJ": "/" + "eyJ" * 21_000,
    "eyJ between slashes": "/eyJ" * 16_000,
    "dotted eyJ": "eyJ." * 16_000,
    "many tokens": "/eyJa.b.c/" * 6_400,
    "many tokens after text": "/xeyJa.b.c" * 6_400,
    "many pairs": "/?token=a&" * 6_400,
    "unterminated quotes": "password:'" + "token:\\'" * 7_000,
    "provider codes": "/?code=a&" * 8_000,
    "URL passwords": "://a:" * 13_000,
}


@pytest.mark.parametrize("text", HOSTILE_TEXTS.values(), ids=HOSTILE_TEXTS.keys())
def test_redaction_takes_time_linear_in_the_text(text: str) -> None:
    # Redacting 64 KB takes a few milliseconds here; the bound leaves room for a busy machine,
    # and a quadratic pattern (seconds) fails it.
    started = time.process_time()
    redact(text)
    assert time.process_time() - started < 0.2


def test_a_long_path_is_logged_cut_and_redacted_first(server_logs: Logs) -> None:
    # The token starts before the cut and ends after it: cut first, its start would be logged.
    path = "/" + "a" * (LOGGED_CHARS - 20) + "/" + JWT + "/" + "b" * 5000
    access = logging.getLogger("uvicorn.access")
    access.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:1", "GET", path, "1.1", 404)
    [line] = server_logs.of("uvicorn.access")
    redacted = path.replace(JWT, "[redacted]")
    cut = f"…[cut {len(redacted) - LOGGED_CHARS} characters]"
    assert line["path"] == redacted[:LOGGED_CHARS] + cut
    assert line["message"] == f'127.0.0.1:1 - "GET {line["path"]} HTTP/1.1" 404'


def test_long_extra_fields_are_cut(server_logs: Logs) -> None:
    logging.getLogger("keyhouse.test").info("note", extra={"details": {"seen": ["x" * 3000]}})
    [line] = server_logs.of("keyhouse.test")
    assert line["details"] == {"seen": ["x" * LOGGED_CHARS + "…[cut 1976 characters]"]}


def formatted(formatter: logging.Formatter, *args: Any, **kwargs: Any) -> str:
    """One record through a handler set up as the server's, formatted by `formatter`."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(formatter)
    handler.addFilter(RedactSecrets())
    logger = logging.getLogger("keyhouse.test.formatted")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        logger.info(*args, **kwargs)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(logging.NOTSET)
    return buffer.getvalue()


RECORDS = {
    "in an argument": (("login with %s", f"password={PASSWORD}"), {}),
    "across format and argument": (("password=%s", PASSWORD), {}),
    "in a mapping argument": (("%(form)s", {"form": f"client_secret={SECRET}"}), {}),
    "in extra fields": (("note",), {"extra": {"details": {"seen": [f"Bearer {JWT}"]}}}),
    "in a non-string message": ((RuntimeError(f"password={PASSWORD}"),), {}),
    "with arguments that do not fit": (("%s and %s", f"password={PASSWORD}"), {}),
}


@pytest.mark.parametrize(("args", "kwargs"), RECORDS.values(), ids=RECORDS.keys())
def test_records_are_redacted_everywhere(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    line = formatted(JsonFormatter(), *args, **kwargs)
    assert line.count("\n") == 1
    document = json.loads(line)
    assert "[redacted]" in line
    for secret in (PASSWORD, SECRET, JWT):
        assert secret not in line
    assert document["logger"] == "keyhouse.test.formatted"


def test_exception_text_is_redacted() -> None:
    try:
        raise ValueError(f"client_secret={SECRET}")
    except ValueError:
        line = formatted(JsonFormatter(), "failed", exc_info=True)
    document = json.loads(line)
    assert "ValueError: client_secret=[redacted]" in document["exception"]
    assert SECRET not in line


def test_text_lines_escape_control_characters() -> None:
    output = formatted(TextFormatter(), "path %s", "/a\nFAKE 00:00 ERROR forged\r", extra={"n": 1})
    assert output.count("\n") == 1
    assert "path /a\\nFAKE 00:00 ERROR forged\\r" in output
    assert output.rstrip("\n").endswith(f"pid={os.getpid()} n=1")
    assert TIMESTAMP.match(output)
