"""Keyhouse counting what it asks of its database: the `sizing` scenario's statements per request.

Keyhouse's own app, from `create_app()`, with SQLAlchemy event listeners on every engine the
process makes (the request engine and the background one alike) and one route more,
`GET /_bench/database`, that answers the counts so far as JSON:

- `statements`: statements sent on a cursor (`before_cursor_execute`): every SELECT, INSERT,
  UPDATE and DELETE, on SQLite and PostgreSQL alike. Not counted: the driver's own BEGIN,
  COMMIT and ROLLBACK, and the pre-ping, which asyncpg sends without a cursor.
- `checkouts`: connections taken from a pool (`checkout`). On PostgreSQL each is a round trip
  of its own before the first statement (the pre-ping of the request engine's pool).
- `transactions`: transactions committed (`commit`): one per write.

Counting costs the worker a few microseconds a statement, so the `sizing` scenario counts on
this twin, in a pass of its own under the same load, and measures throughput on a plain
`keyhouse serve`. Started by bench/sizing.py like the other bench apps:

    KEYHOUSE_DATABASE_URL=... KEYHOUSE_ISSUER=... \\
        .venv/bin/python -m uvicorn bench.counted:create_counted_app --factory
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import FastAPI

COUNTS_PATH = "/_bench/database"  # also read by bench/sizing.py, which imports no more of this


def create_counted_app() -> "FastAPI":
    from sqlalchemy import event
    from sqlalchemy.engine import Engine
    from sqlalchemy.pool import Pool

    from app.main import create_app

    counts = {"statements": 0, "checkouts": 0, "transactions": 0}

    def counter(name: str) -> Any:
        def count(*_args: Any, **_kwargs: Any) -> None:
            counts[name] += 1

        return count

    # On the classes: every engine and pool the app makes later is counted.
    event.listen(Engine, "before_cursor_execute", counter("statements"))
    event.listen(Engine, "commit", counter("transactions"))
    event.listen(Pool, "checkout", counter("checkouts"))
    app = create_app()

    @app.get(COUNTS_PATH, include_in_schema=False)
    async def database_counts() -> dict[str, int]:
        return dict(counts)

    return app
