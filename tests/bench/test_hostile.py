"""bench/hostile.py against a real `keyhouse serve` (access log on): each hostile shape sent to
each class of route is answered, never with a 5xx, at a small cost to the worker, while another
client's token requests keep their p99 (issue 20)."""

from typing import Any

import hostile
import pytest

pytestmark = pytest.mark.timing

# Worker CPU time per hostile request. The shapes cost 2-8 ms here on an idle machine (counted
# in 10 ms ticks over 18 requests), 10 with another test run beside it; a path of 8 KB of `eyJ`
# cost 300 ms in the log's redaction alone, a 64 KB one 26 s.
CPU_MS_PER_REQUEST = 20
# The probe's p99 during the shapes: under this, or 5 times its p99 alone on a busy machine.
PROBE_P99_MS = 100
REFUSED = {
    "token-like path, 64 KB": "414",
    "one header of 64 KB": "431",
    "150 headers": "431",
}


def assert_bounded(results: dict[str, Any]) -> None:
    for row in results["shapes"]:
        assert row["errors"] == {}, row  # every request answered: none reset, dropped or late
        assert not [status for status in row["statuses"] if status.startswith("5")], row
        assert row["worker_cpu_ms_per_request"] < CPU_MS_PER_REQUEST, row
        if row["shape"] in REFUSED:
            assert row["statuses"] == {REFUSED[row["shape"]]: row["requests"]}, row
    alone, during = results["probe"]["alone"], results["probe"]["during"]
    assert during["errors"] == 0
    assert during["p99_ms"] < max(PROBE_P99_MS, 5 * alone["p99_ms"]), results["probe"]
    assert results["huge_header"]["answer"] == "431"
    assert results["huge_header"]["peak_rss_growth_mib"] < 8  # was +64 MiB: the header, whole
    assert results["workers_replaced"] == 0


def test_hostile_input_costs_a_worker_little_and_other_clients_nothing() -> None:
    assert_bounded(hostile.run(rounds=3, probe_seconds=2))


@pytest.mark.slow
def test_hostile_input_at_the_documented_size_with_two_workers() -> None:
    """The run docs/reliability.md reports (`bench/hostile.py --workers 2`), held to the same
    bounds; with two workers, Uvicorn's supervisor replaces a worker that stops answering."""
    assert_bounded(hostile.run(rounds=5, probe_seconds=5, workers=2))
