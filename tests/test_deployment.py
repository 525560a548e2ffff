"""The deployment files, checked where no Docker engine runs: every setting they pass is one
Keyhouse reads, every command they run exists, and the proxy points at the replicas."""

import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import yaml
from typer.main import get_command

from app.cli import cli
from app.runtime.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
# Variables read by Uvicorn or by the entrypoint, not by Settings.
NOT_SETTINGS = {"KEYHOUSE_WORKERS", "FORWARDED_ALLOW_IPS"}


def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return document


def keyhouse_commands(command: str) -> list[list[str]]:
    """The `keyhouse …` invocations in a shell command line."""
    words = shlex.split(command)
    found, current = [], None
    for word in words:
        if word == "keyhouse":
            current = []
            found.append(current)
        elif current is not None and word in ("&&", ";", "exec"):
            current = None
        elif current is not None:
            current.append(word)
    return found


def assert_cli_accepts(args: list[str]) -> None:
    command = get_command(cli)
    words = [word for word in args if not word.startswith("-")]
    for word in words:
        commands = getattr(command, "commands", None)
        if commands is None:
            break
        assert word in commands, f"keyhouse has no command {args}"
        command = commands[word]


def test_compose_passes_only_settings_keyhouse_reads() -> None:
    known = {f"KEYHOUSE_{name.upper()}" for name in Settings.model_fields}
    for name, service in compose()["services"].items():
        if not str(service.get("image", "")).startswith("keyhouse"):
            continue  # PostgreSQL, Redis and the proxy have settings of their own
        environment = service.get("environment") or {}
        for variable in environment:
            assert variable in known | NOT_SETTINGS, f"{name}: {variable} is not a setting"


def test_compose_and_dockerfile_run_existing_commands() -> None:
    lines = [
        " ".join(service["command"]) if isinstance(service.get("command"), list) else ""
        for service in compose()["services"].values()
    ]
    dockerfile = (ROOT / "Dockerfile").read_text()
    lines += re.findall(r'^CMD \["sh", "-c", "(.*)"\]$', dockerfile, flags=re.M)
    invocations = [args for line in lines for args in keyhouse_commands(line.replace('\\"', ""))]
    assert {tuple(args[:2]) for args in invocations} >= {("db", "upgrade"), ("serve", "--host")}
    for args in invocations:
        assert_cli_accepts(args)


def test_the_proxy_balances_over_every_replica() -> None:
    services = compose()["services"]
    replicas = {
        name
        for name, service in services.items()
        if "keyhouse serve" in str(service.get("command"))
    }
    nginx = (ROOT / "deploy" / "nginx.conf").read_text()
    upstream = set(re.findall(r"^\s*server ([\w-]+):8000", nginx, flags=re.M))
    assert upstream == replicas and len(replicas) >= 2
    assert "./deploy/nginx.conf" in str(services["proxy"]["volumes"])
    assert re.search(r"location = /metrics \{\s*return 404;", nginx)  # never public


def test_replicas_share_postgresql_and_redis() -> None:
    services = compose()["services"]
    for name in ("keyhouse-1", "keyhouse-2"):
        environment = services[name]["environment"]
        assert environment["KEYHOUSE_DATABASE_URL"].startswith("postgresql+asyncpg://")
        assert environment["KEYHOUSE_REDIS_URL"].startswith("redis://")
        assert environment["KEYHOUSE_ENVIRONMENT"] == "production"


def test_the_image_installs_the_package_with_its_migrations() -> None:
    """The wheel built in the image carries the migrations (pyproject.toml maps them into the
    package), so the image needs no alembic.ini or scripts beside it."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    build_stage = dockerfile.split("\nFROM ")[1]
    copied = {
        source
        for line in re.findall(r"^COPY (.+) \S+$", build_stage, flags=re.M)
        for source in line.split()
        if not source.startswith("--")
    }
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert {"pyproject.toml", "app", *setuptools["package-dir"].values()} <= copied
    assert "alembic.ini" not in dockerfile
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert not {"app", "migrations"} & set(ignored)
