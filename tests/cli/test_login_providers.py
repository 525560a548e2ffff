"""`keyhouse login-providers create | list | disable`, and `clients create --redirect-uri`: one
JSON document with `--json`, one-line errors, the client secret from stdin and never shown or
stored in clear."""

import json
import uuid

from typer.testing import CliRunner, Result

from app.cli import cli
from app.runtime.settings import get_settings

from ..conftest import free_port
from ..customers.oidc.conftest import fake_provider as fake_provider
from ..customers.oidc.conftest import provider_server as provider_server
from ..customers.oidc.fake_provider import CLIENT_ID, CLIENT_SECRET, FakeProvider
from .test_cli import Keyhouse, database_text
from .test_cli import restore_logging as restore_logging
from .test_cli_customers import assert_one_line_error, one_document
from .test_cli_customers import migrated as migrated

FIELDS = {
    "id",
    "store_id",
    "name",
    "display_name",
    "issuer",
    "client_id",
    "scope",
    "enabled",
    "link_by_email",
    "email_domains",
    "callback_url",
    "created_at",
}


def run(*args: str, stdin: str = CLIENT_SECRET + "\n") -> Result:
    get_settings.cache_clear()
    try:
        return CliRunner().invoke(cli, list(args), input=stdin, catch_exceptions=False)
    finally:
        get_settings.cache_clear()


def create(issuer: str, *extra: str, stdin: str = CLIENT_SECRET + "\n") -> Result:
    command = ["login-providers", "create", "--name", "example", "--issuer", issuer]
    command += ["--client-id", CLIENT_ID, "--client-secret-stdin", *extra, "--json"]
    return run(*command, stdin=stdin)


def test_create_list_and_disable(migrated: Keyhouse, fake_provider: FakeProvider) -> None:
    created = one_document(create(fake_provider.issuer, "--display-name", "Example ID"))
    assert set(created) == FIELDS
    assert created["issuer"] == fake_provider.issuer and created["client_id"] == CLIENT_ID
    assert created["scope"] == "openid email profile" and created["enabled"] is True
    assert created["display_name"] == "Example ID"
    assert created["link_by_email"] is False and created["email_domains"] == []
    assert created["callback_url"] == "http://127.0.0.1:8000/oauth/customers/login/callback"
    assert CLIENT_SECRET not in json.dumps(created)
    (listed,) = migrated.json("login-providers", "list")
    assert listed == created
    # The secret is in the database only encrypted.
    secret = CLIENT_SECRET.encode()
    for value in database_text(migrated.data_dir / "keyhouse.db"):
        assert secret not in (value if isinstance(value, bytes) else value.encode())
    disabled = migrated.json("login-providers", "disable", created["id"])
    assert disabled["enabled"] is False
    assert migrated.json("login-providers", "list")[0]["enabled"] is False
    events = [row["event"] for row in migrated.json("audit", "list")]
    assert events[:2] == ["login_provider.disabled", "login_provider.created"]


def test_the_secret_is_never_an_argument(migrated: Keyhouse, fake_provider: FakeProvider) -> None:
    command = ["login-providers", "create", "--name", "example", "--issuer", fake_provider.issuer]
    result = run(*command, "--client-id", CLIENT_ID, "--json")
    assert_one_line_error(result)
    assert "--client-secret-stdin" in result.stderr
    assert migrated.json("login-providers", "list") == []


def refused(*args: str, stdin: str = CLIENT_SECRET + "\n") -> str:
    result = run(*args, stdin=stdin)
    assert_one_line_error(result)
    return result.stderr


def test_a_provider_that_cannot_be_used_is_not_registered(
    migrated: Keyhouse, fake_provider: FakeProvider
) -> None:
    nobody = f"http://127.0.0.1:{free_port()}"
    cases: list[tuple[list[str], str]] = [
        ([nobody], "discovery failed: The login provider cannot be reached"),
        (["http://provider.example"], "https URL"),
        ([fake_provider.issuer, "--scope", "email profile"], "includes openid"),
    ]
    for args, said in cases:
        command = ["login-providers", "create", "--name", "example", "--issuer", *args]
        stderr = refused(*command, "--client-id", CLIENT_ID, "--client-secret-stdin", "--json")
        assert said in stderr
    fake_provider.discovery_changes = {"issuer": "https://elsewhere.example"}
    assert "another issuer" in refused(*create_args(fake_provider.issuer))
    fake_provider.discovery_changes = {}
    for name in ("callback", "Example", "x_y", "a" * 64, ""):
        args = create_args(fake_provider.issuer)
        args[args.index("example")] = name
        assert "provider name" in refused(*args)
    assert "client secret" in refused(*create_args(fake_provider.issuer), stdin="\n")
    assert migrated.json("login-providers", "list") == []


def create_args(issuer: str) -> list[str]:
    return [
        "login-providers",
        "create",
        "--name",
        "example",
        "--issuer",
        issuer,
        "--client-id",
        CLIENT_ID,
        "--client-secret-stdin",
        "--json",
    ]


def test_names_are_unique_per_store(migrated: Keyhouse, fake_provider: FakeProvider) -> None:
    one_document(create(fake_provider.issuer))
    assert "already has a login provider" in refused(*create_args(fake_provider.issuer))
    other = migrated.json("stores", "create", "Other")
    one_document(create(fake_provider.issuer, "--store", other["id"]))
    assert len(migrated.json("login-providers", "list")) == 2
    assert len(migrated.json("login-providers", "list", "--store", other["id"])) == 1


def test_disable_needs_a_known_id(migrated: Keyhouse) -> None:
    assert "UUID" in refused("login-providers", "disable", "not-an-id")
    assert "no login provider" in refused("login-providers", "disable", str(uuid.uuid4()))


def test_clients_register_redirect_uris(migrated: Keyhouse) -> None:
    uris = ["https://shop.example/signed-in", "http://127.0.0.1:3000/index.html"]
    created = migrated.json(
        "clients", "create", "--name", "front", "--public",
        "--redirect-uri", uris[0], "--redirect-uri", uris[1],
    )  # fmt: skip
    (listed,) = migrated.json("clients", "list")
    assert listed["client_id"] == created["client_id"]
    assert listed["redirect_uris"] == sorted(uris)
    bad_uris = (
        "http://shop.example/",
        "https://shop.example/#top",
        "/relative",
        "https://u:p@x.y/",
    )
    for bad in bad_uris:
        stderr = refused("clients", "create", "--name", "x", "--redirect-uri", bad, "--json")
        assert "redirect URI" in stderr


def test_linking_by_email_is_off_unless_the_operator_turns_it_on(
    migrated: Keyhouse, fake_provider: FakeProvider
) -> None:
    domains = ["--email-domain", " Example.COM ", "--email-domain", "shop.example.org"]
    limited = one_document(create(fake_provider.issuer, *domains))
    assert limited["link_by_email"] is False
    assert limited["email_domains"] == ["example.com", "shop.example.org"]
    other = migrated.json("stores", "create", "Other")
    anything = one_document(create(fake_provider.issuer, "--link-by-email", "--store", other["id"]))
    assert anything["link_by_email"] is True and anything["email_domains"] == []
    listed = run("login-providers", "list").stdout.splitlines()
    assert listed[0].endswith("links by email: example.com,shop.example.org")
    assert listed[1].endswith("links by email: any domain")
    assert [row["email_domains"] for row in migrated.json("login-providers", "list")] == [
        ["example.com", "shop.example.org"],
        [],
    ]


def test_bad_email_domains_are_refused(migrated: Keyhouse, fake_provider: FakeProvider) -> None:
    for domain in ("@example.com", "*.example.com", "localhost", "exa mple.com", "-x.com"):
        stderr = refused(*create_args(fake_provider.issuer), "--email-domain", domain)
        assert "An email domain is a domain name" in stderr
    both = ["--link-by-email", "--email-domain", "example.com"]
    assert "not both" in refused(*create_args(fake_provider.issuer), *both)
    assert migrated.json("login-providers", "list") == []
