"""`keyhouse accounts` and `keyhouse password-profiles`: an operator sets the realm up once, and
an account member then logs in over HTTP to the account the CLI made."""

import os
from pathlib import Path

import httpx
import pytest

from .test_cli import (
    Keyhouse,
    restore_logging,  # noqa: F401 (autouse: `db upgrade` configures logging)
    with_app,
)

PASSWORD = "correct horse battery staple"


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


def test_an_operator_sets_accounts_up(migrated: Keyhouse) -> None:
    settings = migrated.json("accounts", "settings", "--self-signup", "--token-timeout", "3600")
    assert settings["enable_self_signup"] is True
    assert settings["account_management_authentication_token_timeout_secs"] == 3600
    assert migrated.json("accounts", "settings") == settings  # unchanged when nothing is given
    profile = migrated.json(
        "password-profiles", "create", "--name", "Shop", "--username-format", "email"
    )
    assert (profile["realm_id"], profile["username_format"]) == (settings["realm_id"], "email")
    account = migrated.json("accounts", "create", "--name", "Acme")
    assert account["legal_name"] == "Acme"
    storefront = migrated.json("clients", "create", "--name", "web", "--public")

    async def sign_up(http: httpx.AsyncClient) -> httpx.Response:
        form = {"grant_type": "implicit", "client_id": storefront["client_id"]}
        bearer = (await http.post("/oauth/access_token", data=form)).json()["access_token"]
        body = {
            "data": {
                "type": "account_management_authentication_token",
                "authentication_mechanism": "self_signup",
                "password_profile_id": profile["id"],
                "username": "ron@example.com",
                "password": PASSWORD,
                "name": "Ron",
                "email": "ron@example.com",
            }
        }
        return await http.post(
            "/v2/account-members/tokens", json=body, headers={"Authorization": f"Bearer {bearer}"}
        )

    signed_up = with_app(migrated.settings(), sign_up)
    assert signed_up.status_code == 201, signed_up.text
    member = signed_up.json()["meta"]["account_member_id"]
    added = migrated.json("accounts", "add-member", account["id"], "--member", member)
    assert (added["account_id"], added["account_member_id"]) == (account["id"], member)
    again = migrated("accounts", "add-member", account["id"], "--member", member, "--json")
    assert again.exit_code == 1 and again.stderr.startswith("error: ")


def test_bad_input_is_a_one_line_error(migrated: Keyhouse) -> None:
    for args in (
        ("accounts", "settings", "--self-management", "everything"),
        ("accounts", "settings", "--token-timeout", "5"),
        ("password-profiles", "create", "--name", "x", "--username-format", "phone"),
        ("accounts", "add-member", "not-a-uuid", "--member", "x"),
        (
            "accounts",
            "add-member",
            "00000000-0000-4000-8000-000000000000",
            "--member",
            "00000000-0000-4000-8000-000000000000",
        ),
    ):
        result = migrated(*args, "--json")
        assert result.exit_code != 0, args
        assert result.stdout == ""
        assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, args
