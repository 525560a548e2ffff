"""Runtime configuration, read once from `KEYHOUSE_*` environment variables."""

import os
from email.utils import parseaddr
from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import limits
from pydantic import (
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
MAX_CUSTOMER_TOKEN_TTL = 30 * 86_400


def default_hash_concurrency() -> int:
    """All cores but one, so password hashing never takes the event loop's core."""
    return max(1, (os.cpu_count() or 2) - 1)


class Settings(BaseSettings):
    """Every knob Keyhouse has; see the README for what each one is for."""

    model_config = SettingsConfigDict(env_prefix="KEYHOUSE_", extra="ignore")
    _data_dir_source: str = PrivateAttr(default="")

    environment: Literal["development", "production"] = "development"
    # Where the embedded default keeps its SQLite file and generated server secret; unset, the
    # directory of the SQLite database `database_url` names, else a per-user directory
    # (`data_dir_source` says which). Never the working directory: every command run from
    # anywhere must find the same secret.
    data_dir: Path = Path()
    database_url: str = ""
    issuer: str = f"http://{DEFAULT_HOST}:{DEFAULT_PORT}"
    # The `aud` of access tokens: the API that accepts them. Defaults to the issuer.
    audience: str = ""
    # Protects stored key material and keys the hash of client secrets. Generated into
    # `data_dir` in development; must be given (32+ characters) in production.
    server_secret: SecretStr | None = None
    token_ttl: int = Field(default=3600, ge=1, le=86_400)
    signing_algorithm: Literal["ES256", "RS256"] = "ES256"
    # How long a worker trusts its in-memory copy of a client before reading it again.
    client_cache_seconds: float = Field(default=1.0, ge=0, le=60)
    # Likewise for the products storefronts read (app/store/catalogue.py); 0 reads every time.
    catalogue_cache_seconds: float = Field(default=1.0, ge=0, le=60)
    max_token_request_bytes: int = Field(default=16_384, ge=1024)
    # Every other route: larger bodies are refused with 413 (bodylimit.py).
    max_request_bytes: int = Field(default=65_536, ge=1024)
    # What a connection may cost a worker before the app sees a request
    # (app/runtime/protocol.py): the request target (414), the request line and headers
    # together and the number of headers (431), the time from a connection's start, or a
    # request's first byte, to its headers' end (408, or closed if nothing came), from the
    # headers' end to the body's (408: a 64 KiB body in 30 s is 17 kbit/s), and the
    # connections a worker serves at once (those past it are answered 503). Idle keep-alive
    # connections close after `keep_alive_seconds`.
    max_url_bytes: int = Field(default=8192, ge=256, le=1_048_576)
    max_header_bytes: int = Field(default=32_768, ge=1024, le=1_048_576)
    max_header_count: int = Field(default=100, ge=10, le=10_000)
    header_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    body_timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    keep_alive_seconds: int = Field(default=5, ge=1, le=300)
    max_connections: int = Field(default=1000, ge=1, le=100_000)
    # Let FastAPI's native OpenTelemetry integration trace and measure requests.
    opentelemetry: bool = False
    customer_token_ttl: int = Field(default=86_400, ge=60, le=MAX_CUSTOMER_TOKEN_TTL)
    # How often a worker reads revocations made elsewhere; the bound on how long a revoked
    # token, disabled client or deleted customer's token may still be accepted.
    revocation_poll_seconds: float = Field(default=0.25, gt=0, le=1)
    # Writes that every worker copies (revocations, keys, clients, products) are pushed to every
    # worker (app/runtime/change_feed.py): over Redis pub/sub when `redis_url` is set, else over
    # PostgreSQL LISTEN/NOTIFY; `off` (or SQLite) keeps polling every `revocation_poll_seconds`.
    change_push: Literal["auto", "off"] = "auto"
    # While the push is connected, the table is still read this often, for a lost message.
    change_poll_seconds: float = Field(default=5.0, gt=0, le=300)
    # PostgreSQL LISTEN needs a session of its own: behind a transaction-mode pooler (PgBouncer)
    # point this at the server itself. Unset, `database_url`.
    listen_database_url: str | None = None
    # How many password hashes may run at once; each holds 32 MiB while it runs.
    password_hash_concurrency: int = Field(default_factory=default_hash_concurrency, ge=1, le=64)
    # When set, `GET /metrics` needs it as a bearer token (Prometheus' scrape `authorization`);
    # unset, the metrics are open to whoever reaches them (keep them off the public side).
    metrics_token: SecretStr | None = Field(default=None, min_length=16)
    # Server logs on stderr: `json` (one object per line, for collectors), `text` (for people),
    # or `auto`: text when stderr is a terminal, JSON otherwise.
    log_format: Literal["auto", "json", "text"] = "auto"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    # Rate limits and login lockout (app/runtime/ratelimit.py). Unset, counters live in each
    # worker's memory; set (redis:// or rediss://), they live in Redis and hold across workers.
    redis_url: str | None = None
    redis_key_prefix: str = Field(default="keyhouse", min_length=1, max_length=64)
    # How long a Redis call may take before Redis counts as away (request limits then fail open,
    # logins closed). A worker whose event loop stalls longer than this (a long GC pause on a
    # loaded host) sees a Redis that did answer as away, so keep it above such stalls.
    redis_timeout_seconds: float = Field(default=0.5, gt=0, le=30)
    # Limits in `limits` notation ("600/minute"). Per client: only clients that authenticated
    # with their secret; a public client id alone is anyone's to send.
    token_rate_limit_per_client: str = "6000/minute"  # noqa: S105 (a limit, not a secret)
    token_rate_limit_per_address: str = "600/minute"  # noqa: S105 (a limit)
    login_rate_limit_per_client: str = "1200/minute"
    login_rate_limit_per_address: str = "60/minute"
    # Failed logins within the window lock (store, email, address), put the account under
    # attack (only addresses without a failure may still try), or lock the address.
    lockout_window_seconds: int = Field(default=900, ge=1, le=86_400)
    lockout_pair_failures: int = Field(default=5, ge=1)
    lockout_account_failures: int = Field(default=20, ge=1)
    lockout_address_failures: int = Field(default=50, ge=1)
    # Password reset mails (app/runtime/mail.py, app/customers/mail/outbox.py). `smtp://user:pass@host:587`
    # sends with STARTTLS, `smtps://…:465` over TLS from the start; unset, reset requests are 503.
    smtp_url: SecretStr | None = None
    # CA certificates (PEM) to trust for the SMTP server instead of the system's.
    smtp_ca_file: Path | None = None
    mail_from: str | None = None
    # The link in the mail; `{token}` is replaced by the one-time token.
    password_reset_url: str | None = None
    password_reset_ttl: int = Field(default=900, ge=60, le=86_400)
    # The link in verification and email change mails; `{token}` is replaced by the one-time
    # token. Unset, emails are not verified by mail (and a store cannot require it).
    email_verification_url: str | None = None
    email_verification_ttl: int = Field(default=86_400, ge=300, le=7 * 86_400)
    # Reset requests per email address (known or not), so nobody can flood a shopper's inbox.
    password_reset_rate_limit_per_email: str = "5/hour"  # noqa: S105 (a limit)

    @field_validator("issuer")
    @classmethod
    def _strip_trailing_slash(cls, issuer: str) -> str:
        # A validator, not an assignment below: assigning would mark the issuer as configured
        # (`model_fields_set`), and `keyhouse serve` would no longer default it to its address.
        return issuer.rstrip("/")

    @field_validator("log_level", mode="before")
    @classmethod
    def _level_in_any_case(cls, level: object) -> object:
        return level.upper() if isinstance(level, str) else level

    @field_validator(
        "token_rate_limit_per_client",
        "token_rate_limit_per_address",
        "login_rate_limit_per_client",
        "login_rate_limit_per_address",
        "password_reset_rate_limit_per_email",
    )
    @classmethod
    def _one_rate_limit(cls, value: str) -> str:
        parsed = limits.parse_many(value)  # a ValueError names the rule, not a secret
        if len(parsed) != 1 or parsed[0].amount < 1:
            raise ValueError("one limit of at least 1, such as 600/minute")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, url: str | None) -> str | None:
        if not url:
            return None  # an empty KEYHOUSE_REDIS_URL means none
        if not url.startswith(("redis://", "rediss://")):
            raise ValueError("a redis:// or rediss:// URL")
        return url

    @field_validator("listen_database_url")
    @classmethod
    def _listen_url(cls, url: str | None) -> str | None:
        if not url:
            return None
        if not url.startswith("postgresql"):
            raise ValueError("a postgresql:// URL (LISTEN is PostgreSQL's)")
        return url

    @field_validator("smtp_url")
    @classmethod
    def _smtp_url(cls, url: SecretStr | None) -> SecretStr | None:
        if url is None or not url.get_secret_value():
            return None
        parts = urlsplit(url.get_secret_value())
        # The message names the rule, never the URL: it may hold the SMTP password.
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError("an smtp:// (STARTTLS) or smtps:// (TLS) URL with a host")
        try:
            parts.port  # noqa: B018 (urlsplit checks the port when asked for it)
        except ValueError:
            raise ValueError("the port must be a number from 0 to 65535") from None
        return url

    @field_validator("mail_from")
    @classmethod
    def _sender(cls, sender: str | None) -> str | None:
        if not sender:
            return None
        _name, address = parseaddr(sender)
        if "@" not in address or any(char in sender for char in "\r\n\x00"):
            raise ValueError("an email address, or a name and <address>")
        return sender

    @field_validator("password_reset_url", "email_verification_url")
    @classmethod
    def _mailed_link(cls, url: str | None) -> str | None:
        if not url:
            return None
        if "{token}" not in url or urlsplit(url).scheme not in ("http", "https"):
            raise ValueError("an http(s) URL containing {token}")
        return url

    @model_validator(mode="after")
    def _fill_defaults(self) -> "Settings":
        if self.environment == "production":
            self._check_production()
        self._data_dir_source = self._resolve_data_dir()
        if self.smtp_url is not None and not (self.mail_from and self.password_reset_url):
            raise ValueError(
                "KEYHOUSE_SMTP_URL needs KEYHOUSE_MAIL_FROM and KEYHOUSE_PASSWORD_RESET_URL"
            )
        if not self.database_url:
            self.database_url = f"sqlite+aiosqlite:///{self.data_dir / 'keyhouse.db'}"
        if not self.audience:
            self.audience = self.issuer
        return self

    def _resolve_data_dir(self) -> str:
        """Settles the data directory by the documented rule, and says which part applied."""
        self.database_url = _absolute_sqlite_path(self.database_url)
        if "data_dir" in self.model_fields_set:
            self.data_dir = self.data_dir.expanduser().absolute()
            return "KEYHOUSE_DATA_DIR"
        database_file = sqlite_file(self.database_url)
        if database_file is not None:
            self.data_dir = database_file.parent
            return "the directory of the SQLite database in KEYHOUSE_DATABASE_URL"
        self.data_dir = user_data_dir()
        return "the per-user default ($XDG_DATA_HOME/keyhouse or ~/.local/share/keyhouse)"

    @property
    def data_dir_source(self) -> str:
        """Why the data directory is where it is, in words."""
        return self._data_dir_source

    def _check_production(self) -> None:
        secret = self.server_secret.get_secret_value() if self.server_secret else ""
        if len(secret) < 32:
            raise ValueError("KEYHOUSE_SERVER_SECRET (32+ characters) is required in production")
        # Tokens name their issuer and resource servers check it: no guessing in production.
        if "issuer" not in self.model_fields_set:
            raise ValueError(
                "KEYHOUSE_ISSUER (the public URL of Keyhouse) is required in production"
            )
        for name, url in (
            ("PASSWORD_RESET_URL", self.password_reset_url),
            ("EMAIL_VERIFICATION_URL", self.email_verification_url),
        ):
            # A token in the path or query reaches the storefront's server logs and every
            # Referer the page sends; after `#` it stays in the browser.
            if url is not None and "{token}" not in urlsplit(url).fragment:
                raise ValueError(
                    f"KEYHOUSE_{name} must carry {{token}} in its fragment (after #) in "
                    "production, where no server log or Referer header sees it"
                )

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def server_secret_file(self) -> Path:
        return self.data_dir / "keyhouse.secret"


def user_data_dir() -> Path:
    """The per-user data directory of the XDG base directory spec: `$XDG_DATA_HOME/keyhouse`,
    by default `~/.local/share/keyhouse`."""
    xdg_data_home = os.environ.get("XDG_DATA_HOME", "")
    base = Path(xdg_data_home) if Path(xdg_data_home).is_absolute() else None
    return (base or Path.home() / ".local" / "share") / "keyhouse"


def sqlite_file(database_url: str) -> Path | None:
    """The file of a SQLite URL (`sqlite+aiosqlite:///path`); None for other databases and for
    an in-memory SQLite database."""
    if not database_url.startswith("sqlite"):
        return None
    path = make_url(database_url).database
    return Path(path) if path and path != ":memory:" else None


def _absolute_sqlite_path(database_url: str) -> str:
    """A relative SQLite path made absolute once, so every message names the real file."""
    database_file = sqlite_file(database_url)
    if database_file is None or database_file.is_absolute():
        return database_url
    return make_url(database_url).set(database=str(database_file.absolute())).render_as_string()


class ConfigurationError(Exception):
    """Settings that cannot work; the message names the variables, never their values."""


@lru_cache
def get_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as error:
        # pydantic's own message quotes the input, which may hold the server secret.
        problems = [
            f"KEYHOUSE_{str(problem['loc'][0]).upper()}: {problem['msg']}"
            if problem["loc"]
            else problem["msg"].removeprefix("Value error, ")
            for problem in error.errors(include_input=False, include_url=False)
        ]
        raise ConfigurationError("; ".join(problems)) from None
