"""CPU a throughput run costs the machine, per verdict and per part of the production stack.

Read from /proc before and after the run: each process's own CPU time, and what it collected of
the children it reaped (a sandbox run ends and is reaped by the sandbox helper or the pool process
that started it, so its CPU shows there). The machine-wide busy time (/proc/stat) covers what no
process accounts for (softirqs, the kernel tearing down a run's namespaces in its worker threads).
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from deploy.stack import ProductionStack

TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Proc:
    comm: str
    ppid: int
    started: int  # clock ticks after boot: with the pid, what tells one process from a later one
    own: int  # clock ticks: utime + stime
    reaped: int  # clock ticks: cutime + cstime


@dataclass(frozen=True)
class Snapshot:
    procs: dict[int, Proc]
    busy: int  # clock ticks the machine was not idle


def snapshot() -> Snapshot:
    procs = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        procs[int(entry.name)] = Proc(
            comm=stat[stat.find("(") + 1 : stat.rfind(")")],
            ppid=int(fields[1]),
            started=int(fields[19]),
            own=int(fields[11]) + int(fields[12]),
            reaped=int(fields[13]) + int(fields[14]),
        )
    ticks = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return Snapshot(procs, sum(ticks) - ticks[3] - ticks[4])  # less idle and iowait


def _part(pid: int, procs: dict[int, Proc], stack: ProductionStack) -> tuple[str, str]:
    """Where a process's own CPU and its reaped children's CPU belong: by the stack's process it
    descends from (a sandbox helper starts a session of its own, but stays a pool process's child)."""
    leaders = {process.pid: name for name, process in stack.processes.items()}
    worker = stack.processes["worker"].pid
    proc = procs[pid]
    if pid == os.getpid():
        return "this bench (the learners)", "this bench (the learners)"
    if proc.ppid == 2 or pid == 2:
        return "kernel threads", "kernel threads"
    if proc.comm.startswith("postgres"):
        return "PostgreSQL", "PostgreSQL"
    if proc.comm.startswith("redis-server"):
        return "Redis", "Redis"
    lineage = [pid]
    while lineage[-1] in procs and lineage[-1] not in leaders and len(lineage) < 32:
        lineage.append(procs[lineage[-1]].ppid)
    leader = leaders.get(lineage[-1])
    if leader != "worker":
        return (leader, leader) if leader else ("other", "other")
    if pid == worker:
        return "worker: Celery consumer", "worker: Celery consumer"
    if proc.ppid == worker and proc.comm == procs[worker].comm:
        return "worker: pool processes", "sandbox runs"
    return "worker: sandbox helpers", "sandbox runs"


def per_verdict(stack: ProductionStack, before: Snapshot, after: Snapshot, verdicts: int) -> tuple[float, Counter[str]]:
    """Machine busy ms per verdict, and ms per verdict by part."""
    parts: Counter[str] = Counter()
    for pid, proc in after.procs.items():
        earlier = before.procs.get(pid)
        if earlier is not None and earlier.started != proc.started:
            earlier = None  # the pid was taken again (not a changed name: a kernel worker's names its work)
        own, reaped = _part(pid, after.procs, stack)
        parts[own] += proc.own - (earlier.own if earlier else 0)
        parts[reaped] += proc.reaped - (earlier.reaped if earlier else 0)
    scale = 1000 / TICKS / max(verdicts, 1)
    shares = Counter({part: ticks * scale for part, ticks in parts.items() if ticks > 0})
    return (after.busy - before.busy) * scale, shares
