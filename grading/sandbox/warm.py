"""Pre-started sandboxes: a run's sandbox start-up (bubblewrap, the interpreter, the harness)
happens before the submission arrives, not on its path.

A warm sandbox is exactly the sandbox a cold run starts — the same isolation and command line,
a uid slot of its own, fresh namespaces, a fresh interpreter that has loaded only our harness —
started before its job exists, and used once. The harness says `ready` and blocks reading its
job. The run that takes it brings the rlimits down to the run's own — the Python harness itself,
from the job, before the learner's code is even compiled; Node from the trusted side with
`prlimit --pid` — and nothing inside can raise a hard limit again (no CAP_SYS_RESOURCE). The
run writes the job to the sandbox's stdin and reads its events as for a cold run; then it is
killed and reaped like any sandbox. Nothing of one run reaches another: each has its own
process, namespaces and scratch tmpfs, and no warm sandbox held anything but our harness
before its one job.

Per process: a refill thread starts them (it must outlive them: bubblewrap's --die-with-parent
follows the thread that started it) for the keys recently asked for, `CO_SANDBOX_WARM` per key;
a fork (Celery's prefork pool) leaves the child an empty pool, never its parent's sandboxes.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import selectors
import subprocess
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from django.conf import settings

from grading.sandbox.cgroups import RunCgroup
from grading.sandbox.isolation import (
    SANDBOX_PATH,
    Rlimits,
    SandboxConfig,
    SandboxProcess,
    UidSlot,
    start_sandbox,
    switch_user,
    tool,
    uid_slot_acquire,
)

logger = logging.getLogger("co.sandbox")

WARM_JOB_BYTES = 1024 * 1024  # jobs up to this size may use a warm sandbox (Node's heap flags count them)
WARM_CPU_SECONDS = 3600  # RLIMIT_CPU until the run lowers it; an idle harness uses none
MAX_KEYS = 4  # languages × memory limits kept warm at once
# Refills wait while a run of this process is under way (they would take the CPU it needs: a
# verdict's visible and hidden runs go in parallel on a machine of a few cores), but at most this long.
REFILL_DEFER_SECONDS = 0.25
READY_LINE = b'{"e":"ready"}\n'


@dataclass(frozen=True)
class WarmKey:
    """What makes two sandboxes interchangeable: everything of the command line but the fds."""

    level: str
    cfg: SandboxConfig  # before the uid slot
    argv: tuple[str, ...]
    harness_name: str
    harness: bytes
    harness_args: tuple[str, ...]  # before the scratch dir: `--self-limit` for Python
    address_space: int | None  # the RLIMIT_AS it starts with, at least any run's that uses it


@dataclass
class WarmSandbox:
    """A started sandbox waiting for its job, with the fds the run needs."""

    key: WarmKey
    slot: UidSlot
    sandbox: SandboxProcess
    pid: int  # the interpreter's host pid (prlimit target)
    job_w: int
    results_r: int
    stderr_r: int

    @property
    def limits_itself(self) -> bool:
        """The Python harness lowers its own limits from the job, before any learner code
        exists in it (no process start on the verdict's path); others are limited from here."""
        return "--self-limit" in self.key.harness_args

    def limit(self, *, address_space: int | None, cpu_seconds: int, memory_bytes: int = 0, processes: int = 0) -> bool:
        """Lower RLIMIT_AS and RLIMIT_CPU to the run's from the trusted side: prlimit(2) needs
        CAP_SYS_RESOURCE or the target's uid, so `prlimit --pid` runs as the sandbox uid. False
        (use a cold sandbox) when that fails. A fork-helper sandbox also gets its normal CPU
        priority back (it was built at a low one)."""
        cgroup = self.sandbox.cgroup
        if cgroup is not None:  # the run's whole-run bounds, before its job is written
            try:
                cgroup.limit(memory_bytes=memory_bytes, processes=processes)
            except OSError as exc:
                logger.warning("could not limit a pre-started sandbox's cgroup: %s", exc)
                return False
        if self.key.level == "zygote":
            try:
                self.sandbox.foreground()
            except OSError as exc:
                logger.warning("could not restore a pre-started sandbox's priority: %s", exc)
                return False
        if self.limits_itself:
            return True
        args = [f"--cpu={cpu_seconds}"] + ([f"--as={address_space}"] if address_space is not None else [])
        prefix, user_kwargs = switch_user(self.slot.cfg)
        prlimit = tool("prlimit")
        if prlimit is None:
            return False
        try:
            done = subprocess.run(  # our fixed tool, our numbers
                [*prefix, prlimit, "--pid", str(self.pid), *args],
                capture_output=True,
                timeout=5,
                env={"PATH": SANDBOX_PATH},
                check=False,
                **user_kwargs,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            logger.warning("could not limit a pre-started sandbox: %s", exc)
            return False
        if done.returncode != 0:
            logger.warning("could not limit a pre-started sandbox: %s", done.stderr[-300:].decode(errors="replace"))
            return False
        return True

    def close_fds(self) -> None:
        for fd in (self.job_w, self.results_r, self.stderr_r):
            with contextlib.suppress(OSError):
                os.close(fd)

    def discard(self) -> None:
        """Kill, reap and forget it (unused)."""
        try:
            self.sandbox.kill()
            self.sandbox.cleanup()
        finally:
            self.close_fds()
            self.slot.release()


@dataclass
class _Starting:
    """A sandbox the refill thread started and waits for."""

    sandbox: WarmSandbox
    generation: int
    deadline: float
    received: bytes = b""


def warm_per_key(level: str) -> int:
    """`CO_SANDBOX_WARM` per key; twice as many for the fork helper, whose sandboxes cost a fork
    to start: a verdict takes two at once (visible, hidden), and the next one, submitted right
    after, must not find the pool still refilling."""
    per_key = max(0, int(getattr(settings, "CO_SANDBOX_WARM", 0)))
    return 2 * per_key if level == "zygote" else per_key


class WarmPool:
    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._cond = threading.Condition()
        self._idle: dict[WarmKey, list[WarmSandbox]] = {}
        self._wanted: OrderedDict[WarmKey, int] = OrderedDict()  # key → how many, most recent last
        self._starting: Counter[WarmKey] = Counter()  # being started, per key
        self._in_flight: dict[int, _Starting] = {}  # the refill thread's, by results fd
        self._generation = 0
        self._thread: threading.Thread | None = None
        self._wakeup: tuple[int, int] | None = None  # a pipe: wakes the refill thread from its wait
        self._running = 0  # runs of this process under way
        self._busy_since: float | None = None  # since when some run has been under way

    # --- the runs' side ------------------------------------------------------------------

    def take(self, key: WarmKey, per_key: int) -> WarmSandbox | None:
        """A ready sandbox for `key`, or None (the caller starts one). Marks `key` as wanted."""
        if per_key <= 0:
            return None
        evicted: list[WarmSandbox] = []
        taken = None
        with self._cond:
            self._wanted[key] = per_key
            self._wanted.move_to_end(key)
            while len(self._wanted) > MAX_KEYS:
                old, _ = self._wanted.popitem(last=False)
                evicted += self._idle.pop(old, [])
            idle = self._idle.get(key, [])
            while idle and taken is None:
                candidate = idle.pop()
                if candidate.sandbox.wait(timeout=0):  # died while idle
                    evicted.append(candidate)
                else:
                    taken = candidate
            if taken is None:  # else the replacement starts when this run is over (refill): not
                self._wake()  # while the run it would compete with for the CPU is under way
        for sandbox in evicted:
            sandbox.discard()
        return taken

    def run_started(self) -> None:
        with self._cond:
            self._running += 1
            if self._busy_since is None:
                self._busy_since = time.monotonic()

    def run_finished(self) -> None:
        """A run's result is in: once no run is under way, refills go ahead."""
        with self._cond:
            self._running -= 1
            if self._running == 0:
                self._busy_since = None
                if self._wanted:
                    self._wake()

    def _deferred_until(self) -> float | None:
        """Call with the lock held: when refills may start, if not now."""
        if self._busy_since is None:
            return None
        until = self._busy_since + REFILL_DEFER_SECONDS
        return until if until > time.monotonic() else None

    def refill(self) -> None:
        """A run is over: start what the pool is short of (off the next verdict's path)."""
        with self._cond:
            if self._wanted:
                self._wake()

    def shrink(self) -> None:
        """Every uid slot is busy: give back the ones our idle sandboxes hold."""
        with self._cond:
            idle = [sandbox for sandboxes in self._idle.values() for sandbox in sandboxes]
            self._idle.clear()
        for sandbox in idle:
            sandbox.discard()

    def drain(self, timeout: float = 30.0) -> None:
        """Stop warming and kill every idle sandbox, once any being started are in (tests,
        shutdown); the next `take` starts warming again."""
        deadline = time.monotonic() + timeout
        with self._cond:
            self._wanted.clear()
            self._generation += 1
            while self._starting.total() and time.monotonic() < deadline:
                self._cond.wait(timeout=0.05)
        self.shrink()

    def idle_count(self) -> int:
        with self._cond:
            return sum(len(sandboxes) for sandboxes in self._idle.values())

    # --- the refill thread ------------------------------------------------------------

    def _wake(self) -> None:
        """Call with the lock held: the refill thread looks at what is short right away."""
        if self._thread is None or not self._thread.is_alive():
            if self._wakeup is None:
                self._wakeup = os.pipe()
                os.set_blocking(self._wakeup[1], False)
            self._thread = threading.Thread(
                target=self._refill_forever, args=(self._wakeup[0],), name="sandbox-warm", daemon=True
            )
            self._thread.start()
        with contextlib.suppress(BlockingIOError):  # a full pipe wakes it all the same
            os.write(self._wakeup[1], b"!")

    def _shortfall(self) -> list[WarmKey]:
        """Sandboxes to start now, most recently wanted keys first, within the slot budget."""
        if self._deferred_until() is not None:
            return []
        held = sum(len(sandboxes) for sandboxes in self._idle.values()) + self._starting.total()
        needed: list[WarmKey] = []
        for key in reversed(self._wanted):
            # Idle sandboxes hold uid slots: never more than half of them, so runs always find one.
            budget = key.cfg.uid_pool // 2 if key.cfg.uid_pool > 1 else MAX_KEYS * self._wanted[key]
            short = self._wanted[key] - len(self._idle.get(key, [])) - self._starting[key]
            while short > 0 and held + len(needed) < budget:
                needed.append(key)
                short -= 1
        return needed

    def _refill_forever(self, wakeup: int) -> None:
        """Start what is short as soon as it is short (each start overlaps the others) and file
        each sandbox as idle once it says `ready`; sandboxes that fail are discarded."""
        starting = self._in_flight
        paused_until = 0.0  # after a failed start: no uid slot, or the sandbox cannot start (logged)
        with selectors.DefaultSelector() as selector:
            selector.register(wakeup, selectors.EVENT_READ)
            while True:
                needed: list[WarmKey] = []
                deferred_until = None
                if time.monotonic() >= paused_until:
                    with self._cond:
                        needed = self._shortfall()
                        self._starting.update(needed)
                        generation = self._generation
                        deferred_until = self._deferred_until()
                failed: list[WarmKey] = []
                for key in needed:
                    try:
                        sandbox = _start(key)
                    except Exception:  # this thread must live on: its children die with it
                        logger.exception("pre-starting a sandbox failed")
                        sandbox = None
                    if sandbox is None:
                        failed.append(key)
                        continue
                    deadline = time.monotonic() + key.cfg.startup_ms / 1000
                    starting[sandbox.results_r] = _Starting(sandbox, generation, deadline)
                    selector.register(sandbox.results_r, selectors.EVENT_READ)
                if failed:
                    self._settle([], failed)
                    paused_until = time.monotonic() + 1.0  # do not spin
                deadlines = [entry.deadline for entry in starting.values()]
                if paused_until > time.monotonic():
                    deadlines.append(paused_until)
                if deferred_until is not None:
                    deadlines.append(deferred_until)
                timeout = max(0.0, min(deadlines) - time.monotonic()) if deadlines else None
                for event, _ in selector.select(timeout):
                    fd = event.fd
                    if fd == wakeup:
                        os.read(wakeup, 4096)
                        continue
                    entry = starting[fd]
                    chunk = os.read(fd, len(READY_LINE) - len(entry.received))
                    entry.received += chunk
                    if chunk and len(entry.received) < len(READY_LINE):
                        continue
                    selector.unregister(fd)
                    del starting[fd]
                    self._settle([entry])
                now = time.monotonic()
                for fd, entry in list(starting.items()):
                    if now >= entry.deadline:
                        selector.unregister(fd)
                        del starting[fd]
                        self._settle([entry])

    def _settle(self, entries: list[_Starting], failed: Sequence[WarmKey] = ()) -> None:
        """These starts are over: file the sandboxes that got ready, discard the rest."""
        ready, unwanted = [], []
        for entry in entries:
            pid = entry.sandbox.sandbox.interpreter_pid(timeout=1.0) if entry.received == READY_LINE else None
            if pid is None:
                logger.warning("a pre-started sandbox did not get ready (%s)", entry.sandbox.key.level)
                unwanted.append(entry.sandbox)
            else:
                entry.sandbox.pid = pid
                ready.append(entry)
        with self._cond:
            self._starting.subtract([entry.sandbox.key for entry in entries] + list(failed))
            self._starting += Counter()  # drop the keys at zero
            for entry in ready:
                if entry.generation == self._generation and entry.sandbox.key in self._wanted:
                    self._idle.setdefault(entry.sandbox.key, []).append(entry.sandbox)
                else:
                    unwanted.append(entry.sandbox)
            self._cond.notify_all()
        for sandbox in unwanted:
            sandbox.discard()

    def after_fork_in_child(self) -> None:
        """The parent's sandboxes are not ours: close our copies of their fds (a kept copy of a
        job pipe would keep its harness from ever seeing the end of its job) and start empty."""
        in_flight = [entry.sandbox for entry in self._in_flight.values()]
        for sandboxes in [*self._idle.values(), in_flight]:
            for sandbox in sandboxes:
                sandbox.close_fds()
                if sandbox.slot.lock_fd is not None:
                    with contextlib.suppress(OSError):
                        os.close(sandbox.slot.lock_fd)  # our copy only: the parent keeps its lock
        for fd in self._wakeup or ():
            with contextlib.suppress(OSError):
                os.close(fd)
        self._reset()


def _start(key: WarmKey) -> WarmSandbox | None:
    """Start one sandbox for `key`, not waiting for it; None when no uid slot is free or it fails."""
    slot = uid_slot_acquire(key.cfg, wait=False)
    if slot is None:
        return None
    job_r, job_w = os.pipe()
    with contextlib.suppress(OSError):  # room for a whole job: the run writes it without waiting on the harness
        fcntl.fcntl(job_w, fcntl.F_SETPIPE_SZ, WARM_JOB_BYTES)
    results_r, results_w = os.pipe()
    stderr_r, stderr_w = os.pipe()
    cfg = slot.cfg
    cgroup = RunCgroup.create()  # its limits are the run's, set when a run takes it
    rlimits = Rlimits(
        address_space=key.address_space,
        cpu_seconds=WARM_CPU_SECONDS,
        processes=cfg.max_processes,
        open_files=cfg.max_open_files,
        file_bytes=cfg.max_file_bytes,
    )
    try:
        sandbox = start_sandbox(
            key.level,
            cfg,
            list(key.argv),
            rlimits=rlimits,
            harness=(key.harness_name, key.harness),
            stdin=job_r,
            stdout=subprocess.DEVNULL,
            stderr=stderr_w,
            pass_fds=(results_w,),
            harness_args=(str(results_w), *key.harness_args),
            cgroup=cgroup,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        logger.error("could not pre-start a sandbox (%s): %s", key.level, exc)
        for fd in (job_r, job_w, results_r, results_w, stderr_r, stderr_w):
            os.close(fd)
        if cgroup is not None:
            cgroup.remove()
        slot.release()
        return None
    for fd in (job_r, results_w, stderr_w):
        os.close(fd)
    return WarmSandbox(key, slot, sandbox, 0, job_w, results_r, stderr_r)


_pool = WarmPool()
os.register_at_fork(after_in_child=_pool.after_fork_in_child)


def warm_pool() -> WarmPool:
    return _pool
