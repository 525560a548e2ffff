"""The real server's logs: `keyhouse serve` in a subprocess, its stderr captured whole.

The leak test drives a full, realistic flow at DEBUG — clients made with the CLI, every grant
and client authentication, wrong secrets, sign-ups, logins right and wrong, bearer and customer
tokens, invalid tokens, malformed bodies — and then looks for every secret, password and token
it used in every line the server, Uvicorn and the CLI wrote on stderr.
"""

import base64
import contextlib
import json
import os
import pty
import re
import select
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from ..cli.test_cli import (
    KEYHOUSE,
    SERVER_STOP_SECONDS,
    clean_environment,
    free_port,
    wait_for_metadata,
)
from ..conftest import POSTGRES_URL
from ..smtp import MAIL_FROM, RESET_URL, SMTP_PASSWORD, MailServer, token_in

TOKEN_PATH = "/oauth/access_token"
METADATA_PATH = "/.well-known/oauth-authorization-server"  # polled until the server is up
SHOP = "https://shop.example"
JWT_SHAPE = re.compile(r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.")
SIGN_UP_PASSWORD = "correct horse battery staple"
CLI_PASSWORD = "CLI-made pa55word with spaces"
WRONG_PASSWORD = "Tr0ub4dor&3 but wrong"
NEW_PASSWORD = "a reset pa55word"
CHANGED_PASSWORD = "a changed pa55word"


@dataclass
class Server:
    """`keyhouse serve` on a free port, and the environment its CLI commands share."""

    environment: dict[str, str]
    cwd: Path
    log: Path
    port: int = field(default_factory=free_port)
    stderr: list[str] = field(default_factory=list)  # of the CLI commands run

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def keyhouse(self, *args: str, stdin: str | None = None) -> str:
        done = subprocess.run(
            [str(KEYHOUSE), *args],
            env=self.environment,
            cwd=self.cwd,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        self.stderr.append(done.stderr)
        return done.stdout

    @contextlib.contextmanager
    def running(self, *args: str) -> Iterator[None]:
        with self.log.open("wb") as output:
            process = subprocess.Popen(
                [str(KEYHOUSE), "serve", "--port", str(self.port), *args],
                env=self.environment,
                cwd=self.cwd,
                stdout=subprocess.DEVNULL,
                stderr=output,
            )
        try:
            wait_for_metadata(process, self.url)
            yield
            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=SERVER_STOP_SECONDS) in {0, 130}
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()

    def lines(self) -> list[dict[str, Any]]:
        """Every line the server wrote on stderr, each of which must be one JSON object."""
        text = self.log.read_text()
        assert text.endswith("\n")
        documents = [json.loads(line) for line in text.splitlines()]
        assert all(isinstance(document, dict) for document in documents)
        return documents


@pytest.fixture
def server(tmp_path: Path, request: pytest.FixtureRequest) -> Server:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    # On SQLite, `serve` migrates a fresh database itself; PostgreSQL is the suite's, emptied.
    database_url = (
        request.getfixturevalue("database_url")
        if POSTGRES_URL
        else f"sqlite+aiosqlite:///{data_dir / 'keyhouse.db'}"
    )
    environment = clean_environment() | {
        "KEYHOUSE_DATA_DIR": str(data_dir),
        "KEYHOUSE_DATABASE_URL": database_url,
        "KEYHOUSE_LOG_LEVEL": "DEBUG",
        "KEYHOUSE_CLIENT_CACHE_SECONDS": "0",
    }
    return Server(environment, tmp_path, tmp_path / "serve.log")


def basic(client_id: str, secret: str) -> str:
    return base64.b64encode(f"{client_id}:{secret}".encode()).decode()


@dataclass
class Flow:
    """What a realistic session sent and got: everything in `secrets` must stay out of logs."""

    http: httpx.Client
    secrets: set[str] = field(default_factory=set)
    request_ids: list[str] = field(default_factory=list)

    def send(self, method: str, path: str, status: int | set[int], **options: Any) -> Any:
        response = self.http.request(method, path, **options)
        expected = status if isinstance(status, set) else {status}
        assert response.status_code in expected, (method, path, response.text)
        self.request_ids.append(response.headers["x-request-id"])
        return response.json() if response.content else None

    def token(self, status: int | set[int] = 200, **options: Any) -> str | None:
        body = self.send("POST", TOKEN_PATH, status, **options)
        token: str | None = body.get("access_token")
        if token:
            self.secrets.add(token)
        return token


def drive_every_flow(flow: Flow, backend: dict[str, str], storefront_id: str, email: str) -> None:
    client_id, secret = backend["client_id"], backend["client_secret"]
    wrong_secret = secret[:-6] + "abcdef"
    flow.secrets |= {secret, wrong_secret, basic(client_id, secret), basic(client_id, wrong_secret)}
    flow.secrets |= {SIGN_UP_PASSWORD, CLI_PASSWORD, WRONG_PASSWORD}
    credentials = {"grant_type": "client_credentials", "client_id": client_id}

    # Client credentials: Basic, post, JSON; wrong secrets; malformed requests.
    token = flow.token(data={"grant_type": "client_credentials"}, auth=(client_id, secret))
    flow.token(data={**credentials, "client_secret": secret})
    flow.token(json={**credentials, "client_secret": secret})
    flow.token(401, data={"grant_type": "client_credentials"}, auth=(client_id, wrong_secret))
    flow.token(401, data={**credentials, "client_secret": wrong_secret})
    flow.token(400, data={**credentials, "client_secret": secret}, auth=(client_id, secret))
    flow.token(
        400,
        content=f"grant_type=client_credentials&grant_type=implicit&client_secret={secret}",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    flow.token(
        400,
        content=f'{{"grant_type": "client_credentials", "client_secret": "{secret}"',
        headers={"Content-Type": "application/json"},
    )
    flow.token({400, 401}, data=credentials, headers={"Authorization": f"Basic {secret}!"})

    # Implicit, from a browser: preflight, then the token.
    flow.send(
        "OPTIONS",
        TOKEN_PATH,
        204,
        headers={"Origin": SHOP, "Access-Control-Request-Method": "POST"},
    )
    implicit = flow.token(
        data={"grant_type": "implicit", "client_id": storefront_id}, headers={"Origin": SHOP}
    )
    assert token and implicit
    bearer = {"Authorization": f"Bearer {implicit}"}

    # Customers: sign-up, logins right and wrong, the customer token in use.
    signed_up = {"type": "customer", "name": "Ron", "email": email, "password": SIGN_UP_PASSWORD}
    customer = flow.send("POST", "/v2/customers", 201, json={"data": signed_up}, headers=bearer)
    short = {**signed_up, "email": "other@example.com", "password": "short"}
    flow.send("POST", "/v2/customers", 400, json={"data": short}, headers=bearer)
    flow.send(
        "POST",
        "/v2/customers",
        400,
        content=f'{{"data": {{"password": "{SIGN_UP_PASSWORD}"',
        headers={**bearer, "Content-Type": "application/json"},
    )
    customer_tokens = []
    for login, status in [
        ({"email": email, "password": SIGN_UP_PASSWORD}, 200),
        ({"email": "cli@example.com", "password": CLI_PASSWORD}, 200),
        ({"email": email, "password": WRONG_PASSWORD}, 401),
        ({"email": "nobody@example.com", "password": WRONG_PASSWORD}, 401),
    ]:
        body = {"data": {"type": "token", **login, "authentication_mechanism": "password"}}
        answer = flow.send("POST", "/v2/customers/tokens", status, json=body, headers=bearer)
        if status == 200:
            customer_tokens.append(answer["data"]["token"])
    flow.secrets |= set(customer_tokens)
    customer_path = f"/v2/customers/{customer['data']['id']}"
    as_shopper = {**bearer, "X-Moltin-Customer-Token": customer_tokens[0]}
    flow.send("GET", customer_path, 200, headers=as_shopper)
    flow.send("GET", customer_path, {401, 403}, headers={**bearer, "X-Moltin-Customer-Token": "x"})

    # Bearer tokens: good, invalid, tampered, in the wrong place.
    flow.send("GET", "/v2/products", 200, headers={"Authorization": f"Bearer {token}"})
    flow.send("GET", "/v2/products", 401, headers={"Authorization": "Bearer not-a-token"})
    tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    flow.secrets.add(tampered)
    flow.send("GET", "/v2/products", 401, headers={"Authorization": f"Bearer {tampered}"})
    flow.send("GET", "/v2/products", 401, headers={"Authorization": f"Basic {secret}"})
    flow.send("GET", "/v2/products", 401, headers={"Authorization": f"Bearer {customer_tokens[0]}"})
    flow.send("GET", "/v2/products", 401, params={"access_token": token})
    flow.send("GET", f"/v2/products/{token}", 400, headers=bearer)


def drive_password_flows(flow: Flow, storefront_id: str, email: str, mail: MailServer) -> None:
    """Reset by mail (the SMTP password and the mailed token are secrets too), change, logout."""
    flow.secrets |= {SMTP_PASSWORD, NEW_PASSWORD, CHANGED_PASSWORD}
    token = flow.token(data={"grant_type": "implicit", "client_id": storefront_id})
    bearer = {"Authorization": f"Bearer {token}"}
    asked = {"type": "password_reset_request", "email": email}
    flow.send("POST", "/v2/customers/password-reset", 202, json={"data": asked}, headers=bearer)
    reset_token = token_in(mail.handler.wait_for(1)[0])
    flow.secrets.add(reset_token)
    reset = {"type": "password_reset", "token": reset_token, "password": NEW_PASSWORD}
    confirm = "/v2/customers/password-reset/confirm"
    flow.send("POST", confirm, 200, json={"data": reset}, headers=bearer)
    flow.send("POST", confirm, 409, json={"data": reset}, headers=bearer)
    login = {"type": "token", "email": email, "password": NEW_PASSWORD}
    answer = flow.send("POST", "/v2/customers/tokens", 200, json={"data": login}, headers=bearer)
    shopper = {**bearer, "X-Moltin-Customer-Token": answer["data"]["token"]}
    flow.secrets.add(answer["data"]["token"])
    change = {"type": "password_change", "current_password": NEW_PASSWORD}
    path = f"/v2/customers/{answer['data']['customer_id']}/password"
    flow.send(
        "PUT", path, 204, json={"data": change | {"password": CHANGED_PASSWORD}}, headers=shopper
    )
    flow.send("DELETE", "/v2/customers/tokens/current", 204, headers=shopper)


def test_no_log_line_leaks_a_secret_a_password_or_a_token(
    server: Server, mail_server: MailServer
) -> None:
    if not POSTGRES_URL:
        server.keyhouse("db", "upgrade")
    backend = json.loads(server.keyhouse("clients", "create", "--name", "backend", "--json"))
    storefront = json.loads(
        server.keyhouse(
            "clients", "create", "--name", "web", "--public", "--origin", SHOP, "--json"
        )
    )
    server.keyhouse(
        "customers", "create", "--email", "cli@example.com", "--password-stdin",
        stdin=CLI_PASSWORD + "\n",
    )  # fmt: skip
    server.environment |= {
        "KEYHOUSE_SMTP_URL": mail_server.url(),
        "KEYHOUSE_SMTP_CA_FILE": str(mail_server.cert_file),
        "KEYHOUSE_MAIL_FROM": MAIL_FROM,
        "KEYHOUSE_PASSWORD_RESET_URL": RESET_URL,
    }
    with server.running(), httpx.Client(base_url=server.url, timeout=30) as http:
        flow = Flow(http)
        drive_every_flow(flow, backend, storefront["client_id"], "ron@example.com")
        drive_password_flows(flow, storefront["client_id"], "ron@example.com", mail_server)

    lines = server.lines()
    text = server.log.read_text() + "".join(server.stderr)
    # 4 secrets and Basic values, 6 passwords (the SMTP one too), 9 tokens (a reset token too)
    assert len(flow.secrets) >= 19
    for secret in flow.secrets:
        assert secret not in text
    assert not JWT_SHAPE.search(text)
    # The run was logged: an access line for every request, with its id and fields.
    access = {line["request_id"]: line for line in lines if line["logger"] == "uvicorn.access"}
    assert set(flow.request_ids) <= set(access)
    for line in access.values():
        assert {"method", "path", "status", "duration_ms", "pid"} <= set(line)
    assert any("[redacted]" in line["path"] for line in access.values())


def test_every_worker_logs_json_with_its_pid(server: Server) -> None:
    server.environment["KEYHOUSE_LOG_LEVEL"] = "INFO"
    sent = [f"check-{number}" for number in range(8)]
    with server.running("--workers", "2"), httpx.Client(base_url=server.url) as http:
        for request_id in sent:
            response = http.get("/.well-known/jwks.json", headers={"X-Request-Id": request_id})
            assert response.headers["x-request-id"] == request_id

    lines = server.lines()
    started = {
        line["pid"] for line in lines if line["message"].startswith("Started server process")
    }
    assert len(started) == 2
    access = [line for line in lines if line["logger"] == "uvicorn.access"]
    checks = sorted(line["request_id"] for line in access if line["path"] != METADATA_PATH)
    assert checks == sent
    assert {line["pid"] for line in access} <= started
    assert all(line["level"] in {"INFO", "WARNING"} for line in lines)


def test_at_a_terminal_serve_logs_lines_for_people(server: Server) -> None:
    """`KEYHOUSE_LOG_FORMAT` unset (`auto`): a terminal gets text lines, a file JSON (above)."""
    primary, terminal = pty.openpty()
    process = subprocess.Popen(
        [str(KEYHOUSE), "serve", "--port", str(server.port)],
        env=server.environment,
        cwd=server.cwd,
        stdout=subprocess.DEVNULL,
        stderr=terminal,
    )
    os.close(terminal)
    try:
        wait_for_metadata(process, server.url)
        httpx.get(server.url + METADATA_PATH, timeout=5)
        process.send_signal(signal.SIGINT)
        process.wait(timeout=SERVER_STOP_SECONDS)
        written = b""
        while select.select([primary], [], [], 0.5)[0]:
            try:
                chunk = os.read(primary, 65536)
            except OSError:  # the terminal's other side has closed
                break
            if not chunk:
                break
            written += chunk
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(primary)
    lines = written.decode().splitlines()
    starts = next(line for line in lines if "Keyhouse starts" in line)
    assert not starts.startswith("{")
    assert re.match(r"\d{4}-\d\d-\d\dT[\d:.]+Z? +INFO +keyhouse ", starts), starts
    assert any(METADATA_PATH in line and not line.startswith("{") for line in lines)
