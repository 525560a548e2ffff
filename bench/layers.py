"""Where a server's Python time goes, by layer: a py-spy profile in raw (collapsed) format,
each sample given to the innermost layer its stack passes through.

`bench/run.py --profile` records the protected reads this way (`py-spy record --gil --threads
--format raw`, so only samples holding the GIL: Python's CPU time) and prints the breakdown;
it can be printed again from the recording:

    .venv/bin/python bench/layers.py bench/results/keyhouse-sqlite-1w-protected-product.txt

A sample's stack is read from its innermost frame outwards; the first frame whose file belongs
to a layer below decides (so time in SQLAlchemy called by a route is SQLAlchemy's), frames of
generic modules (`contextlib`, `typing`, `asyncio`...) being given to their caller. Samples of
threads other than the event loop's (the SQLite driver's, the password pool's) are a layer of
their own.
"""

import argparse
import re
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

OTHER_THREADS = "other threads (database driver, thread pools)"
UNCLASSIFIED = "other"
# Each layer, and fragments of the file paths of its frames; checked in this order per frame.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "bearer validation",
        ("app/http/security.py", "app/oauth/verification.py", "app/oauth/revocation", "jwt/"),
    ),
    (
        "rendering (JSON, responses)",
        (
            "fastapi/encoders.py",
            "/json/",
            "orjson",
            "starlette/responses.py",
            "app/http/jsonapi.py",
        ),
    ),
    ("database: session and ORM", ("sqlalchemy/orm/", "sqlalchemy/ext/asyncio/session.py")),
    (
        "database: values to Python (UUIDs, JSON, times)",
        (
            "sqlalchemy/sql/sqltypes.py",
            "sqlalchemy/sql/type_api.py",
            "processors",
            "app/runtime/db.py",
        ),
    ),
    ("database: SQL building and compiling", ("sqlalchemy/sql/",)),
    ("database: engine, pool, driver", ("sqlalchemy/", "greenlet", "aiosqlite/", "asyncpg/")),
    ("store code (app/store: documents, checks)", ("app/store/",)),
    (
        "FastAPI dependencies and parameters",
        ("fastapi/dependencies/", "fastapi/security/", "fastapi/params.py", "pydantic"),
    ),
    (
        "middleware (telemetry, CORS, limits, errors)",
        ("app/", "starlette/middleware/", "fastapi/_body_limit", "fastapi/telemetry", "prometheus"),
    ),
    ("routing and reading requests (FastAPI, Starlette)", ("fastapi/", "starlette/")),
    ("server (Uvicorn, HTTP parsing, event loop)", ("uvicorn/", "httptools", "uvloop")),
)
# Generic modules every layer calls: their frames are passed through to their caller's.
PASSED_THROUGH = (
    *("contextlib.py", "inspect.py", "typing.py", "functools.py", "abc.py", "enum.py"),
    *("uuid.py", "dataclasses.py", "/re/", "datetime.py", "_collections_abc.py", "weakref.py"),
    *("/collections/", "threading.py", "copy.py", "/urllib/", "/asyncio/", "selectors.py"),
)
_FILE = re.compile(r"\(([^()]*?)(?::\d+)?\)$")  # `function (path/to/file.py:123)`


def layer_of(frames: Sequence[str]) -> str:
    """The layer of one sample: its frames, outermost first."""
    paths = [found.group(1) if (found := _FILE.search(frame)) else frame for frame in frames]
    for path in reversed(paths):
        if any(fragment in path for fragment in PASSED_THROUGH):
            continue
        for layer, fragments in LAYERS:
            if any(fragment in path for fragment in fragments):
                return layer
    return UNCLASSIFIED


def breakdown(lines: Iterable[str], main_thread: str = "MainThread") -> Counter[str]:
    """Samples per layer, from py-spy's raw lines: `frame;frame;... count`, each stack led by
    its thread when recorded with `--threads`."""
    samples: Counter[str] = Counter()
    for line in lines:
        stack, _, count = line.rstrip("\n").rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        threaded = frames[0].startswith("thread (")
        if threaded and main_thread not in frames[0]:
            samples[OTHER_THREADS] += int(count)
        else:
            samples[layer_of(frames[1:] if threaded else frames)] += int(count)
    return samples


def render(samples: Counter[str], cpu_us_per_request: float | None = None) -> str:
    """A text table, largest layer first: samples, share and, given the CPU time a request
    took, each layer's part of it."""
    total = sum(samples.values()) or 1
    title = f"{'layer':<48} {'samples':>8} {'share':>6}"
    lines = [title + ("  µs/request" if cpu_us_per_request else "")]
    for layer, count in samples.most_common():
        share = count / total
        line = f"{layer:<48} {count:>8} {share:>6.1%}"
        if cpu_us_per_request:
            line += f"  {share * cpu_us_per_request:>10.0f}"
        lines.append(line)
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("raw", type=Path, help="a py-spy recording in raw format")
    parser.add_argument("--cpu-us-per-request", type=float, help="to give each layer in µs")
    args = parser.parse_args(argv)
    with args.raw.open() as recording:
        print(render(breakdown(recording), args.cpu_us_per_request))
    return 0


if __name__ == "__main__":
    sys.exit(main())
