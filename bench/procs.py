"""Processes the benchmarks start: a free loopback port, and the CPU a process tree used."""

from __future__ import annotations

import os
import socket


def free_port() -> int:
    # The port is free when asked; the server binds it a few seconds later. Nothing else here grabs ports in between.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(root: int) -> float:
    """User + system CPU seconds of `root` and its live descendants, plus what their reaped children used."""
    tick = os.sysconf("SC_CLK_TCK")
    stats: dict[int, list[str]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                # The command name (field 2) may hold spaces and parentheses: split after its last ")".
                stats[int(entry)] = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
    tree, grew = {root}, True
    while grew:
        grown = tree | {pid for pid, st in stats.items() if int(st[1]) in tree}
        grew, tree = grown != tree, grown
    # After the ")": state is [0], ppid [1], utime [11], stime [12], cutime [13], cstime [14].
    return sum(sum(int(x) for x in stats[pid][11:15]) for pid in tree if pid in stats) / tick
