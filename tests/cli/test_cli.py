"""The `keyhouse` command in the forms scripts rely on: one JSON document on stdout with
`--json`, one-line errors on stderr, secrets shown once.

The CLI runs its own event loops, so these tests are synchronous; where the token endpoint has
to agree with what the CLI wrote, an in-process app is run over the same database and data dir.
"""

import asyncio
import json
import logging
import os
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
import jwt
import pytest
from typer.testing import CliRunner, Result

from app.cli import cli
from app.main import create_app
from app.runtime.settings import Settings, get_settings

T = TypeVar("T")
TEST_ISSUER = "http://keyhouse.test"
TOKEN_PATH = "/oauth/access_token"
KEYHOUSE = Path(sys.executable).with_name("keyhouse")
SERVER_START_SECONDS = 30.0
SERVER_STOP_SECONDS = 15.0


@dataclass(frozen=True)
class Keyhouse:
    """The CLI, pointed by the environment at a data dir and SQLite database of this test's."""

    data_dir: Path
    database_url: str

    def __call__(self, *args: str) -> Result:
        get_settings.cache_clear()
        try:
            return CliRunner().invoke(cli, list(args), catch_exceptions=False)
        finally:
            get_settings.cache_clear()

    def json(self, *args: str) -> Any:
        """Runs a `--json` command that must succeed; its stdout is exactly one JSON document."""
        result = self(*args, "--json")
        assert result.exit_code == 0, result.stderr
        assert result.stdout.endswith("\n") and result.stdout.count("\n") == 1
        return json.loads(result.stdout)

    def settings(self, **overrides: Any) -> Settings:
        """What `keyhouse serve` would use, minus the client cache, so changes show at once."""
        values: dict[str, Any] = {
            "database_url": self.database_url,
            "data_dir": self.data_dir,
            "issuer": TEST_ISSUER,
            "client_cache_seconds": 0,
            **overrides,
        }
        return Settings(**values)


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """`db upgrade` and `serve` set the server's logging up; undo it for the tests that follow."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    levels = {name: logging.getLogger(name).level for name in ("alembic", "sqlalchemy.engine")}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, saved in levels.items():
        logging.getLogger(name).setLevel(saved)


def clean_environment() -> dict[str, str]:
    return {name: value for name, value in os.environ.items() if not name.startswith("KEYHOUSE_")}


@pytest.fixture
def keyhouse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Keyhouse:
    for name in list(os.environ):
        if name.startswith("KEYHOUSE_"):
            monkeypatch.delenv(name)
    data_dir = tmp_path / "data"
    database_url = f"sqlite+aiosqlite:///{data_dir / 'keyhouse.db'}"
    monkeypatch.setenv("KEYHOUSE_DATA_DIR", str(data_dir))
    monkeypatch.setenv("KEYHOUSE_DATABASE_URL", database_url)
    return Keyhouse(data_dir, database_url)


@pytest.fixture
def migrated(keyhouse: Keyhouse) -> Keyhouse:
    result = keyhouse("db", "upgrade")
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    return keyhouse


def with_app(settings: Settings, work: Callable[[httpx.AsyncClient], Awaitable[T]]) -> T:
    """Runs `work` against a fresh in-process app, startup and shutdown included."""

    async def run() -> T:
        application = create_app(settings)
        async with application.router.lifespan_context(application):
            transport = httpx.ASGITransport(app=application)
            async with httpx.AsyncClient(transport=transport, base_url=TEST_ISSUER) as http:
                return await work(http)

    return asyncio.run(run())


def client_credentials(
    settings: Settings, client_id: str, secret: str
) -> tuple[httpx.Response, dict[str, Any]]:
    """A token request with HTTP Basic, and the JWKS at that moment."""

    async def work(http: httpx.AsyncClient) -> tuple[httpx.Response, dict[str, Any]]:
        response = await http.post(
            TOKEN_PATH, data={"grant_type": "client_credentials"}, auth=(client_id, secret)
        )
        jwks: dict[str, Any] = (await http.get("/.well-known/jwks.json")).json()
        return response, jwks

    return with_app(settings, work)


def verified_claims(token: str, jwks: dict[str, Any], issuer: str) -> dict[str, Any]:
    kid = jwt.get_unverified_header(token)["kid"]
    (key,) = [key for key in jwt.PyJWKSet.from_dict(jwks).keys if key.key_id == kid]
    claims: dict[str, Any] = jwt.decode(
        token, key.key, algorithms=["ES256", "RS256"], audience=issuer, issuer=issuer
    )
    return claims


def database_text(path: Path) -> list[str | bytes]:
    """Every text and blob value in every table of a SQLite database."""
    values: list[str | bytes] = []
    with sqlite3.connect(path) as connection:
        tables = [
            row[0]
            for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        ]
        for table in tables:
            for row in connection.execute(f'SELECT * FROM "{table}"'):  # noqa: S608
                values.extend(value for value in row if isinstance(value, str | bytes))
    return values


# db upgrade


def test_db_upgrade_creates_the_schema_and_is_idempotent(keyhouse: Keyhouse) -> None:
    for _ in range(2):
        result = keyhouse("db", "upgrade")
        assert result.exit_code == 0, result.output
        assert result.stdout == ""
    with sqlite3.connect(keyhouse.data_dir / "keyhouse.db") as connection:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
        (version,) = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    assert {"store", "oauth_client", "client_secret", "signing_key"} <= tables
    assert version


def test_db_upgrade_needs_no_alembic_ini_and_no_checkout(
    keyhouse: Keyhouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The migrations come from the package, whatever the working directory."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    result = keyhouse("db", "upgrade")
    assert result.exit_code == 0, result.output
    assert list(elsewhere.iterdir()) == []


# config


def test_config_says_which_database_data_dir_and_secret_a_command_uses(
    migrated: Keyhouse,
) -> None:
    before = sorted(migrated.data_dir.iterdir())
    config = migrated.json("config")
    assert config["database_url"] == migrated.database_url
    assert config["data_dir"] == str(migrated.data_dir)
    assert config["data_dir_from"] == "KEYHOUSE_DATA_DIR"
    assert config["server_secret_from"] == f"the file {migrated.data_dir / 'keyhouse.secret'}"
    assert config["server_secret_fingerprint"] is None  # no secret file yet, and none made
    assert sorted(migrated.data_dir.iterdir()) == before

    migrated.json("clients", "create", "--name", "backend")  # makes the secret
    fingerprint = migrated.json("config")["server_secret_fingerprint"]
    assert isinstance(fingerprint, str) and len(fingerprint) == 12


def test_config_hides_passwords_in_urls(
    migrated: Keyhouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KEYHOUSE_DATABASE_URL", "postgresql+asyncpg://keyhouse:hunter22@db/k")
    monkeypatch.setenv("KEYHOUSE_REDIS_URL", "redis://:hunter22@cache:6379/0")
    monkeypatch.setenv("KEYHOUSE_SERVER_SECRET", "a-server-secret-of-32-characters-or-more")
    result = migrated("config", "--json")
    assert result.exit_code == 0, result.output
    assert "hunter22" not in result.stdout and "32-characters" not in result.stdout
    config = json.loads(result.stdout)
    assert config["database_url"] == "postgresql+asyncpg://keyhouse:***@db/k"
    assert config["server_secret_from"] == "KEYHOUSE_SERVER_SECRET"


@pytest.mark.parametrize(
    ("environment", "data_dir", "why"),
    [
        ({}, "{home}/.local/share/keyhouse", "per-user"),
        ({"XDG_DATA_HOME": "{home}/xdg"}, "{home}/xdg/keyhouse", "per-user"),
        (
            {"KEYHOUSE_DATABASE_URL": "sqlite+aiosqlite:///{home}/shop/keyhouse.db"},
            "{home}/shop",
            "directory of the SQLite database",
        ),
        (
            {"KEYHOUSE_DATABASE_URL": "postgresql+asyncpg://root@127.0.0.1/keyhouse"},
            "{home}/.local/share/keyhouse",
            "per-user",
        ),
        ({"KEYHOUSE_DATA_DIR": "{home}/data"}, "{home}/data", "KEYHOUSE_DATA_DIR"),
    ],
)
def test_the_data_dir_never_depends_on_the_working_directory(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    environment: dict[str, str],
    data_dir: str,
    why: str,
) -> None:
    home = tmp_path / "home"
    for name in [*os.environ]:
        if name.startswith("KEYHOUSE_") or name == "XDG_DATA_HOME":
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(home))
    for name, value in environment.items():
        monkeypatch.setenv(name, value.format(home=home))
    for working_directory in (tmp_path, home):
        home.mkdir(exist_ok=True)
        monkeypatch.chdir(working_directory)
        config = Keyhouse(tmp_path, "").json("config")
        assert config["data_dir"] == data_dir.format(home=home)
        assert why in config["data_dir_from"]


# stores


def test_stores_create_prints_one_json_document(migrated: Keyhouse) -> None:
    store = migrated.json("stores", "create", "Acme Shoes")
    assert set(store) == {"id", "name", "allow_customer_signup", "require_email_verification"}
    assert store["name"] == "Acme Shoes"
    assert (store["allow_customer_signup"], store["require_email_verification"]) == (True, False)
    uuid.UUID(store["id"])
    assert migrated.json("stores", "list") == [store]


def test_stores_update_changes_only_the_settings_given(migrated: Keyhouse) -> None:
    store = migrated.json("stores", "create", "Acme Shoes")
    closed = migrated.json("stores", "update", store["id"], "--no-customer-signup")
    assert (closed["allow_customer_signup"], closed["require_email_verification"]) == (False, False)
    strict = migrated.json("stores", "update", store["id"], "--require-email-verification")
    assert (strict["allow_customer_signup"], strict["require_email_verification"]) == (False, True)
    assert migrated.json("stores", "list") == [strict]
    unknown = migrated("stores", "update", str(uuid.uuid4()), "--customer-signup")
    assert unknown.exit_code != 0 and "no store has that id" in unknown.output


# clients


def test_confidential_client_secret_works_and_is_shown_only_once(migrated: Keyhouse) -> None:
    created = migrated.json("clients", "create", "--name", "backend")
    assert set(created) == {"client_id", "client_secret", "store_id"}
    secret = created["client_secret"]
    assert isinstance(secret, str) and len(secret) >= 43
    (default_store,) = migrated.json("stores", "list")
    assert created["store_id"] == default_store["id"]

    settings = migrated.settings()
    response, jwks = client_credentials(settings, created["client_id"], secret)
    assert response.status_code == 200, response.text
    claims = verified_claims(response.json()["access_token"], jwks, TEST_ISSUER)
    assert claims["client_id"] == created["client_id"]
    assert claims["store_id"] == created["store_id"]
    assert claims["scope"] == "read write"

    wrong, _ = client_credentials(settings, created["client_id"], secret[:-1] + "x")
    assert wrong.status_code == 401

    listing = migrated("clients", "list", "--json")
    assert secret not in listing.stdout
    (row,) = json.loads(listing.stdout)
    assert row["client_id"] == created["client_id"]
    assert not {"client_secret", "secret", "secret_hash"} & set(row)


def test_client_secret_is_not_stored_in_clear(migrated: Keyhouse) -> None:
    secret = migrated.json("clients", "create", "--name", "backend")["client_secret"]
    values = database_text(migrated.data_dir / "keyhouse.db")
    assert values  # the scan saw the rows
    for value in values:
        assert (secret.encode() if isinstance(value, bytes) else secret) not in value
    for path in migrated.data_dir.iterdir():  # the database, its WAL, the server secret
        assert secret.encode() not in path.read_bytes()


def test_public_client_in_a_named_store(migrated: Keyhouse) -> None:
    store = migrated.json("stores", "create", "Storefront")
    created = migrated.json(
        "clients", "create", "--name", "web", "--store", store["id"], "--public",
        "--scope", "read", "--origin", "https://shop.example", "--origin",
        "HTTPS://Shop.Example:443/", "--origin", "http://localhost:3000", "--ttl", "600",
    )  # fmt: skip
    assert created == {
        "client_id": created["client_id"],
        "client_secret": None,
        "store_id": store["id"],
    }
    (row,) = migrated.json("clients", "list", "--store", store["id"])
    assert row["public"] is True
    assert row["grant_types"] == ["implicit"]
    assert row["scope"] == "read"
    assert row["origins"] == ["http://localhost:3000", "https://shop.example"]
    assert row["ttl"] == 600
    assert row["enabled"] is True


def test_clients_list_filters_by_store(migrated: Keyhouse) -> None:
    first = migrated.json("stores", "create", "First")
    second = migrated.json("stores", "create", "Second")
    one = migrated.json("clients", "create", "--name", "one", "--store", first["id"])
    two = migrated.json("clients", "create", "--name", "two", "--store", second["id"])
    assert [row["client_id"] for row in migrated.json("clients", "list")] == [
        one["client_id"],
        two["client_id"],
    ]
    in_second = migrated.json("clients", "list", "--store", second["id"])
    assert [row["client_id"] for row in in_second] == [two["client_id"]]


def test_disabled_client_is_refused_at_the_token_endpoint(migrated: Keyhouse) -> None:
    created = migrated.json("clients", "create", "--name", "backend")
    settings = migrated.settings()
    before, _ = client_credentials(settings, created["client_id"], created["client_secret"])
    assert before.status_code == 200

    disabled = migrated.json("clients", "disable", created["client_id"])
    assert disabled["client_id"] == created["client_id"]
    assert disabled["enabled"] is False
    assert created["client_secret"] not in json.dumps(disabled)

    after, _ = client_credentials(settings, created["client_id"], created["client_secret"])
    assert after.status_code == 401
    assert after.json()["error"] == "invalid_client"
    (row,) = migrated.json("clients", "list")
    assert row["enabled"] is False


BAD_INPUT = {
    "origin not a URL": ["clients", "create", "--name", "x", "--origin", "not-a-url"],
    "origin with a path": ["clients", "create", "--name", "x", "--origin", "https://a.example/p"],
    "ttl zero": ["clients", "create", "--name", "x", "--ttl", "0"],
    "ttl over a day": ["clients", "create", "--name", "x", "--ttl", "86401"],
    "store not a UUID": ["clients", "create", "--name", "x", "--store", "not-a-uuid"],
    "unknown store": ["clients", "create", "--name", "x", "--store", str(uuid.UUID(int=1))],
    "public with client_credentials": [
        "clients", "create", "--name", "x", "--public", "--grant", "client_credentials",
    ],
    "unknown grant": ["clients", "create", "--name", "x", "--grant", "password"],
    "unknown scope": ["clients", "create", "--name", "x", "--scope", "admin"],
    "blank name": ["clients", "create", "--name", "  "],
    "list of unknown store": ["clients", "list", "--store", str(uuid.UUID(int=1))],
    "disable unknown client": ["clients", "disable", "no-such-client"],
    "rotate unknown client": ["clients", "rotate-secret", "no-such-client"],
    "rotate with a negative grace": ["clients", "rotate-secret", "x", "--grace", "-1"],
    "rotate with a grace over 30 days": ["clients", "rotate-secret", "x", "--grace", "2592001"],
    "keys rotate with negative pre-publication": ["keys", "rotate", "--prepublication", "-5"],
}  # fmt: skip


@pytest.mark.parametrize("args", BAD_INPUT.values(), ids=BAD_INPUT.keys())
def test_bad_input_is_one_line_on_stderr_and_nothing_on_stdout(
    migrated: Keyhouse, args: list[str]
) -> None:
    result = migrated(*args, "--json")
    assert result.exit_code != 0
    assert result.stdout == ""
    assert result.stderr.startswith("error: ")
    assert result.stderr.endswith("\n") and result.stderr.count("\n") == 1
    assert migrated.json("clients", "list") == []


def test_production_without_server_secret_is_a_one_line_error(tmp_path: Path) -> None:
    environment = clean_environment() | {
        "KEYHOUSE_ENVIRONMENT": "production",
        "KEYHOUSE_ISSUER": "https://auth.example.com",
        "KEYHOUSE_DATA_DIR": str(tmp_path),
    }
    result = subprocess.run(
        [str(KEYHOUSE), "keys", "list", "--json"],
        env=environment,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert result.stdout == ""
    assert "KEYHOUSE_SERVER_SECRET" in result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert list(tmp_path.iterdir()) == []  # no database, no generated secret


# keys


def test_keys_list_shows_the_key_made_at_startup(migrated: Keyhouse) -> None:
    assert migrated.json("keys", "list") == []

    async def jwks(http: httpx.AsyncClient) -> Any:
        return (await http.get("/.well-known/jwks.json")).json()

    published = with_app(migrated.settings(), jwks)
    with_app(migrated.settings(), jwks)  # a second startup reuses the key
    (key,) = migrated.json("keys", "list")
    assert set(key) == {"kid", "algorithm", "created_at", "activated_at", "retired_at"}
    assert [jwk["kid"] for jwk in published["keys"]] == [key["kid"]]
    assert key["algorithm"] == "ES256"
    assert key["activated_at"] is not None
    assert key["retired_at"] is None


def test_rotated_secret_keeps_the_old_one_working_for_the_grace_period(
    migrated: Keyhouse,
) -> None:
    created = migrated.json("clients", "create", "--name", "backend")
    client_id, old_secret = created["client_id"], created["client_secret"]
    rotated = migrated.json("clients", "rotate-secret", client_id, "--grace", "2")
    assert set(rotated) == {"client_id", "client_secret", "store_id", "previous_secret_expires_at"}
    new_secret = rotated["client_secret"]
    assert new_secret != old_secret and len(new_secret) >= 43
    assert new_secret not in json.dumps(migrated.json("clients", "list"))
    settings = migrated.settings()

    async def statuses(http: httpx.AsyncClient) -> tuple[int, int]:
        form = {"grant_type": "client_credentials"}
        old = await http.post(TOKEN_PATH, data=form, auth=(client_id, old_secret))
        new = await http.post(TOKEN_PATH, data=form, auth=(client_id, new_secret))
        return old.status_code, new.status_code

    assert with_app(settings, statuses) == (200, 200)  # during the grace period
    time.sleep(2.1)
    assert with_app(settings, statuses) == (401, 200)  # after it


def test_rotating_a_public_client_is_refused(migrated: Keyhouse) -> None:
    created = migrated.json("clients", "create", "--name", "storefront", "--public")
    result = migrated("clients", "rotate-secret", created["client_id"], "--json")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "public client" in result.stderr


def test_rotation_is_in_the_audit_trail_without_the_secret(migrated: Keyhouse) -> None:
    created = migrated.json("clients", "create", "--name", "backend")
    rotated = migrated.json("clients", "rotate-secret", created["client_id"])
    with sqlite3.connect(migrated.data_dir / "keyhouse.db") as connection:
        events = connection.execute("SELECT event, subject, details FROM audit_event").fetchall()
    assert [event for event, _, _ in events] == ["client.created", "client.secret_rotated"]
    assert all(subject == created["client_id"] for _, subject, _ in events)
    trail = json.dumps(events)
    assert created["client_secret"] not in trail and rotated["client_secret"] not in trail


def test_key_rotation_publishes_first_and_signs_later(migrated: Keyhouse) -> None:
    created = migrated.json("clients", "create", "--name", "backend")
    settings = migrated.settings()
    before, _ = client_credentials(settings, created["client_id"], created["client_secret"])
    (old_key,) = migrated.json("keys", "list")

    rotated = migrated.json("keys", "rotate")
    assert set(rotated) == {"kid", "algorithm", "activates_at", "retiring"}
    assert [key["kid"] for key in rotated["retiring"]] == [old_key["kid"]]
    # Published at once, but the old key keeps signing during the pre-publication period.
    during, jwks = client_credentials(settings, created["client_id"], created["client_secret"])
    assert {key["kid"] for key in jwks["keys"]} == {old_key["kid"], rotated["kid"]}
    assert jwt.get_unverified_header(during.json()["access_token"])["kid"] == old_key["kid"]
    # The old key's tokens outlive the switch: it stays published past their expiry.
    retires_at = datetime.fromisoformat(rotated["retiring"][0]["retires_at"])
    activates_at = datetime.fromisoformat(rotated["activates_at"])
    assert (retires_at - activates_at).total_seconds() >= 86_400
    verified_claims(before.json()["access_token"], jwks, TEST_ISSUER)


def test_after_pre_publication_the_new_key_signs_and_old_tokens_still_verify(
    migrated: Keyhouse,
) -> None:
    created = migrated.json("clients", "create", "--name", "backend")
    settings = migrated.settings()
    before, _ = client_credentials(settings, created["client_id"], created["client_secret"])
    rotated = migrated.json("keys", "rotate", "--prepublication", "0")
    after, jwks = client_credentials(settings, created["client_id"], created["client_secret"])
    assert jwt.get_unverified_header(after.json()["access_token"])["kid"] == rotated["kid"]
    verified_claims(before.json()["access_token"], jwks, TEST_ISSUER)
    verified_claims(after.json()["access_token"], jwks, TEST_ISSUER)
    kinds = {key["kid"]: key for key in migrated.json("keys", "list")}
    assert kinds[rotated["kid"]]["retired_at"] is None


# serve


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_for_metadata(server: subprocess.Popen[bytes], url: str) -> httpx.Response:
    deadline = time.monotonic() + SERVER_START_SECONDS
    while time.monotonic() < deadline:
        assert server.poll() is None, "keyhouse serve exited while starting"
        try:
            return httpx.get(url + "/.well-known/oauth-authorization-server", timeout=2)
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError("keyhouse serve did not answer in time")


# Uvicorn re-raises the signal once it has shut down, so SIGTERM ends the process as SIGTERM
# would (status 143 in a shell); SIGINT becomes KeyboardInterrupt, handled by the CLI.
CLEAN_EXITS = {signal.SIGINT: {0, 130}, signal.SIGTERM: {0, -signal.SIGTERM}}


@pytest.mark.parametrize("stop_signal", CLEAN_EXITS, ids=lambda s: s.name)
def test_serve_on_a_fresh_data_dir(tmp_path: Path, stop_signal: signal.Signals) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    environment = clean_environment() | {"KEYHOUSE_DATA_DIR": str(data_dir)}
    log = tmp_path / "serve.log"
    with log.open("wb") as output:
        server = subprocess.Popen(
            [str(KEYHOUSE), "serve", "--port", str(port), "--no-access-log"],
            env=environment,
            cwd=tmp_path,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        metadata = wait_for_metadata(server, url)
        assert metadata.status_code == 200
        assert metadata.json()["issuer"] == url
        assert metadata.json()["token_endpoint"] == url + TOKEN_PATH

        created = subprocess.run(
            [str(KEYHOUSE), "clients", "create", "--name", "backend", "--json"],
            env=environment,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        client = json.loads(created.stdout)
        token = httpx.post(
            url + TOKEN_PATH,
            data={"grant_type": "client_credentials"},
            auth=(client["client_id"], client["client_secret"]),
        )
        assert token.status_code == 200, token.text
        jwks = httpx.get(url + "/.well-known/jwks.json").json()
        assert verified_claims(token.json()["access_token"], jwks, url)["iss"] == url

        server.send_signal(stop_signal)
        returncode = server.wait(timeout=SERVER_STOP_SECONDS)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    output_text = log.read_text()
    assert returncode in CLEAN_EXITS[stop_signal], output_text
    assert "Application shutdown complete" in output_text

    secret_file = data_dir / "keyhouse.secret"
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    with sqlite3.connect(data_dir / "keyhouse.db") as connection:
        stores = connection.execute("SELECT name FROM store").fetchall()
        keys = connection.execute("SELECT kid FROM signing_key").fetchall()
        versions = connection.execute("SELECT version_num FROM alembic_version").fetchall()
    assert stores == [("Default store",)]
    assert [kid for (kid,) in keys] == [jwk["kid"] for jwk in jwks["keys"]]
    assert len(versions) == 1
