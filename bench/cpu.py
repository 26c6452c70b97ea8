"""CPU time the benches read from /proc: a process's (with its reaped children's), and the
whole machine's idle and total."""

from __future__ import annotations

import os
from pathlib import Path

TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def stat_fields(pid: int | str) -> list[str]:
    """The fields of ``/proc/<pid>/stat`` after the command's name: ``[0]`` is field 3 of
    proc(5) (the state), ``[1]`` the parent's pid, ``[11]`` and ``[12]`` utime and stime."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_seconds(fields: list[str], *, reaped: bool = False) -> float:
    """User and system CPU time of a process's ``stat_fields``; ``reaped``: with that of
    its children that ended (and were waited for)."""
    used = int(fields[11]) + int(fields[12])  # utime, stime: fields 14 and 15 of proc(5)
    if reaped:
        used += int(fields[13]) + int(fields[14])  # cutime, cstime
    return used / TICKS_PER_S


def process_cpu_seconds(pid: int, *, reaped: bool = False) -> float:
    """CPU time of process ``pid`` so far (see ``cpu_seconds``)."""
    return cpu_seconds(stat_fields(pid), reaped=reaped)


def machine_jiffies() -> tuple[int, int]:
    """(idle, total) CPU time of the whole machine so far, every core, from /proc/stat."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return fields[3] + fields[4], sum(fields[:8])  # idle and iowait; user to steal
