"""`keyhouse serve` as a real subprocess, for tests that need several worker processes."""

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from .conftest import TEST_SERVER_SECRET, free_port

KEYHOUSE = Path(sys.executable).with_name("keyhouse")
START_SECONDS = 30.0
STOP_SECONDS = 20.0


class Serving:
    """A running `keyhouse serve`: its URL, and its stderr (JSON log lines) in a file."""

    def __init__(self, url: str, log: Path) -> None:
        self.url = url
        self.log = log

    def get(self, path: str, **options: object) -> httpx.Response:
        """On a fresh connection, so that any worker may answer."""
        with httpx.Client(base_url=self.url, timeout=5) as fresh:
            return fresh.get(path, **options)  # type: ignore[arg-type]

    def pids_that_answered(self, path: str) -> set[int]:
        """Which worker processes logged an access line for `path`."""
        lines = [json.loads(line) for line in self.log.read_text().splitlines() if line]
        return {line["pid"] for line in lines if line.get("path") == path}


@contextmanager
def serving(
    tmp_path: Path, *, workers: int, environment: dict[str, str] | None = None
) -> Iterator[Serving]:
    """Starts `keyhouse serve --workers N` on a free port with the test server secret and this
    test's data dir (on SQLite, `serve` migrates it), and stops it afterwards."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    settings = {
        **{
            name: value
            for name, value in os.environ.items()
            if not name.startswith("KEYHOUSE_") and name != "PROMETHEUS_MULTIPROC_DIR"
        },
        "KEYHOUSE_DATA_DIR": str(tmp_path / "served"),
        "KEYHOUSE_ISSUER": url,
        "KEYHOUSE_SERVER_SECRET": TEST_SERVER_SECRET.get_secret_value(),
        **(environment or {}),
    }
    command = [str(KEYHOUSE), "serve", "--port", str(port), "--workers", str(workers)]
    log = tmp_path / "server.log"
    with log.open("wb") as stderr:
        process = subprocess.Popen(command, env=settings, stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        deadline = time.monotonic() + START_SECONDS
        while True:
            assert process.poll() is None, (
                f"keyhouse serve exited while starting:\n{log.read_text()}"
            )
            try:
                httpx.get(url + "/healthz", timeout=2).raise_for_status()  # not counted
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "keyhouse serve did not start"
                time.sleep(0.1)
        yield Serving(url, log)
    finally:
        process.terminate()
        process.wait(timeout=STOP_SECONDS)
