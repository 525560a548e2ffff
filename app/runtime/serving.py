"""The server process: Uvicorn serving `create_app()`, in an interpreter of its own.

`keyhouse serve` migrates and bootstraps, then replaces itself (`os.execv`, same process id) with
`python -P -m app.runtime.serving`, so that the process that serves, and with several workers
each worker it spawns (which imports this module again as its main), holds only what serving
needs: none
of the command line's modules (Typer, Alembic, the migrations), which cost each worker about
13 MiB of memory (measured with bench/run.py; see bench/README.md).

    python -P -m app.runtime.serving --host 127.0.0.1 --port 8000 --workers 2 [--no-access-log]
"""

import argparse
import os
import sys
from collections.abc import Sequence

from app.observability.logs import logging_config
from app.observability.metrics import share_metrics_across_workers
from app.runtime.settings import get_settings


def exec_server(*, host: str, port: int, workers: int, access_log: bool) -> None:
    """Replaces this process with the server's; never returns."""
    # -P: not the current directory first on the path, where another `app` could shadow ours.
    argv = [sys.executable, "-P", "-m", "app.runtime.serving", "--host", host, "--port", str(port)]
    argv += ["--workers", str(workers), *([] if access_log else ["--no-access-log"])]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, argv)  # noqa: S606 (our own interpreter, our own arguments)


def main(argv: Sequence[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(prog="python -m app.runtime.serving")
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--no-access-log", dest="access_log", action="store_false")
    args = parser.parse_args(argv)
    settings = get_settings()
    share_metrics_across_workers(args.workers)  # removed when this process exits
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        access_log=args.access_log,
        proxy_headers=True,
        # Uvicorn's httptools protocol with limits on request heads and connections; between
        # requests, its own keep-alive timeout.
        http="app.runtime.protocol:LimitedHttpProtocol",
        timeout_keep_alive=settings.keep_alive_seconds,
        # Applied by Uvicorn in this process and again in each worker.
        log_config=logging_config(level=settings.log_level, log_format=settings.log_format),
    )


if __name__ == "__main__":
    main()
