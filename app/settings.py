"""Runtime configuration, read once from `KEYHOUSE_*` environment variables."""

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

import limits
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
MAX_CUSTOMER_TOKEN_TTL = 30 * 86_400


def default_hash_concurrency() -> int:
    """All cores but one, so password hashing never takes the event loop's core."""
    return max(1, (os.cpu_count() or 2) - 1)


class Settings(BaseSettings):
    """Every knob Keyhouse has; see the README for what each one is for."""

    model_config = SettingsConfigDict(env_prefix="KEYHOUSE_", extra="ignore")

    environment: Literal["development", "production"] = "development"
    # The embedded default keeps its SQLite file and generated server secret here.
    data_dir: Path = Path(".")
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
    # Let FastAPI's native OpenTelemetry integration trace and measure requests.
    opentelemetry: bool = False
    customer_token_ttl: int = Field(default=86_400, ge=60, le=MAX_CUSTOMER_TOKEN_TTL)
    # How often a worker reads revocations made elsewhere; the bound on how long a revoked
    # token, disabled client or deleted customer's token may still be accepted.
    revocation_poll_seconds: float = Field(default=0.25, gt=0, le=1)
    # How many password hashes may run at once; each holds 32 MiB while it runs.
    password_hash_concurrency: int = Field(default_factory=default_hash_concurrency, ge=1, le=64)
    # When set, `GET /metrics` needs it as a bearer token (Prometheus' scrape `authorization`);
    # unset, the metrics are open to whoever reaches them (keep them off the public side).
    metrics_token: SecretStr | None = Field(default=None, min_length=16)
    # Server logs on stderr: one JSON object per line, or `text` for people at a terminal.
    log_format: Literal["json", "text"] = "json"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    # Rate limits and login lockout (app/ratelimit.py). Unset, counters live in each worker's
    # memory; set (redis:// or rediss://), they live in Redis and hold across workers.
    redis_url: str | None = None
    redis_key_prefix: str = Field(default="keyhouse", min_length=1, max_length=64)
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

    @model_validator(mode="after")
    def _fill_defaults(self) -> "Settings":
        if self.environment == "production":
            self._check_production()
        if not self.database_url:
            self.database_url = f"sqlite+aiosqlite:///{self.data_dir / 'keyhouse.db'}"
        if not self.audience:
            self.audience = self.issuer
        return self

    def _check_production(self) -> None:
        secret = self.server_secret.get_secret_value() if self.server_secret else ""
        if len(secret) < 32:
            raise ValueError("KEYHOUSE_SERVER_SECRET (32+ characters) is required in production")
        # Tokens name their issuer and resource servers check it: no guessing in production.
        if "issuer" not in self.model_fields_set:
            raise ValueError(
                "KEYHOUSE_ISSUER (the public URL of Keyhouse) is required in production"
            )

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def server_secret_file(self) -> Path:
        return self.data_dir / "keyhouse.secret"


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
