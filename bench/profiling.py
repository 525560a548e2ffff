"""`--profile`: a py-spy recording of a server while one more (unmeasured) load runs: a flame
graph (SVG), or py-spy's raw collapsed stacks for bench/layers.py."""

import subprocess
from collections.abc import Callable
from pathlib import Path

from harness import RESULTS_DIR, Config, Deployment, Server, fail, venv_tool

PY_SPY_GRACE_SECONDS = 30


def flame_graph_path(deployment: Deployment, what: str, suffix: str = ".svg") -> Path:
    """bench/results/keyhouse-<database>-<N>w-<what>.svg (or another suffix)"""
    name = f"keyhouse-{deployment.database}-{deployment.workers}w-{what}{suffix}"
    return RESULTS_DIR / name


def profile(
    server: Server,
    output: Path,
    config: Config,
    load: Callable[[], object],
    *,
    threads: bool = False,
    raw: bool = False,
) -> None:
    """Records `server` while `load()` runs, into `output`: an SVG flame graph, or with `raw`
    py-spy's collapsed stacks, each led by its thread (for bench/layers.py).

    By default only samples holding the GIL (`--gil`): where the server's Python time goes.
    With `threads`, every thread that is running, one stack per thread (`--threads`), to see
    work off the event loop (the password-hashing pool) beside it. With several workers, all
    of them (`--subprocesses`; the supervisor idles beside them).
    """
    output.parent.mkdir(parents=True, exist_ok=True)
    seconds = max(config.duration - 2, 1)
    argv = [venv_tool("py-spy"), "record", "--pid", str(server.pid)]
    argv += ["--threads"] if threads else ["--gil"]
    argv += ["--threads", "--format", "raw"] if raw else []
    argv += ["--subprocesses"] if server.workers > 1 else []
    argv += ["--duration", str(seconds), "--output", str(output)]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as spy:
        try:
            load()
        finally:
            try:
                spy_output, _ = spy.communicate(timeout=seconds + PY_SPY_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                spy.kill()
                spy.communicate()
                fail("py-spy did not finish")
    if spy.returncode != 0:
        fail(f"py-spy failed (it needs ptrace rights):\n{spy_output.decode(errors='replace')}")
