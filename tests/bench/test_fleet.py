"""bench/fleet.py's restart phase, small: three workers on a PostgreSQL of their own, pushing over
it or over a Redis of their own, which is restarted under them (issue 23). After the restart every
worker listens again by itself, the same processes, and every worker refuses a revoked token
within 100 ms, as before it.

The workers' polls are set far apart (the revocation table every second while the push is down,
every minute while it is up), so that only the push explains a refusal within 100 ms: the last
of two workers left polling would take two thirds of a second on average, and a worker that
believed a dead connection alive would not refuse within the probe's 10 s.

Run once, in the suite's PostgreSQL pass (it starts its own servers, not the shared ones).
"""

import fleet
import pytest
from fault_services import Unavailable

from ..conftest import POSTGRES_URL, _unavailable

pytestmark = pytest.mark.skipif(not POSTGRES_URL, reason="restarts a PostgreSQL server")

POLLS_APART = {"KEYHOUSE_REVOCATION_POLL_SECONDS": "1", "KEYHOUSE_CHANGE_POLL_SECONDS": "60"}
PUSH_BOUND_SECONDS = 0.1
LISTENING_BOUND_SECONDS = 10.0  # the listeners' pause between attempts is 5 s at most
TRIALS = 12


@pytest.mark.parametrize("restarted", ["postgresql", "redis"])
def test_pushes_resume_after_the_server_restarts(restarted: str) -> None:
    try:
        phase = fleet.restart(
            restarted, servers=3, trials=TRIALS, down_seconds=1.0, env=POLLS_APART
        )
    except Unavailable as missing:
        _unavailable(str(missing))
    assert phase.same_workers  # no worker was restarted, none replaced
    assert len(phase.listening) == 3
    assert phase.listening[-1] < LISTENING_BOUND_SECONDS
    for times in (phase.before, phase.after):
        assert len(times) == TRIALS
        # Three trials in four within 100 ms, not the p99: on this shared 2-core machine a
        # moment of load takes a trial in ten or so past it (153, 172 and 276 ms were seen,
        # before the restart as after). Polling, 9 of 12 trials under 100 ms would have a
        # chance below one in 10^15; a worker that believed a dead connection alive would not
        # refuse within the probe's 10 s at all.
        assert sorted(times)[TRIALS * 3 // 4 - 1] < PUSH_BOUND_SECONDS, times
