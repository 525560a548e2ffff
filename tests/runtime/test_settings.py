"""Settings from `KEYHOUSE_*`: development defaults, and production refusing to guess."""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from app.runtime.settings import ConfigurationError, Settings, get_settings

GOOD_SECRET = "a-production-server-secret-of-40-chars!!"
ISSUER = "https://auth.example.com"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No `KEYHOUSE_*` variable from the outside leaks in, and no cached settings leak out."""
    for name in list(os.environ):
        if name.startswith("KEYHOUSE_"):
            monkeypatch.delenv(name)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_development_defaults(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert settings.environment == "development"
    assert settings.is_sqlite
    assert settings.database_url == f"sqlite+aiosqlite:///{tmp_path / 'keyhouse.db'}"
    assert settings.server_secret is None
    assert settings.server_secret_file == tmp_path / "keyhouse.secret"
    assert settings.issuer == "http://127.0.0.1:8000"
    assert settings.audience == settings.issuer
    assert settings.signing_algorithm == "ES256"


def test_the_edge_has_safe_limits_by_default() -> None:
    settings = Settings()
    assert (settings.max_url_bytes, settings.max_header_bytes) == (8192, 32_768)
    assert settings.max_header_count == 100
    assert (settings.header_timeout_seconds, settings.keep_alive_seconds) == (10.0, 5)
    assert settings.max_connections == 1000


def test_issuer_loses_its_trailing_slash_and_is_the_default_audience() -> None:
    settings = Settings(issuer=ISSUER + "/")
    assert settings.issuer == ISSUER
    assert settings.audience == ISSUER
    assert Settings(issuer=ISSUER, audience="https://api.example.com").audience == (
        "https://api.example.com"
    )


def test_defaults_are_not_counted_as_configured() -> None:
    """`keyhouse serve` serves the issuer it listens on unless KEYHOUSE_ISSUER was given."""
    assert "issuer" not in Settings().model_fields_set
    assert "issuer" in Settings(issuer=ISSUER).model_fields_set


def test_settings_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("KEYHOUSE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("KEYHOUSE_SIGNING_ALGORITHM", "RS256")
    monkeypatch.setenv("KEYHOUSE_TOKEN_TTL", "600")
    settings = get_settings()
    assert settings.data_dir == tmp_path
    assert settings.signing_algorithm == "RS256"
    assert settings.token_ttl == 600
    assert get_settings() is settings  # read once


@pytest.mark.parametrize("secret", [None, "", "x" * 31])
def test_production_requires_a_long_server_secret(secret: str | None) -> None:
    with pytest.raises(ValidationError, match="KEYHOUSE_SERVER_SECRET"):
        Settings(
            environment="production",
            issuer=ISSUER,
            server_secret=SecretStr(secret) if secret is not None else None,
        )


def test_production_requires_an_issuer() -> None:
    with pytest.raises(ValidationError, match="KEYHOUSE_ISSUER"):
        Settings(environment="production", server_secret=SecretStr(GOOD_SECRET))


def test_production_with_secret_and_issuer() -> None:
    settings = Settings(
        environment="production", issuer=ISSUER, server_secret=SecretStr(GOOD_SECRET)
    )
    assert settings.server_secret is not None
    assert settings.server_secret.get_secret_value() == GOOD_SECRET
    assert GOOD_SECRET not in repr(settings)


@pytest.mark.parametrize("variable", ["PASSWORD_RESET_URL", "EMAIL_VERIFICATION_URL"])
@pytest.mark.parametrize(
    "link",
    ["https://shop.example/reset?token={token}", "https://shop.example/reset/{token}#top"],
    ids=["query", "path"],
)
def test_production_keeps_mailed_tokens_in_the_fragment(
    monkeypatch: pytest.MonkeyPatch, variable: str, link: str
) -> None:
    """A token in the query or path reaches the storefront's logs and every Referer header."""
    monkeypatch.setenv("KEYHOUSE_ENVIRONMENT", "production")
    monkeypatch.setenv("KEYHOUSE_ISSUER", ISSUER)
    monkeypatch.setenv("KEYHOUSE_SERVER_SECRET", GOOD_SECRET)
    monkeypatch.setenv(f"KEYHOUSE_{variable}", link)
    with pytest.raises(ConfigurationError) as raised:
        get_settings()
    assert f"KEYHOUSE_{variable}" in str(raised.value) and "fragment" in str(raised.value)
    get_settings.cache_clear()
    monkeypatch.setenv(f"KEYHOUSE_{variable}", "https://shop.example/#token={token}")
    assert get_settings().environment == "production"
    # Development takes either, for a page that reads the query.
    monkeypatch.setenv("KEYHOUSE_ENVIRONMENT", "development")
    monkeypatch.setenv(f"KEYHOUSE_{variable}", link)
    get_settings.cache_clear()
    assert get_settings().environment == "development"


def test_production_from_the_environment_without_secret_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KEYHOUSE_ENVIRONMENT", "production")
    monkeypatch.setenv("KEYHOUSE_ISSUER", ISSUER)
    with pytest.raises(ConfigurationError) as raised:
        get_settings()
    message = str(raised.value)
    assert "KEYHOUSE_SERVER_SECRET" in message
    assert "production" in message
    assert "\n" not in message


def test_configuration_error_never_quotes_the_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    short_secret = "Sup3rSecretButShort"
    monkeypatch.setenv("KEYHOUSE_ENVIRONMENT", "production")
    monkeypatch.setenv("KEYHOUSE_ISSUER", ISSUER)
    monkeypatch.setenv("KEYHOUSE_SERVER_SECRET", short_secret)
    with pytest.raises(ConfigurationError) as raised:
        get_settings()
    assert "KEYHOUSE_SERVER_SECRET" in str(raised.value)
    assert short_secret not in str(raised.value)
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


@pytest.mark.parametrize(
    ("name", "value", "variable"),
    [
        ("KEYHOUSE_ENVIRONMENT", "staging", "KEYHOUSE_ENVIRONMENT"),
        ("KEYHOUSE_TOKEN_TTL", "0", "KEYHOUSE_TOKEN_TTL"),
        ("KEYHOUSE_SIGNING_ALGORITHM", "HS256", "KEYHOUSE_SIGNING_ALGORITHM"),
        # The edge's limits (app/runtime/protocol.py) have floors: none may turn a limit off.
        ("KEYHOUSE_MAX_URL_BYTES", "0", "KEYHOUSE_MAX_URL_BYTES"),
        ("KEYHOUSE_MAX_HEADER_BYTES", "100", "KEYHOUSE_MAX_HEADER_BYTES"),
        ("KEYHOUSE_MAX_HEADER_COUNT", "0", "KEYHOUSE_MAX_HEADER_COUNT"),
        ("KEYHOUSE_HEADER_TIMEOUT_SECONDS", "0", "KEYHOUSE_HEADER_TIMEOUT_SECONDS"),
        ("KEYHOUSE_KEEP_ALIVE_SECONDS", "0", "KEYHOUSE_KEEP_ALIVE_SECONDS"),
        ("KEYHOUSE_MAX_CONNECTIONS", "0", "KEYHOUSE_MAX_CONNECTIONS"),
    ],
)
def test_invalid_values_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, variable: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError, match=variable):
        get_settings()


def test_a_short_metrics_token_is_refused_without_quoting_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    short_token = "scrape-me-now"
    monkeypatch.setenv("KEYHOUSE_METRICS_TOKEN", short_token)
    with pytest.raises(ConfigurationError, match="KEYHOUSE_METRICS_TOKEN") as raised:
        get_settings()
    assert short_token not in str(raised.value)
