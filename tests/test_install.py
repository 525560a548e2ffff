"""Keyhouse as users install it: the wheel in a fresh virtualenv, used from empty directories with
no checkout, no alembic.ini and no environment of ours, migrates, serves and issues tokens, on
SQLite and on PostgreSQL."""

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import make_url

from .conftest import POSTGRES_URL, free_port, postgres_admin

ROOT = Path(__file__).resolve().parents[1]
INSTALL_SECONDS = 600
START_SECONDS = 30.0


def source_copy(destination: Path) -> Path:
    """The checkout's files as git sees them (committed or not, never ignored ones): setuptools
    builds in the source tree and keeps what an earlier build left in `build/`, so a module
    moved or deleted since would otherwise ride along into the wheel."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)
    return destination


@pytest.fixture(scope="session")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The `bin` directory of a fresh virtualenv with Keyhouse's wheel (not editable)."""
    root = tmp_path_factory.mktemp("installed")
    wheels = root / "wheels"
    build = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(wheels)]
    subprocess.run([*build, str(source_copy(root / "source"))], check=True, timeout=INSTALL_SECONDS)
    (wheel,) = wheels.glob("keyhouse-*.whl")
    subprocess.run([sys.executable, "-m", "venv", str(root / "venv")], check=True)
    bin_dir = root / "venv" / "bin"
    install = [str(bin_dir / "python"), "-m", "pip", "install", "--quiet", str(wheel)]
    subprocess.run(install, check=True, timeout=INSTALL_SECONDS)
    return bin_dir


@pytest.fixture(params=["sqlite", "postgresql"])
def database_environment(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """Nothing (the embedded default), or a PostgreSQL database of this test's own."""
    if request.param == "sqlite":
        yield {}
        return
    if not POSTGRES_URL:
        pytest.skip("KEYHOUSE_TEST_DATABASE_URL is not set")
    server = make_url(POSTGRES_URL)
    name = f"{server.database}_installed"
    drop = f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    asyncio.run(postgres_admin(POSTGRES_URL, [drop, f"CREATE DATABASE {name}"]))
    try:
        url = server.set(database=name).render_as_string(hide_password=False)
        yield {"KEYHOUSE_DATABASE_URL": url}
    finally:
        asyncio.run(postgres_admin(POSTGRES_URL, [drop]))


class User:
    """Someone with the installed `keyhouse`, a home directory, and no project around."""

    def __init__(self, bin_dir: Path, home: Path, environment: dict[str, str]) -> None:
        self.bin_dir = bin_dir
        self.home = home
        self.environment = {
            "PATH": f"{bin_dir}:/usr/bin:/bin",
            "HOME": str(home),
            "LANG": "C.UTF-8",
            **environment,
        }

    def directory(self, name: str) -> Path:
        """An empty working directory."""
        path = self.home / name
        path.mkdir(parents=True)
        return path

    def run(self, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.bin_dir / "keyhouse"), *args],
            cwd=cwd,
            env=self.environment,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def json(self, cwd: Path, *args: str) -> dict[str, str]:
        result = self.run(cwd, *args, "--json")
        assert result.returncode == 0, result.stderr
        document: dict[str, str] = json.loads(result.stdout)
        return document


def wait_until_serving(server: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + START_SECONDS
    while True:
        assert server.poll() is None, f"keyhouse serve exited:\n{log.read_text()}"
        try:
            httpx.get(url + "/healthz", timeout=2).raise_for_status()
            return
        except httpx.TransportError:
            assert time.monotonic() < deadline, "keyhouse serve did not start"
            time.sleep(0.1)


def test_the_installed_wheel_migrates_serves_and_issues_tokens_from_any_directory(
    installed: Path, database_environment: dict[str, str], tmp_path: Path
) -> None:
    user = User(installed, tmp_path / "home", database_environment)
    first, second = user.directory("one"), user.directory("two")
    where = subprocess.run(
        [str(installed / "python"), "-c", "import app; print(app.__file__)"],
        cwd=first,
        env=user.environment,
        capture_output=True,
        text=True,
        check=True,
    )
    assert where.stdout.startswith(str(installed.parent)), "app must come from the wheel"

    upgraded = user.run(first, "db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    assert "Running upgrade" in upgraded.stderr

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    with log.open("wb") as output:
        server = subprocess.Popen(
            [str(installed / "keyhouse"), "serve", "--port", str(port)],
            cwd=first,
            env=user.environment,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until_serving(server, url, log)
        client = user.json(second, "clients", "create", "--name", "backend")
        token = httpx.post(
            url + "/oauth/access_token",
            data={"grant_type": "client_credentials"},
            auth=(client["client_id"], client["client_secret"]),
        )
        assert token.status_code == 200, token.text
        bearer = {"Authorization": f"Bearer {token.json()['access_token']}"}
        assert httpx.get(url + "/v2/products", headers=bearer).status_code == 200
    finally:
        server.terminate()
        server.wait(timeout=20)

    config = user.json(second, "config")
    assert config["data_dir"] == str(user.home / ".local" / "share" / "keyhouse")
    assert config["server_secret_fingerprint"]
    startup = log.read_text()
    assert f"data directory {config['data_dir']}" in startup
    assert list(first.iterdir()) == list(second.iterdir()) == []  # nothing in working dirs
    assert os.listdir(config["data_dir"]) != []


def test_every_package_of_the_source_is_listed_for_the_wheel() -> None:
    """pyproject.toml lists its packages (the migrations are mapped into `app`): a package
    added to the source but not to the list would be missing from every installation."""
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    roots = {"app": ROOT / "app"} | {
        package: ROOT / directory for package, directory in setuptools["package-dir"].items()
    }
    found = {
        ".".join([package, *init.parent.relative_to(directory).parts])
        for package, directory in roots.items()
        for init in directory.rglob("__init__.py")
    }
    assert found == set(setuptools["packages"])
