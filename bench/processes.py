"""The worker processes of a server under test: which they are, their memory, their CPU time.

Read from /proc (Linux), no dependency. With `--workers 1`, Uvicorn (and `keyhouse serve`)
serves in the process started; with more, that process supervises workers it started with
multiprocessing's `spawn`, beside multiprocessing's resource tracker, which serves nothing.
"""

import contextlib
import os
import statistics
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
SPAWNED = b"multiprocessing.spawn"  # in a spawned worker's command line, not the tracker's
IDLE_WINDOW_SECONDS = 0.5
CLOCK_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")
IDLE_CPU_SHARE = 0.04  # of one core, per worker over a window: idle, or as good as


@dataclass(frozen=True, slots=True)
class Memory:
    """Resident memory (VmRSS) of each worker of a server, in MiB, and its max and mean."""

    per_worker_mib: list[float]
    max_mib: float
    mean_mib: float

    @classmethod
    def of(cls, rss_kib: Sequence[int]) -> "Memory":
        mib = [kib / 1024 for kib in rss_kib]
        return cls(
            per_worker_mib=[round(value, 1) for value in mib],
            max_mib=round(max(mib), 1),
            mean_mib=round(statistics.fmean(mib), 1),
        )


def vmrss_kib(status: str, field: str = "VmRSS") -> int:
    """The resident set size in a /proc/<pid>/status text, in KiB (`VmHWM`: its peak)."""
    for line in status.splitlines():
        name, _, value = line.partition(":")
        if name == field:
            number, unit = value.split()
            if unit != "kB":
                raise ValueError(f"{field} in {unit!r}, not kB")
            return int(number)
    raise ValueError(f"no {field} line (a kernel thread, or an exited process)")


def _stat_fields(stat: str) -> list[str]:
    """The fields of a /proc/<pid>/stat text after the command name, from `state` on.

    The name is in parentheses and may itself hold spaces and parentheses: split after the
    last one.
    """
    return stat[stat.rindex(")") + 2 :].split()


def parent_pid(stat: str) -> int:
    return int(_stat_fields(stat)[1])


def cpu_ticks(stat: str) -> int:
    """User plus system CPU time of a /proc/<pid>/stat text, in clock ticks."""
    fields = _stat_fields(stat)
    return int(fields[11]) + int(fields[12])


def _children(pid: int) -> list[int]:
    children: list[int] = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):  # gone since listed
            if parent_pid((entry / "stat").read_text()) == pid:
                children.append(int(entry.name))
    return sorted(children)


def worker_pids(pid: int, workers: int) -> list[int]:
    """The pids serving requests for the server started as `pid` with `workers` workers."""
    if workers == 1:
        return [pid]
    spawned: list[int] = []
    for child in _children(pid):
        with contextlib.suppress(OSError):
            if SPAWNED in (PROC / str(child) / "cmdline").read_bytes():
                spawned.append(child)
    return spawned


def busiest_share(cpu_ticks_per_worker: Sequence[int]) -> float:
    """The busiest worker's share of the CPU time all of them spent (1.0 if none was spent)."""
    total = sum(cpu_ticks_per_worker)
    return max(cpu_ticks_per_worker) / total if total else 1.0


@dataclass(frozen=True, slots=True)
class CoreTicks:
    """Clock ticks of some CPUs since boot, from /proc/stat: spent busy, and in all."""

    busy: int
    total: int


def core_ticks(stat: str, cpus: Collection[int]) -> CoreTicks:
    """The ticks of the CPUs numbered in `cpus`, summed, from a /proc/stat text. Busy: user,
    nice, system, irq, softirq and steal (guest time is within user); in all: those, idle
    and iowait."""
    busy = total = 0
    for line in stat.splitlines():
        name, *values = line.split()
        if not name.startswith("cpu") or not name[3:].isdigit() or int(name[3:]) not in cpus:
            continue
        user, nice, system, idle, iowait, irq, softirq, steal = map(int, values[:8])
        spent = user + nice + system + irq + softirq + steal
        busy += spent
        total += spent + idle + iowait
    return CoreTicks(busy, total)


def core_ticks_of(cpus: Collection[int]) -> CoreTicks:
    return core_ticks((PROC / "stat").read_text(), cpus)


def others_share(before: CoreTicks, after: CoreTicks, ours: float) -> float:
    """The share of some CPUs' time between two readings that processes other than ours spent,
    `ours` being the ticks our own processes spent on them meanwhile."""
    total = after.total - before.total
    return max(0.0, (after.busy - before.busy - ours) / total) if total > 0 else 0.0


def established_to(net_tcp: str, port: int, inodes: Collection[str]) -> int:
    """How many of the sockets `inodes` a /proc/<pid>/net/tcp (or tcp6) text shows established
    to a remote `port`."""
    count = 0
    for line in net_tcp.splitlines()[1:]:
        fields = line.split()
        remote, state, inode = fields[2], fields[3], fields[9]
        count += state == "01" and int(remote.rsplit(":", 1)[1], 16) == port and inode in inodes
    return count


def connections_to(pid: int, port: int) -> int:
    """The TCP connections process `pid` holds open to a remote `port` (a database's)."""
    inodes = set()
    for descriptor in (PROC / str(pid) / "fd").iterdir():
        with contextlib.suppress(OSError):  # closed since listed
            target = os.readlink(descriptor)
            if target.startswith("socket:["):
                inodes.add(target[len("socket:[") : -1])
    tables = ((PROC / str(pid) / "net" / name).read_text() for name in ("tcp", "tcp6"))
    return sum(established_to(table, port, inodes) for table in tables)


def cpu_ticks_of(pid: int) -> int:
    return cpu_ticks((PROC / str(pid) / "stat").read_text())


def rss_kib(pid: int) -> int:
    return vmrss_kib((PROC / str(pid) / "status").read_text())


def peak_rss_kib(pid: int) -> int:
    """The most resident memory `pid` has held since it started or `reset_peak_rss`."""
    return vmrss_kib((PROC / str(pid) / "status").read_text(), "VmHWM")


def reset_peak_rss(pid: int) -> None:
    """Makes the peak the current resident memory (Linux 4.0+, our own processes)."""
    (PROC / str(pid) / "clear_refs").write_text("5")


def wait_idle(pids: Sequence[int], timeout: float) -> bool:
    """Whether every process in `pids` spent a window almost without CPU before `timeout`.

    Work queued inside a server (password hashes) goes on after the client has gone; this
    waits until it is done.
    """
    deadline = time.monotonic() + timeout
    idle_ticks = IDLE_CPU_SHARE * IDLE_WINDOW_SECONDS * CLOCK_TICKS_PER_SECOND
    before = [cpu_ticks((PROC / str(pid) / "stat").read_text()) for pid in pids]
    while time.monotonic() < deadline:
        time.sleep(IDLE_WINDOW_SECONDS)
        after = [cpu_ticks((PROC / str(pid) / "stat").read_text()) for pid in pids]
        if all(now - then <= idle_ticks for then, now in zip(before, after, strict=True)):
            return True
        before = after
    return False
