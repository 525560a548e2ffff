"""The Markdown report, rendered from a results document as bench/run.py writes it."""

from typing import Any

from report import render, table

MEMORY = {"per_worker_mib": [60.2, 58.0], "max_mib": 60.2, "mean_mib": 59.1}
TWO_WORKER_ROUNDS = [{"busiest_worker_share": 0.51}, {"busiest_worker_share": 0.58}]


def _issuance(workers: int, target: str, rps: float, **extra: Any) -> dict[str, Any]:
    return {
        **{"database": "sqlite", "workers": workers, "grant": "client_credentials"},
        **{"target": target, "rps": rps, "p50_us": 3130, "p99_us": 20400, "rss": MEMORY},
        **{"ratio": None, "meets_target": None, "rounds": []},
        **extra,
    }


def _login(target: str, rps: float, meets_target: bool | None = None) -> dict[str, Any]:
    return {
        **{"database": "postgresql", "workers": 2, "scenario": "logins", "target": target},
        **{"connections": 32, "rps": rps, "p50_us": 1105870, "p99_us": 1925820, "rss": MEMORY},
        **{"ratio": None, "meets_target": meets_target, "rounds": []},
    }


def document(cpus: int = 2, workers: tuple[int, ...] = (1, 2), **sections: Any) -> dict[str, Any]:
    return {
        "finished_at": "2026-01-02T03:04:05+00:00",
        "command": "python bench/run.py",
        "settings": {
            **{"duration": 10, "warmup": 2, "connections": 32, "threads": 1, "rounds": 3},
            "read_duration": 5,
            **{"loop": "uvloop", "http": "httptools", "workers": list(workers)},
            "databases": ["sqlite", "postgresql"],
        },
        "machine": {
            **{"cpus": cpus, "platform": "Linux-6.1-x86_64"},
            **{"loadavg_1min_before": 0.12, "loadavg_1min_after": 1.9},
        },
        "keyhouse": {"commit": "0123456789abcdef0123", "uncommitted": []},
        "versions": {
            **{"python": "3.11.7", "fastapi": "0.115.0", "uvicorn": "0.30.0"},
            "wrk": "wrk debian/4.1.0-3+b2 [epoll] Copyright (C) 2012 Will Glozer",
        },
        "targets": {
            "workers": 1,
            "issuance": {"grant": "client_credentials", "min_ratio": 0.8},
            "protected": {
                "min_vs_unvalidated": 0.9,
                "max_rss_mib": 80.0,
                "reads": {
                    "product": {
                        "path": "/v2/products/{product_id}",
                        **{"min_rps": 3500, "min_vs_bare": 0.7, "max_p99_ms": 25},
                    },
                    "orders": {
                        "path": "/v2/orders",
                        **{"min_rps": None, "min_vs_bare": None, "max_p99_ms": None},
                    },
                },
            },
            "logins": {"max_implicit_p99_ms_in_flood": 50.0},
        },
        "results": [],
        "protected": [],
        "logins": [],
        "misses": [],
        **sections,
    }


def test_a_table_pads_its_columns_and_aligns_numbers_right() -> None:
    rendered = table(
        [("database", False), ("req/s", True), ("ratio", False)],
        [["sqlite", "8623.4", ""], ["postgresql", "512.0", "0.81 ok"]],
    )
    assert rendered.splitlines() == [
        "| database   |  req/s | ratio   |",
        "|------------|-------:|---------|",
        "| sqlite     | 8623.4 |         |",
        "| postgresql |  512.0 | 0.81 ok |",
    ]


def _rows(report: str, heading: str) -> list[dict[str, str]]:
    """The table under `heading`, each row as {column title: cell}."""
    section = report.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("|")]
    titles, _rule, *rows = ([cell.strip() for cell in line.strip("|").split("|")] for line in lines)
    return [dict(zip(titles, row, strict=True)) for row in rows]


def test_issuance_rows_carry_workers_memory_and_the_verdict_for_one_worker_only() -> None:
    report = render(
        document(
            results=[
                _issuance(1, "baseline", 8000.0),
                _issuance(
                    1,
                    "keyhouse",
                    6000.0,
                    ratio=0.75,
                    meets_target=False,
                    rounds=[{"cpu_us_per_request": cpu} for cpu in (150.2, 161.0, 149.9)],
                ),
                _issuance(2, "baseline", 9000.0),
                _issuance(2, "keyhouse", 5400.0, ratio=0.6, rounds=TWO_WORKER_ROUNDS),
            ],
            misses=["sqlite, 1 worker: client_credentials at 0.75x the baseline, not 0.8x"],
        )
    )
    rows = _rows(report, "Token issuance")
    assert [(row["workers"], row["target"], row["ratio"]) for row in rows] == [
        ("1", "baseline", ""),
        ("1", "keyhouse", "0.75 below 0.8"),
        ("2", "baseline", ""),
        ("2", "keyhouse", "0.60"),
    ]
    assert rows[1] == {
        **{"database": "sqlite", "workers": "1", "grant": "client_credentials"},
        **{"target": "keyhouse", "req/s": "6000.0", "p50 ms": "3.13", "p99 ms": "20.40"},
        "CPU µs/req": "150",  # the median of the rounds
        **{"RSS max MiB": "60.2", "RSS mean MiB": "59.1", "busiest worker": ""},
        "ratio": "0.75 below 0.8",
    }
    assert rows[3]["busiest worker"] == "58%"  # the worst of its rounds
    assert "## Protected reads" not in report
    assert report.endswith(
        "## Targets missed\n\n- sqlite, 1 worker: client_credentials at 0.75x the baseline, "
        "not 0.8x\n"
    )


def _read(read: str, target: str, rps: float, **extra: Any) -> dict[str, Any]:
    return {
        **{"database": "sqlite", "workers": 1, "read": read, "target": target},
        **{"connections": 32, "rps": rps, "p50_us": 9100, "p99_us": 21700, "rss": MEMORY},
        **{"vs_bare": None, "vs_unvalidated": None, "meets_target": None, "misses": []},
        "rounds": [{"cpu_us_per_request": 210.4}],
        **extra,
    }


def test_read_rows_give_both_ratios_and_the_verdict_on_keyhouse_rows() -> None:
    missed = "sqlite, 1 worker: orders at 0.88x unvalidated, not 0.9x or more"
    report = render(
        document(
            protected=[
                _read("product", "bare", 1000.0),
                _read("product", "unvalidated", 3900.0, vs_bare=3.9),
                _read(
                    "product",
                    "keyhouse",
                    3700.0,
                    vs_bare=3.7,
                    vs_unvalidated=0.949,
                    meets_target=True,
                ),
                _read(
                    "orders",
                    "keyhouse",
                    880.0,
                    vs_bare=0.8,
                    vs_unvalidated=0.88,
                    meets_target=False,
                    misses=[missed],
                ),
            ],
            misses=[missed],
        )
    )
    bare, unvalidated, product, orders = _rows(report, "Protected reads")
    assert (bare["vs bare"], bare["vs unvalidated"], bare["targets"]) == ("", "", "")
    assert (unvalidated["vs bare"], unvalidated["targets"]) == ("3.90", "")
    assert product == {
        **{"database": "sqlite", "workers": "1", "read": "product", "target": "keyhouse"},
        **{"req/s": "3700.0", "p50 ms": "9.10", "p99 ms": "21.70", "CPU µs/req": "210"},
        **{"RSS max MiB": "60.2", "RSS mean MiB": "59.1", "busiest worker": ""},
        **{"vs bare": "3.70", "vs unvalidated": "0.95", "vs customer": "", "targets": "ok"},
    }
    assert orders["targets"] == "missed"
    assert "`product` 3,500 req/s or more, 0.7x the bare app, p99 under 25 ms" in report
    assert "`orders` no throughput target" in report
    assert report.endswith(f"## Targets missed\n\n- {missed}\n")


def test_login_rows_give_logins_per_worker_but_not_for_the_probe() -> None:
    report = render(
        document(
            logins=[
                _login("logins", 14.8),
                _login("implicit+flood", 2750.6, True),
                {
                    **_login("account logins", 14.1),
                    **{"ratio": 0.953, "rounds": [{"cpu_us_per_request": 61234.0}]},
                },
                _login("implicit+account flood", 2702.2, False),
            ]
        )
    )
    logins, probe, account, account_probe = _rows(report, "Customer and account logins")
    assert (logins["workers"], logins["req/s"], logins["logins/s per worker"]) == (
        "2",
        "14.8",
        "7.4",
    )
    assert (logins["p50 ms"], logins["p99 ms"], logins["target"]) == ("1105.87", "1925.82", "")
    assert (probe["req/s"], probe["logins/s per worker"], probe["target"]) == ("2750.6", "", "ok")
    assert (logins["vs customer"], account["vs customer"]) == ("", "0.95")
    assert (account["logins/s per worker"], account_probe["target"]) == ("7.0", "above 50 ms")
    assert (logins["CPU ms/login"], account["CPU ms/login"]) == ("", "61.2")


def test_the_header_warns_when_wrk_shares_the_cores_with_the_workers() -> None:
    assert "**2 CPUs for 2 workers and wrk**" in render(document(cpus=2))
    assert "CPUs for" not in render(document(cpus=8))
    assert "`-t1 -c32`" in render(document())
    assert "10 s per measured run (5 s for the protected reads)" in render(document())
    assert "Copyright" not in render(document())


def test_without_a_one_worker_row_no_target_is_said_to_be_met() -> None:
    only_two = document(workers=(2,), results=[_issuance(2, "keyhouse", 5400.0, ratio=0.6)])
    assert "No target applies" in render(only_two)
    met = document(results=[_issuance(1, "keyhouse", 7000.0, ratio=0.85, meets_target=True)])
    assert render(met).endswith("Every target was met.\n")
