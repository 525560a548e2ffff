"""bench/sizing.py for a second a row, so that it keeps working: every row answered on a pinned
worker, the counting twin's statements, the growth to two workers, and the report's table."""

import os
import shutil
from dataclasses import asdict, replace

import pytest
import sizing
from harness import Config
from report import sizing_section


@pytest.mark.skipif(
    shutil.which("wrk") is None
    or shutil.which("taskset") is None
    or not {sizing.WORKER_CPU, sizing.LOAD_CPU} <= os.sched_getaffinity(0),
    reason="needs wrk, taskset and CPUs 0 and 1",
)
def test_every_row_is_measured_on_a_pinned_worker_and_counted() -> None:
    config = Config(
        **{"duration": 1, "warmup": 0, "read_duration": 1, "connections": 1, "threads": 1},
        **{"rounds": 1, "postgres_url": "", "loop": "uvloop", "http": "httptools"},
        **{"profile": False, "scenarios": ("sizing",), "databases": ("sqlite",)},
        **{"sizing_duration": 1, "sizing_rounds": 1},
    )
    measured = sizing.run(config, count_seconds=1, layouts=(sizing.PINNED,))
    rows = {row["target"]: row for row in measured["rows"]}
    assert list(rows) == [target.name for target in sizing.TARGETS]
    assert all(row["rps"] > 0 and row["cpu_us_per_request"] for row in rows.values())
    assert all(0 <= row["others_cpu_share"] <= 1 for row in rows.values())
    assert rows["baseline"]["statements"] is None  # not Keyhouse: not counted
    assert rows["client_credentials"]["statements"] < 1  # clients are cached per worker
    assert rows["customer logins"]["statements"] >= 1  # the customer is read on every login
    assert measured["databases"]["sqlite"]["password_hash"].startswith("argon2id$")
    assert "| sqlite   | account logins     |" in sizing_section({"sizing": measured})


def _row(layout: sizing.Layout, target: str, rps: float) -> sizing.SizingRow:
    return sizing.SizingRow(
        **{"database": "sqlite", "layout": layout.name, "workers": layout.workers},
        **{"target": target, "what": "", "connections": 16, "rounds": [], "rps": rps},
        **{"p50_us": 1000, "p99_us": 4000, "cpu_us_per_request": 125.0},
        others_cpu_share=0.1,
    )


def test_two_workers_are_set_beside_the_pinned_one() -> None:
    pinned, both = _row(sizing.PINNED, "implicit", 8000), _row(sizing.BOTH, "implicit", 12000)
    grown = sizing._grown([replace(pinned, statements=0.01), both])
    assert [row.growth for row in grown] == [None, 1.5]
    document = {
        "sizing": {
            "layouts": [asdict(layout) for layout in sizing.LAYOUTS],
            "rows": [asdict(row) for row in grown],
            "databases": {
                "sqlite": {
                    "password_hash": "argon2id$v=19$m=32768,t=2,p=1",
                    "connections": {},
                    "loadavg": [0.5, 1.0],
                }
            },
        }
    }
    rendered = sizing_section(document)
    pinned_table, both_table = rendered.split(f"### {sizing.BOTH.name}")
    assert _cells(pinned_table, "implicit") == [
        *("sqlite", "implicit", "16", "8000.0", "4.00", "125", "8000", "10%", ""),
        *("0.01", "", ""),
    ]
    # two workers at the pinned worker's CPU per request: each CPU serves as much
    assert _cells(both_table, "implicit") == [
        *("sqlite", "implicit", "16", "12000.0", "4.00", "125", "16000", "10%", ""),
        *("1.50", "2.00"),
    ]


def _cells(table: str, row: str) -> list[str]:
    (line,) = [line for line in table.splitlines() if f"| {row} " in line]
    return [cell.strip() for cell in line.strip("|").split("|")]
