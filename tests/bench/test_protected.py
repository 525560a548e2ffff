"""The verdicts of the protected reads: each target of Keyhouse's one-worker rows, in words."""

import dataclasses

from processes import Memory
from protected import READS, ReadRow, _beside_customers, _judged

LEAN = Memory.of([70 * 1024])
PRODUCT, PRODUCTS, ORDERS, ACCOUNT_ORDERS = READS


def _row(
    target: str, rps: float, *, workers: int = 1, p99_ms: float = 20.0, read: str = "product"
) -> ReadRow:
    return ReadRow(
        **{"database": "sqlite", "workers": workers, "read": read, "target": target},
        **{"connections": 32, "rounds": [], "rps": rps, "p50_us": 9000, "p99_us": p99_ms * 1000},
        rss=LEAN,
    )


def test_a_read_that_meets_every_target_is_ok_with_both_ratios() -> None:
    judged = _judged(_row("keyhouse", 3600), PRODUCT, _row("bare", 1200), _row("unvalidated", 3800))
    assert (round(judged.vs_bare or 0, 2), round(judged.vs_unvalidated or 0, 3)) == (3.0, 0.947)
    assert (judged.meets_target, judged.misses) == (True, [])


def test_each_target_missed_is_named() -> None:
    slow = dataclasses.replace(_row("keyhouse", 3000, p99_ms=31.5), rss=Memory.of([97 * 1024]))
    judged = _judged(slow, PRODUCT, _row("bare", 5000), _row("unvalidated", 3500))
    assert judged.meets_target is False
    assert judged.misses == [
        "sqlite, 1 worker: product at 3000 req/s, not 3500 or more",
        "sqlite, 1 worker: product at 0.60x the bare app, not 0.7x or more",
        "sqlite, 1 worker: product at 0.86x unvalidated, not 0.9x or more",
        "sqlite, 1 worker: product at p99 31.5 ms, not under 25 ms",
        "sqlite, 1 worker: product at 97.0 MiB per worker, not under 80 MiB",
    ]


def test_orders_have_no_throughput_target_and_two_workers_no_verdict() -> None:
    orders = _judged(
        _row("keyhouse", 900, p99_ms=60), ORDERS, _row("bare", 1000), _row("unvalidated", 950)
    )
    assert (orders.meets_target, orders.misses) == (True, [])
    two = _judged(
        _row("keyhouse", 100, workers=2),
        PRODUCTS,
        _row("bare", 1000, workers=2),
        _row("unvalidated", 950, workers=2),
    )
    assert (two.meets_target, two.misses, round(two.vs_bare or 0, 2)) == (None, [], 0.1)


def test_account_orders_are_held_to_the_orders_targets_and_set_beside_them() -> None:
    assert (ACCOUNT_ORDERS.path, ACCOUNT_ORDERS.with_account) == (ORDERS.path, True)
    targets = ("min_rps", "min_vs_bare", "max_p99_ms")
    assert [getattr(ACCOUNT_ORDERS, name) for name in targets] == [
        getattr(ORDERS, name) for name in targets
    ]
    slow = _judged(
        _row("keyhouse", 800, read="account-orders"),
        ACCOUNT_ORDERS,
        _row("bare", 1000),
        _row("unvalidated", 950),
    )
    assert slow.misses == [
        "sqlite, 1 worker: account-orders at 0.84x unvalidated, not 0.9x or more"
    ]
    rows = _beside_customers(
        [
            _row("bare", 1000, read="orders"),
            _row("keyhouse", 900, read="orders"),
            _row("unvalidated", 950, read="account-orders"),
            slow,
        ]
    )
    assert [row.vs_customer for row in rows] == [None, None, None, 800 / 900]
