"""Prometheus metrics: what Keyhouse counts, and the exposition that `/metrics` serves.

The metrics are `prometheus_client` objects made at import. With one worker they live in the
process's memory. With `keyhouse serve --workers N` each worker is a process of its own, so
the server process (app/runtime/serving.py) sets `PROMETHEUS_MULTIPROC_DIR` to a fresh private
directory before the workers start (`share_metrics_across_workers`): each worker then writes
its values to files there, and whichever worker answers `/metrics` adds up every worker's files
(prometheus_client's multiprocess mode, which it chooses once, when it is first imported, from
that variable).

Labels take only values from bounded sets (route templates, grant types, lockout scopes), and
children are resolved once per label set and kept, since `labels()` costs more than `inc()`.
"""

import atexit
import functools
import os
import shutil
import tempfile

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

MULTIPROCESS_DIRECTORY_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
# Chosen by prometheus_client when it was imported (just above), for the life of the process.
MULTIPROCESS = MULTIPROCESS_DIRECTORY_VARIABLE in os.environ

# `_created` series double the output and do not exist in multiprocess mode: one shape for both.
disable_created_metrics()  # type: ignore[no-untyped-call]

# A token request takes well under a millisecond of server time, a login tens (argon2id).
DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)

http_requests = Counter(
    "keyhouse_http_requests",
    "HTTP requests answered, by route template, method and status.",
    ["route", "method", "status"],
)
http_request_duration = Histogram(
    "keyhouse_http_request_duration_seconds",
    "Time to answer an HTTP request, until its last byte was handed to the server.",
    ["route", "method"],
    buckets=DURATION_BUCKETS,
)
tokens_issued = Counter(
    "keyhouse_tokens_issued",
    "Tokens issued: access tokens by grant type, and customer tokens (grant_type=customer).",
    ["grant_type"],
)
customer_login_failures = Counter(
    "keyhouse_customer_login_failures",
    "Customer logins refused for a wrong password or an unknown email (not locked attempts).",
)
lockouts = Counter(
    "keyhouse_lockouts",
    "Login lockouts started, by scope: an email from one address, an email, an address.",
    ["scope"],
)
revocations = Counter(
    "keyhouse_revocations",
    "Revocations made through the API: a token (RFC 7009) or a deleted customer's tokens.",
    ["kind"],
)
# Client disables are made by the CLI, a process of its own: every worker learns of them from
# the revocation table, so what a worker holds is counted, not what it made. The worker that
# answers a scrape sets its count first, so the most recent value is always the current one.
revocations_active = Gauge(
    "keyhouse_revocations_active",
    "Revocations in force (rows not yet purged), by kind: token, client or customer.",
    ["kind"],
    multiprocess_mode="livemostrecent",
)

CUSTOMER_GRANT = "customer"
# Every series a dashboard expects exists from the start, at zero.
for _grant_type in ("implicit", "client_credentials", CUSTOMER_GRANT):
    tokens_issued.labels(_grant_type)
for _scope in ("pair", "account", "address"):
    lockouts.labels(_scope)
for _kind in ("token", "customer"):
    revocations.labels(_kind)


@functools.cache
def _issued(grant_type: str) -> Counter:
    return tokens_issued.labels(grant_type)


def token_issued(grant_type: str) -> None:
    """One more token of this grant type (grant types come from the registry, never a request)."""
    _issued(grant_type).inc()


def login_failed(lockout_scopes: tuple[str, ...]) -> None:
    """A failed customer login, and the lockouts it started."""
    customer_login_failures.inc()
    for scope in lockout_scopes:
        lockouts.labels(scope).inc()


def revoked(kind: str) -> None:
    revocations.labels(kind).inc()


def exposition(accept: str | None, *, active_revocations: dict[str, int]) -> tuple[bytes, str]:
    """The body and content type of a scrape: every worker's metrics, in the format asked for."""
    for kind, count in active_revocations.items():
        revocations_active.labels(kind).set(count)
    registry = REGISTRY
    if MULTIPROCESS:
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    encode, content_type = choose_encoder(accept or "")
    return encode(registry), content_type


def worker_stopped() -> None:
    """In multiprocess mode, drops this worker's gauge files: its counts stay in the sums."""
    if MULTIPROCESS:
        mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


def share_metrics_across_workers(workers: int) -> None:
    """For several workers, a fresh private directory for their metrics files, in the
    environment they inherit (they must see it before they import prometheus_client); it is
    removed when this process exits."""
    if workers == 1:
        return  # the one worker is this process, which has imported prometheus_client already
    directory = tempfile.mkdtemp(prefix="keyhouse-metrics-")  # mode 0700
    os.environ[MULTIPROCESS_DIRECTORY_VARIABLE] = directory
    atexit.register(_remove_directory, directory, owner=os.getpid())


def _remove_directory(directory: str, *, owner: int) -> None:
    if os.getpid() == owner:  # not in a forked child, which would remove it from under the rest
        shutil.rmtree(directory, ignore_errors=True)
