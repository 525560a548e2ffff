"""The server process `keyhouse serve` hands over to: the command it runs, and Uvicorn's call.

`keyhouse serve` itself is driven as a real subprocess in tests/cli/test_cli.py, tests/serve.py
(several workers) and tests/observability/test_serve_logs.py; this checks the hand-over's two
halves.
"""

import os
import subprocess
import sys
from typing import Any

import pytest

from app.runtime import serving


def test_the_command_line_hands_over_to_a_fresh_interpreter(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[str, list[str]]] = []
    monkeypatch.setattr(os, "execv", lambda path, argv: calls.append((path, argv)))
    serving.exec_server(host="127.0.0.1", port=8123, workers=2, access_log=False)
    server = ["-P", "-m", "app.runtime.serving", "--host", "127.0.0.1", "--port", "8123"]
    assert calls == [
        (sys.executable, [sys.executable, *server, "--workers", "2", "--no-access-log"])
    ]


def test_the_server_process_runs_uvicorn_as_the_command_line_did(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import uvicorn

    runs: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
    shared: list[int] = []
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: runs.append((args, kwargs)))
    monkeypatch.setattr(serving, "share_metrics_across_workers", shared.append)
    serving.main(["--host", "0.0.0.0", "--port", "8000", "--workers", "3"])  # noqa: S104
    assert shared == [3]  # the workers' metrics directory, made and removed by this process
    [(args, kwargs)] = runs
    assert args == ("app.main:create_app",)
    log_config = kwargs.pop("log_config")
    assert kwargs == {
        **{"factory": True, "host": "0.0.0.0", "port": 8000, "workers": 3},  # noqa: S104
        **{"access_log": True, "proxy_headers": True},
        # Request heads and connections bounded (app/runtime/protocol.py); idle connections closed.
        **{"http": "app.runtime.protocol:LimitedHttpProtocol", "timeout_keep_alive": 5},
    }
    assert log_config["filters"] == {"redact": {"()": "app.observability.logs.RedactSecrets"}}


# Loaded by commands, or only once a feature is used: never by a worker as it starts.
NOT_FOR_WORKERS = ["typer", "alembic", "app.cli", "app.migrations", "redis"]
NOT_FOR_WORKERS += ["httpx", "joserfc", "aiosmtplib"]


def test_a_worker_loads_nothing_only_commands_or_unused_features_need() -> None:
    """Each module a worker holds costs its memory (bench/README.md): the command line, the
    migrations, redis-py without KEYHOUSE_REDIS_URL, httpx and joserfc before any login
    provider is asked, and aiosmtplib before the first mail, are left out."""
    probe = (
        "import sys, app.runtime.serving; from app.main import create_app; create_app(); "
        f"print(*[name for name in {NOT_FOR_WORKERS!r} if name in sys.modules])"
    )
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("KEYHOUSE_") and name != "PYTHONPATH"
    }
    loaded = subprocess.run(
        [sys.executable, "-P", "-c", probe],
        env=environment,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert loaded.stdout.split() == []
