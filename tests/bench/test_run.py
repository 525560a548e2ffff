"""The command line of bench/run.py, and what it refuses before measuring anything."""

import asyncio

import pytest
from harness import BENCH_DATABASE, BenchError, _recreate_postgres_database
from run import _arguments


def test_workers_default_to_one_then_two() -> None:
    assert _arguments([]).workers == (1, 2)


def test_workers_are_counts_each_run_once_in_the_order_given() -> None:
    assert _arguments(["--workers", "2, 1,2"]).workers == (2, 1)


@pytest.mark.parametrize("value", ["0", "1,0", "two", ","])
def test_workers_must_be_counts_of_at_least_one(value: str) -> None:
    with pytest.raises(SystemExit):
        _arguments(["--workers", value])


@pytest.mark.parametrize("name", ["keyhouse_bench", "keyhouse_bench_b", "keyhouse_bench2"])
def test_bench_databases_may_be_dropped(name: str) -> None:
    assert BENCH_DATABASE.fullmatch(name)


@pytest.mark.parametrize("name", ["keyhouse", "postgres", "test", 'keyhouse_bench"; --'])
def test_no_other_database_is_dropped(name: str) -> None:
    url = f"postgresql+asyncpg://root@127.0.0.1:1/{name}"  # nothing listens on port 1
    with pytest.raises(BenchError, match="refusing to drop"):
        asyncio.run(_recreate_postgres_database(url))
