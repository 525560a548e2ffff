"""The fault scripts (bench/faults.py): what their answers add up to, and, marked slow, every
fault run once for a few seconds."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from fault_load import Answer, errors, failed_after, latency_ms, outcomes, recovery_seconds
from fault_soak import quarter_floors
from faults import failures

FAULTS_SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "faults.py"

ANSWERS = [
    Answer("write", sent=0.0, took=0.01, outcome="201"),
    Answer("write", sent=1.0, took=0.01, outcome="503"),
    Answer("login", sent=1.0, took=0.02, outcome="503"),
    Answer("implicit", sent=1.1, took=5.0, outcome="timeout"),
    Answer("write", sent=2.0, took=0.01, outcome="500"),
    Answer("write", sent=3.0, took=0.10, outcome="503"),
    Answer("write", sent=3.2, took=0.05, outcome="201"),
    Answer("login", sent=3.3, took=0.30, outcome="200"),
    Answer("implicit", sent=3.4, took=0.01, outcome="dropped"),
]


def test_answers_are_counted_by_kind_and_outcome() -> None:
    assert outcomes(ANSWERS) == {
        "implicit": {"dropped": 1, "timeout": 1},
        "login": {"200": 1, "503": 1},
        "write": {"201": 2, "500": 1, "503": 2},
    }


def test_errors_are_what_the_contract_does_not_allow() -> None:
    """A 503 or a 429 is a fault answered as one; a 500, a timeout, a dropped connection not."""
    assert errors(ANSWERS) == {"500": 1, "dropped": 1, "timeout": 1}


def test_recovery_counts_from_the_mend_to_the_first_success_sent_after_it() -> None:
    assert recovery_seconds(ANSWERS, "write", mended=2.5) == 0.75  # sent 3.2, answered 3.25
    assert recovery_seconds(ANSWERS, "login", mended=2.5) == 1.1
    assert recovery_seconds(ANSWERS, "write", mended=3.5) is None  # none sent since
    assert failed_after(ANSWERS, 3.1) == 1  # the dropped one


def test_latency_percentiles() -> None:
    took = [Answer("implicit", 0.0, ms / 1000, "200") for ms in range(1, 101)]
    assert latency_ms(took) == {"p50": 50.5, "p99": 100.0, "max": 100.0}
    assert latency_ms([]) == {}


def test_a_report_fails_on_errors_lost_writes_or_no_recovery() -> None:
    clean = {"errors": {}, "lost_writes": 0, "recovery_seconds": {"write": 0.1}}
    assert failures(clean) == []
    assert failures({**clean, "errors": {"500": 2}}) == ["errors {'500': 2}"]
    assert failures({**clean, "lost_writes": 1}) == ["1 acknowledged writes lost"]
    assert failures({**clean, "recovery_seconds": {"write": None}}) == ["no recovery"]


def test_the_memory_floor_of_each_quarter_leaves_out_passing_spikes() -> None:
    samples = [
        {"seconds": seconds, "rss_mib": rss}
        for seconds, rss in [
            (0, [90.0, 91.0]),
            (10, [130.0, 95.0]),  # a password hash in progress on the first worker
            (20, [100.0, 96.0]),
            (30, [101.0, 140.0]),
            (40, [101.0, 97.0]),
        ]
    ]
    assert quarter_floors(samples) == [[90.0, 91.0], [130.0, 95.0], [100.0, 96.0], [101.0, 97.0]]


@pytest.mark.slow
def test_every_fault_is_answered_as_a_fault() -> None:
    """Each fault once, briefly: no error, no acknowledged write lost, recovery every time
    (the script's exit status), and one report per fault (skipped ones saying why)."""
    short = ["--warmup", "1", "--outage", "2", "--after", "3", "--hold", "2"]
    short += ["--connections", "100", "--duration", "10", "--sample", "2", "--clients", "4"]
    done = subprocess.run(
        [sys.executable, str(FAULTS_SCRIPT), "all", *short],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    reports = [json.loads(line) for line in done.stdout.splitlines()]
    faults = ["redis-kill", "redis-freeze", "postgres-stop", "disk-full", "slowloris", "idle"]
    assert [report["fault"] for report in reports] == [*faults, "soak"]
    for report in reports:
        if "skipped" not in report:
            assert report["requests"] > 0, report
            assert report.get("lost_writes", 0) == 0, report
