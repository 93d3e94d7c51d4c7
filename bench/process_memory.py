"""Memory of a process (and its children) from /proc: peak and current resident set size."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

KIB_PER_MIB = 1024.0


@dataclass(frozen=True)
class Memory:
    """Resident set size of one process in MiB: ``peak_rss_mib`` is the kernel's high-water
    mark (``VmHWM``) since the process started, ``rss_mib`` the current value (``VmRSS``)."""

    peak_rss_mib: float
    rss_mib: float


def read_memory(pid: int) -> Memory | None:
    """``VmHWM`` and ``VmRSS`` of ``pid``; ``None`` if the process is gone or /proc is missing."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    fields = dict(_kib_field(line) for line in text.splitlines() if line.startswith("Vm"))
    if "VmHWM" not in fields or "VmRSS" not in fields:
        return None
    return Memory(fields["VmHWM"] / KIB_PER_MIB, fields["VmRSS"] / KIB_PER_MIB)


def _kib_field(line: str) -> tuple[str, float]:
    name, _, value = line.partition(":")
    parts = value.split()
    return name, float(parts[0]) if parts and parts[0].isdigit() else 0.0


def child_pids(pid: int) -> list[int]:
    """Direct and indirect children of ``pid`` (scans /proc; empty where /proc is missing)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # the command name (field 2) is in parentheses and may hold spaces
            after_name = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        parents[int(stat.parent.name)] = int(after_name[1])
    found: list[int] = []
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        children = [child for child, ppid in parents.items() if ppid == parent]
        found.extend(children)
        frontier.extend(children)
    return found


def children_rss_mib(pid: int) -> float:
    """Sum of the current resident set sizes of ``pid``'s children (e.g. an embedded Redis)."""
    memories = (read_memory(child) for child in child_pids(pid))
    return sum(memory.rss_mib for memory in memories if memory is not None)
