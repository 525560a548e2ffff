"""`keyhouse customers create`: the password from stdin, never echoed; one JSON document with
`--json`; one-line errors on stderr."""

import json
import os
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner, Result

from app.cli import cli
from app.runtime.passwords import password_context
from app.runtime.settings import get_settings

from .test_cli import (
    Keyhouse,
    database_text,
    restore_logging,  # noqa: F401 (autouse: `db upgrade` configures logging)
    with_app,
)

PASSWORD = "correct horse battery staple"


def create_customer(keyhouse: Keyhouse, *args: str, stdin: str = PASSWORD + "\n") -> Result:
    get_settings.cache_clear()
    try:
        command = ["customers", "create", *args, "--json"]
        return CliRunner().invoke(cli, command, input=stdin, catch_exceptions=False)
    finally:
        get_settings.cache_clear()


@pytest.fixture
def migrated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Keyhouse:
    """The CLI on a migrated SQLite database of this test's own."""
    for name in [name for name in os.environ if name.startswith("KEYHOUSE_")]:
        monkeypatch.delenv(name)
    data_dir = tmp_path / "data"
    keyhouse = Keyhouse(data_dir, f"sqlite+aiosqlite:///{data_dir / 'keyhouse.db'}")
    monkeypatch.setenv("KEYHOUSE_DATA_DIR", str(data_dir))
    monkeypatch.setenv("KEYHOUSE_DATABASE_URL", keyhouse.database_url)
    assert keyhouse("db", "upgrade").exit_code == 0
    return keyhouse


def one_document(result: Result) -> Any:
    assert result.exit_code == 0, result.stderr
    assert result.stdout.endswith("\n") and result.stdout.count("\n") == 1
    return json.loads(result.stdout)


def assert_one_line_error(result: Result) -> None:
    assert result.exit_code != 0
    assert result.stdout == ""
    assert result.stderr.startswith("error: ")
    assert result.stderr.endswith("\n") and result.stderr.count("\n") == 1


def test_creates_a_customer_who_can_log_in(migrated: Keyhouse) -> None:
    created = one_document(
        create_customer(migrated, "--email", "Ron@Example.com", "--password-stdin")
    )
    (store,) = migrated.json("stores", "list")
    assert set(created) == {"id", "email", "name", "store_id", "email_verified"}
    assert created["email_verified"] is False
    assert created["email"] == "Ron@Example.com"
    assert created["name"] == "Ron"  # the email before '@'
    assert created["store_id"] == store["id"]

    storefront = migrated.json("clients", "create", "--name", "web", "--public")

    async def log_in(http: httpx.AsyncClient) -> httpx.Response:
        form = {"grant_type": "implicit", "client_id": storefront["client_id"]}
        bearer = (await http.post("/oauth/access_token", data=form)).json()["access_token"]
        body = {"data": {"type": "token", "email": "ron@example.com", "password": PASSWORD}}
        return await http.post(
            "/v2/customers/tokens", json=body, headers={"Authorization": f"Bearer {bearer}"}
        )

    login = with_app(migrated.settings(), log_in)
    assert login.status_code == 200, login.text
    assert login.json()["data"]["customer_id"] == created["id"]


def test_password_is_never_echoed_nor_stored_in_clear(migrated: Keyhouse) -> None:
    result = create_customer(migrated, "--email", "ron@example.com", "--password-stdin")
    one_document(result)
    assert PASSWORD not in result.output
    for value in database_text(migrated.data_dir / "keyhouse.db"):
        assert (PASSWORD.encode() if isinstance(value, bytes) else PASSWORD) not in value


def test_name_and_store_can_be_given(migrated: Keyhouse) -> None:
    store = migrated.json("stores", "create", "Second")
    args = ["--email", "r@e.com", "--name", "Ron Swanson", "--store", store["id"]]
    created = one_document(create_customer(migrated, *args, "--password-stdin"))
    assert created["name"] == "Ron Swanson"
    assert created["store_id"] == store["id"]


def test_only_the_first_line_of_stdin_is_the_password(migrated: Keyhouse) -> None:
    stdin = "first line password\r\nsecond line\n"
    one_document(create_customer(migrated, "--email", "r@e.com", "--password-stdin", stdin=stdin))
    with sqlite3.connect(migrated.data_dir / "keyhouse.db") as connection:
        (hashed,) = connection.execute("SELECT password_hash FROM customer").fetchone()
    assert password_context.verify("first line password", hashed)


def test_duplicate_email_is_a_one_line_error(migrated: Keyhouse) -> None:
    one_document(create_customer(migrated, "--email", "ron@example.com", "--password-stdin"))
    again = create_customer(migrated, "--email", "RON@example.com", "--password-stdin")
    assert_one_line_error(again)
    assert "already exists" in again.stderr


BAD_INPUT: dict[str, tuple[list[str], str]] = {
    "no --password-stdin": (["--email", "r@e.com"], PASSWORD + "\n"),
    "short password": (["--email", "r@e.com", "--password-stdin"], "short\n"),
    "empty stdin": (["--email", "r@e.com", "--password-stdin"], ""),
    "not an email": (["--email", "ron", "--password-stdin"], PASSWORD + "\n"),
    "empty name": (["--email", "r@e.com", "--name", "", "--password-stdin"], PASSWORD + "\n"),
    "store not a UUID": (["--email", "r@e.com", "--store", "x", "--password-stdin"], PASSWORD),
    "unknown store": (
        [
            "--email",
            "r@e.com",
            "--store",
            "00000000-0000-0000-0000-000000000001",
            "--password-stdin",
        ],
        PASSWORD,
    ),
}


@pytest.mark.parametrize(("args", "stdin"), BAD_INPUT.values(), ids=BAD_INPUT.keys())
def test_bad_input_is_one_line_on_stderr(migrated: Keyhouse, args: list[str], stdin: str) -> None:
    result = create_customer(migrated, *args, stdin=stdin)
    assert_one_line_error(result)
    for secret in (PASSWORD, "short"):
        assert secret not in result.stderr
    with sqlite3.connect(migrated.data_dir / "keyhouse.db") as connection:
        assert connection.execute("SELECT count(*) FROM customer").fetchone() == (0,)


def test_delete_removes_the_customer_and_refuses_their_customer_token(migrated: Keyhouse) -> None:
    created = one_document(
        create_customer(migrated, "--email", "ron@example.com", "--password-stdin")
    )
    storefront = migrated.json("clients", "create", "--name", "web", "--public")

    async def log_in(http: httpx.AsyncClient) -> tuple[str, str]:
        form = {"grant_type": "implicit", "client_id": storefront["client_id"]}
        bearer = (await http.post("/oauth/access_token", data=form)).json()["access_token"]
        body = {"data": {"type": "token", "email": "ron@example.com", "password": PASSWORD}}
        login = await http.post(
            "/v2/customers/tokens", json=body, headers={"Authorization": f"Bearer {bearer}"}
        )
        return bearer, login.json()["data"]["token"]

    bearer, customer_token = with_app(migrated.settings(), log_in)
    deleted = migrated.json("customers", "delete", created["id"])
    assert deleted == {"id": created["id"], "store_id": created["store_id"], "deleted": True}

    async def use_token(http: httpx.AsyncClient) -> int:
        sent = {"Authorization": f"Bearer {bearer}", "X-Moltin-Customer-Token": customer_token}
        return (await http.get("/v2/products", headers=sent)).status_code

    assert with_app(migrated.settings(), use_token) == 401
    again = migrated("customers", "delete", created["id"], "--json")
    assert_one_line_error(again)
    assert_one_line_error(migrated("customers", "delete", "not-a-uuid", "--json"))


def test_audit_list_shows_the_newest_events_first(migrated: Keyhouse) -> None:
    one_document(create_customer(migrated, "--email", "ron@example.com", "--password-stdin"))
    client = migrated.json("clients", "create", "--name", "backend")
    migrated.json("clients", "disable", client["client_id"])
    events = migrated.json("audit", "list")
    assert [event["event"] for event in events] == ["client.disabled", "client.created"]
    assert events[0]["subject"] == client["client_id"] and events[0]["actor"] == "cli"
    only = migrated.json("audit", "list", "--event", "client.created", "--limit", "1")
    assert [event["event"] for event in only] == ["client.created"]
    assert client["client_secret"] not in json.dumps(events)
    assert_one_line_error(migrated("audit", "list", "--limit", "0", "--json"))
