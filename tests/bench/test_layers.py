"""bench/layers.py: py-spy samples given to the layer their innermost known frame is in."""

from layers import OTHER_THREADS, UNCLASSIFIED, breakdown, layer_of, render

SERVER = [
    "<module> (keyhouse:8)",
    "main (app/cli.py:473)",
    "Server.run (uvicorn/server.py:70)",
    "Runner.run (asyncio/runners.py:118)",
    "RequestResponseCycle.run_asgi (uvicorn/protocols/http/httptools_impl.py:416)",
]
ROUTING = [*SERVER, "APIRouter.app (fastapi/routing.py:2921)"]


def test_the_innermost_frame_of_a_known_layer_decides() -> None:
    verifier = [*ROUTING, "TokenVerifier._verify (app/oauth/verification.py:120)"]
    assert layer_of(verifier) == "bearer validation"
    compiled = [
        *ROUTING,
        "get_product (app/store/products.py:164)",
        "expect (sqlalchemy/sql/coercions.py:1)",
    ]
    assert layer_of(compiled) == "database: SQL building and compiling"
    assert layer_of(ROUTING) == "routing and reading requests (FastAPI, Starlette)"


def test_generic_frames_count_for_their_caller() -> None:
    stack = [*ROUTING, "solve_dependencies (fastapi/dependencies/utils.py:671)"]
    assert layer_of([*stack, "__aenter__ (contextlib.py:204)", "isclass (inspect.py:1)"]) == (
        "FastAPI dependencies and parameters"
    )
    # The event loop's own frames, and the command line outside it: the server.
    assert layer_of(SERVER[:4]) == "server (Uvicorn, HTTP parsing, event loop)"
    assert layer_of(["<module> (somewhere.py:1)"]) == UNCLASSIFIED


def test_samples_of_other_threads_are_a_layer_of_their_own() -> None:
    lines = [
        "thread (10): MainThread;" + ";".join(ROUTING) + " 7\n",
        "thread (11): Thread-3 (_connection_worker_thread);run (aiosqlite/core.py:59) 3\n",
        "\n",
    ]
    samples = breakdown(lines)
    assert samples == {"routing and reading requests (FastAPI, Starlette)": 7, OTHER_THREADS: 3}
    table = render(samples, cpu_us_per_request=200.0).splitlines()
    assert table[1].split()[-3:] == ["7", "70.0%", "140"]
    assert "µs/request" not in render(samples)
