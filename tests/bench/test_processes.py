"""Reading a server's workers from /proc: their memory, their parent, their CPU time."""

import multiprocessing
import os
import time

import pytest
from processes import (
    CoreTicks,
    Memory,
    busiest_share,
    core_ticks,
    cpu_ticks,
    established_to,
    others_share,
    parent_pid,
    rss_kib,
    vmrss_kib,
    worker_pids,
)

STATUS = """\
Name:\tpython
Umask:\t0022
State:\tS (sleeping)
Pid:\t4242
PPid:\t4200
VmPeak:\t  301244 kB
VmSize:\t  301244 kB
VmHWM:\t  121000 kB
VmRSS:\t  115712 kB
RssAnon:\t   80000 kB
Threads:\t5
"""

# A command name with spaces and parentheses: the fields are counted after the last ")".
STAT = "4242 (keyhouse (w) 1) S 4200 4200 4200 0 -1 4194560 9000 0 3 0 1234 56 0 0 20 0 5 0"


def test_vmrss_is_read_in_kib() -> None:
    assert vmrss_kib(STATUS) == 115712


def test_a_status_without_vmrss_is_refused() -> None:
    kernel_thread = "\n".join(line for line in STATUS.splitlines() if "VmRSS" not in line)
    with pytest.raises(ValueError, match="no VmRSS"):
        vmrss_kib(kernel_thread)


def test_vmrss_in_another_unit_is_refused() -> None:
    with pytest.raises(ValueError, match="not kB"):
        vmrss_kib("VmRSS:\t 113 MB\n")


def test_stat_fields_are_counted_after_the_command_name() -> None:
    assert parent_pid(STAT) == 4200
    assert cpu_ticks(STAT) == 1234 + 56


def test_memory_is_in_mib_with_max_and_mean() -> None:
    memory = Memory.of([102400, 51200, 52224])
    assert memory.per_worker_mib == [100.0, 50.0, 51.0]
    assert memory.max_mib == 100.0
    assert memory.mean_mib == 67.0


def test_one_worker_is_the_server_process_itself() -> None:
    assert worker_pids(os.getpid(), 1) == [os.getpid()]
    assert rss_kib(os.getpid()) > 1024


def test_spawned_workers_are_found_and_the_resource_tracker_is_not() -> None:
    """As Uvicorn starts its workers: multiprocessing's spawn, which starts a tracker too."""
    worker = multiprocessing.get_context("spawn").Process(target=time.sleep, args=(30,))
    worker.start()
    try:
        deadline = time.monotonic() + 10
        while worker.pid not in worker_pids(os.getpid(), 2) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert worker_pids(os.getpid(), 2) == [worker.pid]
    finally:
        worker.terminate()
        worker.join()


def test_the_busiest_workers_share_of_the_cpu_time_spent() -> None:
    assert busiest_share([50, 50]) == 0.5
    assert busiest_share([10, 30]) == 0.75
    assert busiest_share([0, 0]) == 1.0  # nothing spent: not an even split


PROC_STAT = """\
cpu  300 0 100 900 10 5 5 0 0 0
cpu0 200 0 60 400 5 3 2 0 0 0
cpu1 100 0 40 500 5 2 3 0 0 0
intr 12345
"""


def test_core_ticks_sum_the_cpus_asked_for_only() -> None:
    assert core_ticks(PROC_STAT, {0}) == CoreTicks(busy=265, total=670)
    assert core_ticks(PROC_STAT, {0, 1}) == CoreTicks(busy=410, total=1320)


def test_others_share_is_what_the_cpus_spent_beyond_our_processes() -> None:
    before, after = CoreTicks(busy=100, total=1000), CoreTicks(busy=250, total=1200)
    assert others_share(before, after, ours=110) == 0.2
    assert others_share(before, after, ours=200) == 0.0  # never below nothing
    assert others_share(before, before, ours=0) == 0.0


NET_TCP = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:A1B2 0100007F:1538 01 00000000:00000000 00:00000000 00000000     0        0 111 1
   1: 0100007F:A1B3 0100007F:1538 01 00000000:00000000 00:00000000 00000000     0        0 222 1
   2: 0100007F:A1B4 0100007F:1538 06 00000000:00000000 00:00000000 00000000     0        0 333 1
   3: 0100007F:A1B5 0100007F:18EB 01 00000000:00000000 00:00000000 00000000     0        0 444 1
"""


def test_established_connections_to_a_port_are_counted_for_our_sockets_only() -> None:
    # 0x1538 is 5432; the third is in TIME_WAIT (06), the fourth to 6379, 222 another process's
    assert established_to(NET_TCP, 5432, {"111", "333", "444"}) == 1
    assert established_to(NET_TCP, 5432, {"111", "222"}) == 2
