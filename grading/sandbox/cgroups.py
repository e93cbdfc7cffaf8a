"""A run's own cgroup: memory and processes bounded, and CPU counted, for the run as a whole.

rlimits are per process: a run that forks could hold its memory limit many times over, and the
CPU its children burn would not count towards its time limit. Where the machine lets this
process (root) create cgroups, each sandbox gets one of its own, under a parent CO owns
(`co-sandbox` inside this process's own cgroup): `memory.max` / `memory.limit_in_bytes` and
`pids.max` hold for everything in it, and its CPU usage is what the trusted side measures per
test (runner.py). The sandbox's first process enters it before it execs anything of the run
(a fixed `sh` step, or the fork helper's child itself), so everything of the run is inside,
and it is removed once the sandbox is reaped.

cgroup v2 (`/sys/fs/cgroup` unified, with `memory` and `pids` delegated to this process's
cgroup, or to the cgroup `CO_SANDBOX_CGROUP` names) and the v1 `memory`, `pids` and `cpuacct`
hierarchies are both used; with neither, `CO_SANDBOX_CGROUPS=off`, or not root, the fallback is
the rlimits alone: RLIMIT_NPROC per uid slot (a run's own uid) and RLIMIT_AS per process.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import logging
import os
import secrets
import time
from dataclasses import dataclass

from django.conf import settings

logger = logging.getLogger("co.sandbox")

_ROOT = "/sys/fs/cgroup"
_PARENT = "co-sandbox"
_counter = itertools.count()

# The first step of a sandbox's command line (still root): enter the run's cgroup, then exec the rest.
ENTER = 'while [ "$1" != -- ]; do echo $$ > "$1" || exit 71; shift; done; shift; exec "$@"'


@dataclass(frozen=True)
class _Layout:
    version: int  # 1 | 2
    parents: dict[str, str]  # v1: controller → parent dir; v2: {"": parent dir}


def _own_cgroups() -> dict[str, str]:
    """{controllers: path} of this process (v2: key "")."""
    found = {}
    with open("/proc/self/cgroup") as handle:
        for line in handle:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            found[controllers] = path
    return found


def _writable_parent(directory: str) -> bool:
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError:
        return False
    return os.access(os.path.join(directory, "cgroup.procs"), os.W_OK)


def _detect() -> _Layout | None:
    if os.geteuid() != 0:
        return None
    own = _own_cgroups()
    if os.path.exists(f"{_ROOT}/cgroup.controllers"):  # unified (v2 only)
        base = getattr(settings, "CO_SANDBOX_CGROUP", "") or f"{_ROOT}{own.get('', '/')}"
        try:
            with open(f"{base}/cgroup.controllers") as handle:
                available = set(handle.read().split())
            if not {"memory", "pids"} <= available:
                return None
            wanted = " ".join(f"+{name}" for name in ("memory", "pids", "cpu") if name in available)
            with open(f"{base}/cgroup.subtree_control", "w") as handle:
                handle.write(wanted)  # EBUSY when `base` holds processes itself (not delegated)
            parent = f"{base}/{_PARENT}"
            if not _writable_parent(parent):
                return None
            with open(f"{parent}/cgroup.subtree_control", "w") as handle:
                handle.write(wanted)
        except OSError:
            return None
        return _Layout(2, {"": parent})
    parents = {}
    for controller in ("memory", "pids", "cpuacct"):
        entry = next(((names, path) for names, path in own.items() if controller in names.split(",")), None)
        if entry is None:
            return None
        mount = f"{_ROOT}/{entry[0]}"
        if not os.path.isdir(mount):
            mount = f"{_ROOT}/{controller}"
        parent = f"{mount}{entry[1].rstrip('/')}/{_PARENT}"
        if not _writable_parent(parent):
            return None
        parents[controller] = parent
    return _Layout(1, parents)


@functools.cache
def _layout() -> _Layout | None:
    layout = _detect()
    if layout is None:
        logger.info("no cgroups for sandboxes here: runs are bounded by rlimits alone")
    else:
        _sweep(layout)
    return layout


def available() -> bool:
    return str(getattr(settings, "CO_SANDBOX_CGROUPS", "auto")) != "off" and _layout() is not None


def _sweep(layout: _Layout) -> None:
    """Remove the empty run cgroups of processes that are gone (a worker killed mid-run)."""
    for parent in layout.parents.values():
        with contextlib.suppress(OSError):
            for name in os.listdir(parent):
                owner = name.split("-")[1] if name.startswith("run-") else ""
                if owner.isdigit() and not os.path.exists(f"/proc/{owner}"):
                    with contextlib.suppress(OSError):
                        os.rmdir(os.path.join(parent, name))


def _write(path: str, value: str) -> None:
    with open(path, "w") as handle:
        handle.write(value)


class RunCgroup:
    """One sandbox's cgroup (a directory per hierarchy)."""

    def __init__(self, layout: _Layout, name: str) -> None:
        self.layout = layout
        self.dirs = {controller: f"{parent}/{name}" for controller, parent in layout.parents.items()}

    @classmethod
    def create(cls) -> RunCgroup | None:
        """A new, empty cgroup for one sandbox; None where cgroups are not used (rlimits alone)."""
        if not available():
            return None
        layout = _layout()
        assert layout is not None
        cgroup = cls(layout, f"run-{os.getpid()}-{next(_counter)}-{secrets.token_hex(4)}")
        try:
            for directory in cgroup.dirs.values():
                os.mkdir(directory, 0o755)
            if layout.version == 2:
                with contextlib.suppress(OSError):  # no swap accounting here: nothing to turn off
                    _write(f"{cgroup.dirs['']}/memory.swap.max", "0")
        except OSError as exc:
            logger.warning("could not create a sandbox cgroup: %s", exc)
            cgroup.remove()
            return None
        return cgroup

    @property
    def procs_files(self) -> list[str]:
        return [f"{directory}/cgroup.procs" for directory in self.dirs.values()]

    def limit(self, *, memory_bytes: int, processes: int) -> None:
        """Memory (swap included) and tasks of the whole run. OSError when it cannot be set."""
        if self.layout.version == 2:
            _write(f"{self.dirs['']}/memory.max", str(memory_bytes))
            _write(f"{self.dirs['']}/pids.max", str(processes))
            return
        memory = self.dirs["memory"]
        _write(f"{memory}/memory.limit_in_bytes", str(memory_bytes))
        memsw = f"{memory}/memory.memsw.limit_in_bytes"  # memory + swap: no more than memory alone
        if os.path.exists(memsw):
            _write(memsw, str(memory_bytes))
        _write(f"{self.dirs['pids']}/pids.max", str(processes))

    @staticmethod
    def _read_int(path: str) -> int:
        with open(path) as handle:
            return int(handle.read().split()[0])

    def cpu_seconds(self) -> float:
        """CPU time used by everything that ran in it (the run's children included)."""
        try:
            if self.layout.version == 2:
                with open(f"{self.dirs['']}/cpu.stat") as handle:
                    for line in handle:
                        if line.startswith("usage_usec "):
                            return int(line.split()[1]) / 1e6
                return 0.0
            return self._read_int(f"{self.dirs['cpuacct']}/cpuacct.usage") / 1e9
        except (OSError, ValueError):
            return 0.0

    def remove(self) -> None:
        """Remove it once its processes are gone (reaped sandboxes leave it at once, or nearly)."""
        for directory in self.dirs.values():
            for attempt in range(50):
                try:
                    os.rmdir(directory)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    if attempt == 49:
                        logger.warning("could not remove the sandbox cgroup %s", directory)
                    time.sleep(0.02)
