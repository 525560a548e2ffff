"""TCP keepalives for the connections that only wait: the change listeners (change_feed.py).

A listener sends nothing while nothing changes. If its peer vanishes without a word (a NAT or a
firewall that forgot the flow, a failover that sent no reset), no error ever comes: the worker
would wait on a dead socket for good, believing its push connected, and poll only every
`CHANGE_POLL_SECONDS`. With these options the kernel probes the silent peer after
`IDLE_SECONDS`, every `INTERVAL_SECONDS`, and after `PROBES` unanswered probes closes the
connection with an error; `TCP_USER_TIMEOUT` gives data sent and never acknowledged the same
bound. So a dead peer is found within `DEAD_PEER_SECONDS` of the last thing heard from it, and
the closing is a lost connection like any other: the listener reconnects and catches up.

PostgreSQL is asked for the same on its side of the listener's connection (`SERVER_SETTINGS`):
a backend whose worker vanished is ended within the same bound, rather than holding its place
in the `NOTIFY` queue.
"""

import socket
from typing import Any

IDLE_SECONDS = 10
INTERVAL_SECONDS = 5
PROBES = 3
DEAD_PEER_SECONDS = IDLE_SECONDS + INTERVAL_SECONDS * PROBES  # 25 s

# Options at the IPPROTO_TCP level, as redis-py's `socket_keepalive_options` takes them; only
# those this platform has (Linux has all four; macOS names the idle time TCP_KEEPALIVE).
TCP_OPTIONS: dict[int, int] = {
    getattr(socket, name): value
    for name, value in (
        ("TCP_KEEPIDLE", IDLE_SECONDS),
        ("TCP_KEEPINTVL", INTERVAL_SECONDS),
        ("TCP_KEEPCNT", PROBES),
        ("TCP_USER_TIMEOUT", DEAD_PEER_SECONDS * 1000),
    )
    if hasattr(socket, name)
}

# Settings of a PostgreSQL session (12 or later), sent as statements after connecting rather
# than in the startup packet, which a session-mode PgBouncer refuses for parameters it does not
# know. A server on a Unix socket ignores them.
SERVER_SETTINGS = (
    f"SET tcp_keepalives_idle = {IDLE_SECONDS}; "
    f"SET tcp_keepalives_interval = {INTERVAL_SECONDS}; "
    f"SET tcp_keepalives_count = {PROBES}; "
    f"SET tcp_user_timeout = {DEAD_PEER_SECONDS * 1000}"
)


def keep_alive(sock: Any) -> None:
    """Turns keepalives on for `sock` (a socket, or asyncio's wrapper of one), if it is TCP."""
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for option, value in TCP_OPTIONS.items():
        sock.setsockopt(socket.IPPROTO_TCP, option, value)
