"""run_in_sandbox: one sandbox process per run, all of the run's tests in it, in order.

The trusted side (this module) writes the job to the sandbox's stdin (a memfd: inputs only, never
expected outputs), then reads one JSON event per line from the results pipe. Everything it reads
is untrusted: at most one result per test index (the first wins), garbage is ignored, a line and
the whole stream are capped in bytes, values must be plain JSON. It enforces the deadlines the
harness cannot be trusted with: a start-up deadline, a per-test wall deadline counted from the
previous event (the harness's wall limit + a grace) and an overall one; on a deadline it kills
the sandbox's pid namespace, and the test in progress and all later ones are `time_limit`.

Per test: time_limit_ms is CPU time (the harness measures it, and interrupts at it in Python);
the wall limit is time_limit_ms + min(time_limit_ms, 1 s) (sleeping, blocking, a loaded
machine). A test past either limit is `time_limit`, even when it returned — and it ends the run:
the tests after it are `time_limit` too ("not run"), so a program that loops on every input
costs one time limit, not one per test. Other outcomes (errors, memory, output) do not stop it.

Figures: the learner's code runs in the harness's process and can write anything the harness
writes, so no figure is read from the event stream. A run's peak memory (and the CPU time that
tells a CPU kill from a memory kill) is the kernel's wait4 rusage of its whole process tree,
measured from outside the sandbox (isolation.Usage): the sandbox is ended, and its figures
collected, before the result is made. A test's time is the harness's CPU time capped by the wall
time this side saw it take. `done` only says that nothing more is coming.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import keyword
import logging
import math
import os
import re
import select
import signal
import subprocess
import time
from functools import cache
from pathlib import Path

from django.conf import settings

from grading.sandbox import seccomp
from grading.sandbox.cgroups import RunCgroup
from grading.sandbox.isolation import (
    Rlimits,
    SandboxConfig,
    SandboxProcess,
    UidSlot,
    current_config,
    language_level,
    reap_later,
    slot_wait_seconds,
    start_sandbox,
    uid_slot_acquire,
)
from grading.sandbox.results import (
    LANGUAGES,
    OUTCOMES,
    SANDBOX_BUSY,
    EncodedInputs,
    SandboxResult,
    SandboxRun,
    SandboxTestResult,
    SandboxUnavailable,
)
from grading.sandbox.warm import WARM_JOB_BYTES, WarmKey, WarmPool, warm_per_key, warm_pool

logger = logging.getLogger("co.sandbox")

MAX_CODE_BYTES = 64 * 1024
MAX_TESTS = 10_000
MAX_TIME_LIMIT_MS = 60_000
MIN_MEMORY_MB, MAX_MEMORY_MB = 16, 16_384
MAX_OUTPUT_LIMIT_BYTES = 64 * 1024 * 1024
GRACE_MS = 500  # the trusted side's slack over the harness's own wall limit, per test
CPU_GRACE_MS = 100  # the harness's own work around a test, over the test's CPU time limit
CPU_CHECK_MS = 50  # how often the run's CPU is looked at while a test runs (with a cgroup)
_LINE_OVERHEAD = 4096  # bytes of a result line besides the value
_STDERR_CAP = 16 * 1024
_HARNESS_DIR = Path(__file__).resolve().parent
_HARNESSES = {"python": "harness_python.py", "javascript": "harness_node.js"}
_JS_IDENTIFIER = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]*$")
_JS_RESERVED = re.compile(
    r"^(?:break|case|catch|class|const|continue|debugger|default|delete|do|else|enum|export|extends|false|finally|for"
    r"|function|if|implements|import|in|instanceof|interface|let|new|null|package|private|protected|public|return"
    r"|static|super|switch|this|throw|true|try|typeof|var|void|while|with|yield|await|arguments|eval|undefined)$"
)
_NODE_OOM = (b"heap out of memory", b"Reached heap limit", b"allocation failed", b"Allocation failed")


def wall_limit_ms(time_limit_ms: int) -> int:
    return time_limit_ms + min(time_limit_ms, 1000)


@cache
def _harness_source(language: str) -> bytes:
    return (_HARNESS_DIR / _HARNESSES[language]).read_bytes()


_COMPILE_HARNESS = (
    "import importlib.util,marshal,sys;"
    "code=compile(sys.stdin.buffer.read(),'/sandbox/harness_python.py','exec',dont_inherit=True);"
    "sys.stdout.buffer.write(importlib.util.MAGIC_NUMBER+bytes(12)+marshal.dumps(code))"
)


@cache
def _python_harness_pyc(python: str, stamp: tuple[int, int], source: bytes) -> bytes | None:
    """The Python harness compiled by the sandbox's own interpreter (run as a .pyc it skips the
    compile on start-up: nothing can be cached inside the read-only sandbox). Trusted code only."""
    try:
        done = subprocess.run(  # our interpreter, our harness source
            [python, "-I", "-S", "-c", _COMPILE_HARNESS], input=source, capture_output=True, timeout=30, check=True, env={}
        )
    except (OSError, subprocess.SubprocessError):
        logger.warning("could not precompile the Python harness with %s; using the source", python)
        return None
    return done.stdout or None


def _harness(language: str, cfg: SandboxConfig) -> tuple[str, bytes]:
    """(file name, contents) of the harness the sandbox runs."""
    source = _harness_source(language)
    if language == "python" and cfg.python:
        try:
            info = os.stat(cfg.python)
        except OSError:
            return _HARNESSES[language], source
        pyc = _python_harness_pyc(os.path.realpath(cfg.python), (info.st_mtime_ns, info.st_size), source)
        if pyc:
            return "harness_python.pyc", pyc
    return _HARNESSES[language], source


def _validate(run: SandboxRun) -> None:
    """The caller's side of the contract (ValueError when broken); the code itself is untrusted."""
    if run.language not in LANGUAGES:
        raise ValueError(f"language must be one of {LANGUAGES}, not {run.language!r}")
    if not isinstance(run.code, str) or len(run.code.encode("utf-8", "surrogatepass")) > MAX_CODE_BYTES:
        raise ValueError(f"code must be a string of at most {MAX_CODE_BYTES} bytes")
    entry = run.entrypoint
    valid = (
        (
            entry.isidentifier() and entry.isascii() and not keyword.iskeyword(entry)
            if run.language == "python"
            else bool(_JS_IDENTIFIER.match(entry)) and not _JS_RESERVED.match(entry)
        )
        if isinstance(entry, str)
        else False
    )
    if not valid:
        raise ValueError(f"entrypoint must be a {run.language} identifier, not {entry!r}")
    if not isinstance(run.parameters, list) or not all(isinstance(p, str) for p in run.parameters):
        raise ValueError("parameters must be a list of names")
    if isinstance(run.inputs, EncodedInputs):
        if run.inputs.count > MAX_TESTS:
            raise ValueError(f"inputs must be a list of at most {MAX_TESTS} dicts")
        if not set(run.parameters) <= run.inputs.keys:
            raise ValueError(f"every input must be a dict with every parameter ({', '.join(run.parameters)})")
    else:
        if not isinstance(run.inputs, list) or len(run.inputs) > MAX_TESTS:
            raise ValueError(f"inputs must be a list of at most {MAX_TESTS} dicts")
        for index, case in enumerate(run.inputs):
            if not isinstance(case, dict) or any(name not in case for name in run.parameters):
                raise ValueError(f"inputs[{index}] must be a dict with every parameter ({', '.join(run.parameters)})")
    for name, value, low, high in (
        ("time_limit_ms", run.time_limit_ms, 1, MAX_TIME_LIMIT_MS),
        ("memory_limit_mb", run.memory_limit_mb, MIN_MEMORY_MB, MAX_MEMORY_MB),
        ("output_limit_bytes", run.output_limit_bytes, 1, MAX_OUTPUT_LIMIT_BYTES),
        *([("wall_limit_ms", run.wall_limit_ms, 1, 30 * MAX_TIME_LIMIT_MS)] if run.wall_limit_ms is not None else []),
    ):
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise ValueError(f"{name} must be an integer from {low} to {high}")


def _interpreter(run: SandboxRun, cfg: SandboxConfig, job_bytes: int) -> tuple[list[str], int | None] | None:
    """(interpreter argv, RLIMIT_AS bytes) for the run's language; None when not installed."""
    mib = 1024 * 1024
    if run.language == "python":
        if not cfg.python or not os.path.exists(cfg.python):
            return None
        # Python honours RLIMIT_AS precisely (MemoryError): the limit plus the interpreter and the job.
        return [cfg.python, "-I", "-S", "-B"], (run.memory_limit_mb + 64) * mib + 8 * job_bytes
    if not cfg.node or not os.path.exists(cfg.node):
        return None
    # V8 reserves far more address space than it uses: its heap is bounded by flags, RLIMIT_AS is generous.
    heap_mb = run.memory_limit_mb + 16 + 4 * math.ceil(job_bytes / mib)
    flags = [
        f"--max-old-space-size={heap_mb}",
        f"--max-semi-space-size={max(1, min(16, run.memory_limit_mb // 16))}",
        "--stack-size=16384",  # KiB, within the 64 MiB RLIMIT_STACK (V8 must not think it has more than it has)
        "--v8-pool-size=1",
        "--no-warnings",
        "--no-deprecation",
    ]
    return [cfg.node, *flags], (2 * heap_mb + 1536) * mib + 8 * job_bytes


def _run_memory_bytes(run: SandboxRun, cfg: SandboxConfig, job_bytes: int) -> int:
    """The memory (cgroup) bound of a whole run: every process of it, its scratch tmpfs included.
    Above what one process may have (RLIMIT_AS, V8's heap), so a single process meets its own
    limit first (a clear memory_limit), and a run that forks cannot multiply it."""
    mib = 1024 * 1024
    if run.language == "python":
        process = (run.memory_limit_mb + 64) * mib
    else:  # the heap (as in _interpreter), plus what Node holds besides it
        process = (run.memory_limit_mb + 16 + 4 * math.ceil(job_bytes / mib) + 256) * mib
    return process + 8 * job_bytes + cfg.scratch_bytes


def _release(slot: UidSlot | None, pool: WarmPool) -> None:
    """A run's sandbox is gone: its uid slot is free, and the pool may start the next one."""
    if slot is not None:
        slot.release()
    pool.refill()


def _encode_job(fields: dict, inputs: EncodedInputs, language: str) -> tuple[bytes, bytes]:
    """(the job as JSON, its inputs in the harness's own format). Node reads the inputs inside the
    JSON object; Python gets them marshalled after it (see `_framed`)."""
    job = json.dumps(fields, allow_nan=False).encode("utf-8", "surrogatepass")
    if language == "python":
        return job, inputs.marshal
    return job[:-1] + b',"inputs":' + inputs.json + b"}", b""


def _framed(job: bytes, inputs: bytes = b"", **extra: object) -> bytes:
    """`<length of job>\\n<job>`, or `<length of job> <length of inputs>\\n<job><inputs>` (the
    Python harness), with `extra` fields added to the job's JSON object (no re-encoding: a job
    with large inputs is slow to encode)."""
    if extra:
        job = job[:-1] + b"," + json.dumps(extra, separators=(",", ":"))[1:].encode()
    if inputs:
        return b"%d %d\n" % (len(job), len(inputs)) + job + inputs
    return b"%d\n" % len(job) + job


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


class _Fds:
    """The run's file descriptors by name, each closed exactly once (fd numbers are reused at
    once by other threads: a second close could hit someone else's file)."""

    def __init__(self) -> None:
        self._fds: dict[str, int] = {}

    def add(self, name: str, fd: int) -> int:
        self._fds[name] = fd
        return fd

    def __getitem__(self, name: str) -> int:
        return self._fds[name]

    def close(self, name: str) -> None:
        fd = self._fds.pop(name, None)
        if fd is not None:
            os.close(fd)

    def close_all(self) -> None:
        for name in list(self._fds):
            with contextlib.suppress(OSError):
                self.close(name)


class _Run:
    def __init__(self, run: SandboxRun, cfg: SandboxConfig, level: str) -> None:
        self.run = run
        self.cfg = cfg
        self.level = level
        self.n = run.inputs.count if isinstance(run.inputs, EncodedInputs) else len(run.inputs)
        self.wall_ms = max(run.wall_limit_ms or 0, wall_limit_ms(run.time_limit_ms))
        self.results: list[SandboxTestResult | None] = [None] * self.n
        self.events = 0
        self.compiled = False
        self.syntax_error: str | None = None
        self.loaded = False
        self.load_error: tuple[str, str] | None = None
        self.current = 0
        self.mark = 0.0
        self.cgroup: RunCgroup | None = None  # the run's own (cgroups.py): its CPU counts per test
        self.cpu_mark = 0.0  # the cgroup's CPU seconds at `mark`
        # The cgroup's CPU seconds last seen before a wait for events that brought no result: a
        # moment before any result read since was written (see `cpu_overrun`).
        self.cpu_quiet = 0.0
        self.killed_for: str | None = None  # "time" | "output" | "start"
        self.killed_at = 0.0
        self.timed_out_at: int | None = None  # the first test that exceeded its time limit
        self.buffer = bytearray()
        self.discarding = False
        self.read_total = 0
        self.line_cap = run.output_limit_bytes + _LINE_OVERHEAD
        self.total_cap = (self.n + 2) * self.line_cap + 64 * 1024
        self.stderr = bytearray()
        self.done = False  # the harness (or the learner's code: it is the same process) said `done`
        self.warm = False  # ran in a pre-started sandbox
        self.job_out: memoryview | None = None  # what is left to write to a pre-started sandbox

    # --- the event stream --------------------------------------------------------------

    def feed(self, data: bytes, now: float) -> None:
        self.read_total += len(data)
        if self.read_total > self.total_cap:
            self.killed_for = "output"
            return
        self.buffer += data
        while True:
            newline = self.buffer.find(b"\n")
            if newline < 0:
                if len(self.buffer) > self.line_cap:
                    self.buffer.clear()
                    if not self.discarding:
                        self.discarding = True
                        self._oversized(now)
                return
            line = bytes(self.buffer[:newline])
            del self.buffer[: newline + 1]
            if self.discarding:
                self.discarding = False
                continue
            if len(line) > self.line_cap:
                self._oversized(now)
                continue
            self._event(line, now)

    def _oversized(self, now: float) -> None:
        """A line longer than any the harness writes: the test in progress exceeded the output limit."""
        if self.loaded and self.current < self.n:
            self._record(self.current, SandboxTestResult("output_limit", error="output limit exceeded"), now)

    def _record(self, index: int, result: SandboxTestResult, now: float) -> None:
        self.results[index] = result
        if result.outcome == "time_limit" and self.timed_out_at is None:
            # Time is what a run can waste: the first test over its limit ends the run.
            self.timed_out_at = index
        while self.current < self.n and self.results[self.current] is not None:
            self.current += 1
        self._mark(now)

    def _mark(self, now: float) -> None:
        """A test (or the program's loading) starts now: its wall and CPU clocks start here."""
        self.mark = now
        if self.cgroup is not None:
            self.cpu_mark = self.cgroup.cpu_seconds()

    def cpu_overrun(self) -> bool:
        """The run's processes together (the learner's children included, not only the harness)
        spent more CPU than a test may since the current test started.

        The figure is the CPU seen before the last wait for events that brought no result. This
        process reads results late when the machine is loaded, and by then the next test has
        spent CPU too: charging it to the test before turned a test at 90% of its limit into a
        time limit. CPU seen before a wait that ended with no result written was all the current
        test's (a lower bound of it): an overrun it shows is the program's."""
        if self.cgroup is None:
            return False
        return (self.cpu_quiet - self.cpu_mark) * 1000 > self.run.time_limit_ms + CPU_GRACE_MS

    def _event(self, line: bytes, now: float) -> None:
        try:
            event = json.loads(line, parse_constant=_reject_constant)
        except (ValueError, RecursionError):
            return
        if not isinstance(event, dict):
            return
        kind = event.get("e")
        if kind == "ready":  # the harness started (what a pre-started sandbox waits with)
            return
        first = self.events == 0
        self.events += 1
        if kind == "syntax_error" and first:
            self.syntax_error = str(event.get("error") or "SyntaxError")[:1000]
        elif kind == "compiled" and first:
            self.compiled = True
            self._mark(now)
        elif kind == "loaded" and self.compiled and not self.loaded and self.load_error is None:
            self.loaded = True
            self._mark(now)
        elif kind == "load_error" and self.compiled and not self.loaded and self.load_error is None:
            outcome = event.get("outcome")
            if outcome in OUTCOMES and outcome != "ok":
                self.load_error = (outcome, str(event.get("error") or outcome)[:1000])
        elif kind == "result" and self.loaded:
            self._result(event, now)
        elif kind == "done":
            # Only "nothing more is coming": no figure is read from it (nothing written here can
            # set one), and results still missing are missing whatever it says.
            self.done = True

    def _result(self, event: dict, now: float) -> None:
        index, outcome = event.get("i"), event.get("outcome")
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < self.n or self.results[index] is not None:
            return
        if outcome not in OUTCOMES or (outcome == "ok" and "value" not in event):
            return
        time_ms = event.get("time_ms")
        time_ms = min(max(time_ms, 0), 10**7) if isinstance(time_ms, int) and not isinstance(time_ms, bool) else 0
        # The harness's CPU time, but never more than the wall time this side saw the test take
        # (a result written before its test started took none): writing cannot raise a figure.
        time_ms = min(time_ms, int((now - self.mark) * 1000)) if index == self.current else 0
        overran = (now - self.mark) * 1000 > self.wall_ms + GRACE_MS or (outcome == "ok" and self.cpu_overrun())
        if index == self.current and overran:
            # The harness's clocks are the learner's to tamper with, and see only its own process
            # (a test that failed otherwise keeps its outcome: the run's CPU cannot turn it into a pass).
            result = SandboxTestResult("time_limit", error="time limit exceeded", time_ms=time_ms)
        elif outcome == "ok":
            result = SandboxTestResult("ok", value=event["value"], time_ms=time_ms)
        else:
            result = SandboxTestResult(outcome, error=str(event.get("error") or outcome)[:1000], time_ms=time_ms)
        self._record(index, result, now)

    @property
    def complete(self) -> bool:
        """The harness reported all there is to report: the run's result needs nothing more."""
        return (
            self.syntax_error is not None
            or self.load_error is not None
            or (self.loaded and self.current >= self.n and self.done and self.timed_out_at is None)
        )

    @property
    def finished(self) -> bool:
        return (
            self.syntax_error is not None
            or self.load_error is not None
            or (self.loaded and self.current >= self.n and self.done)
            or (self.events > 0 and not self.compiled)
            or self.timed_out_at is not None
        )

    # --- deadlines ----------------------------------------------------------------------

    def deadline(self, started: float, startup_s: float) -> float:
        budget = (self.wall_ms + GRACE_MS) / 1000
        overall = started + startup_s + (self.n + 1) * budget
        if not self.compiled:
            return min(overall, started + startup_s)
        return min(overall, self.mark + budget)

    # --- the run ------------------------------------------------------------------------

    def execute(self, *, allow_warm: bool) -> SandboxResult:
        """Run in a pre-started sandbox when one is ready (and allowed), else start one."""
        run, base = self.run, self.cfg
        started = time.monotonic()
        fields = {
            "entrypoint": run.entrypoint,
            "parameters": run.parameters,
            "time_limit_ms": run.time_limit_ms,
            "wall_limit_ms": self.wall_ms,
            "cpu_judged": run.wall_limit_ms is not None,
            "output_limit_bytes": run.output_limit_bytes,
            "code": run.code,
        }
        # A problem's tests come encoded with its bundle (EncodedInputs); other inputs are encoded here.
        inputs = run.inputs if isinstance(run.inputs, EncodedInputs) else EncodedInputs.of(run.inputs)
        job, job_inputs = _encode_job(fields, inputs, run.language)
        job_bytes = len(job) + len(job_inputs)
        interpreter = _interpreter(run, base, job_bytes)
        if interpreter is None:
            return self._error(f"{run.language} is not available on this server", started)
        argv, address_space = interpreter
        startup_s = base.startup_ms / 1000 + job_bytes / (10 * 1024 * 1024)
        budget_s = startup_s + (self.n + 1) * (self.wall_ms + GRACE_MS) / 1000
        cpu_seconds = math.ceil(budget_s) + 1
        harness = _harness(run.language, base)
        pool = warm_pool()
        warm = None
        if allow_warm and job_bytes <= WARM_JOB_BYTES:
            warm = pool.take(self._warm_key(argv, harness), warm_per_key(self.level))
            memory_bytes = _run_memory_bytes(run, base, job_bytes)
            if warm is not None and not warm.limit(
                address_space=address_space, cpu_seconds=cpu_seconds, memory_bytes=memory_bytes, processes=base.max_processes
            ):
                warm.discard()
                warm = None
        if warm is not None and warm.limits_itself:
            framed = _framed(job, job_inputs, rlimits={"address_space": address_space, "cpu_seconds": cpu_seconds})
        else:
            framed = _framed(job, job_inputs)
        fds = _Fds()
        sandbox: SandboxProcess | None = None
        slot: UidSlot | None = None
        try:
            if warm is not None:
                self.warm = True
                slot, sandbox, self.cfg = warm.slot, warm.sandbox, warm.slot.cfg
                self.cgroup = sandbox.cgroup
                fds.add("job_w", warm.job_w)
                fds.add("results_r", warm.results_r)
                fds.add("stderr_r", warm.stderr_r)
                self.job_out = memoryview(framed)
            else:
                slot = uid_slot_acquire(base, wait=True, on_busy=pool.shrink)
                if slot is None:
                    logger.warning("no sandbox uid slot came free within %ss", slot_wait_seconds())
                    return self._error(SANDBOX_BUSY, started)
                self.cfg = slot.cfg
                sandbox = self._start_cold(fds, framed, argv, address_space, cpu_seconds, harness)
                if sandbox is None:
                    return self._error("the sandbox could not be started", started)
            self._loop(sandbox, fds, started, startup_s)
            # Its figures are the kernel's, for the whole run, known once it is gone: end it now.
            sandbox.kill()
            return self._result_of(sandbox, started)
        finally:
            if sandbox is not None:
                # Killed now; reaped (then its uid slot freed) in the background.
                reap_later(sandbox, then=functools.partial(_release, slot, pool))
            else:
                _release(slot, pool)
            fds.close_all()

    def _warm_key(self, argv: list[str], harness: tuple[str, bytes]) -> WarmKey:
        """Python's command line is the same for every run: one key, started with the largest
        address space any run may get. Node's heap flags follow the run's memory limit."""
        run = self.run
        if run.language == "python":
            run = dataclasses.replace(run, memory_limit_mb=MAX_MEMORY_MB)
        ceiling = _interpreter(run, self.cfg, WARM_JOB_BYTES)
        assert ceiling is not None
        extra = ("--self-limit",) if run.language == "python" else ()
        return WarmKey(self.level, self.cfg, tuple(argv), harness[0], harness[1], extra, ceiling[1])

    def _start_cold(
        self,
        fds: _Fds,
        job: bytes,
        argv: list[str],
        address_space: int | None,
        cpu_seconds: int,
        harness: tuple[str, bytes],
    ) -> SandboxProcess | None:
        """Start a sandbox for this run, its job in a memfd as stdin."""
        cfg = self.cfg
        cgroup = RunCgroup.create()
        if cgroup is not None:
            try:
                cgroup.limit(memory_bytes=_run_memory_bytes(self.run, cfg, len(job)), processes=cfg.max_processes)
            except OSError as exc:
                logger.warning("could not limit a sandbox cgroup: %s", exc)
                cgroup.remove()
                cgroup = None
        rlimits = Rlimits(
            address_space=address_space,
            cpu_seconds=cpu_seconds,
            processes=cfg.max_processes,
            open_files=cfg.max_open_files,
            file_bytes=cfg.max_file_bytes,
        )
        job_fd = fds.add("job", os.memfd_create("job", os.MFD_CLOEXEC))
        view = memoryview(job)
        while view:
            view = view[os.write(job_fd, view) :]
        os.lseek(job_fd, 0, os.SEEK_SET)
        for pipe in ("results", "stderr"):
            read_end, write_end = os.pipe()
            fds.add(f"{pipe}_r", read_end)
            fds.add(f"{pipe}_w", write_end)
        results_w, stderr_w = fds["results_w"], fds["stderr_w"]
        try:
            sandbox = start_sandbox(
                self.level,
                cfg,
                argv,
                rlimits=rlimits,
                harness=harness,
                stdin=job_fd,
                stdout=subprocess.DEVNULL,
                stderr=stderr_w,
                pass_fds=(results_w,),
                harness_args=(str(results_w),),
                cgroup=cgroup,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            logger.error("sandbox could not be started (%s): %s", self.level, exc)
            if cgroup is not None:
                cgroup.remove()
            return None
        self.cgroup = cgroup
        fds.close("results_w")
        fds.close("stderr_w")
        fds.close("job")
        return sandbox

    def _loop(self, sandbox: SandboxProcess, fds: _Fds, started: float, startup_s: float) -> None:
        results_r, stderr_r = fds["results_r"], fds["stderr_r"]
        os.set_blocking(results_r, False)
        os.set_blocking(stderr_r, False)
        try:
            pidfd = fds.add("pidfd", sandbox.open_pidfd())
        except OSError:
            pidfd = None
        poller = select.poll()
        poller.register(results_r, select.POLLIN)
        poller.register(stderr_r, select.POLLIN)
        job_w = self._write_job(fds)
        if job_w is not None:
            poller.register(job_w, select.POLLOUT)
        if pidfd is not None:
            poller.register(pidfd, select.POLLIN)
        results_open = True
        exited = False
        finished_at: float | None = None
        while results_open or not exited:
            now = time.monotonic()
            if self.killed_for is not None or self.complete:
                break
            if self.finished and finished_at is None:
                finished_at = now
            if exited and finished_at is None and not results_open:
                break
            deadline = self.deadline(started, startup_s)
            if finished_at is not None:
                # Everything is in: the process has a moment to exit, then it is killed
                # (at once when a test ran out of time: the rest are not run).
                deadline = finished_at + (0.0 if self.timed_out_at is not None else 1.0)
                if exited:
                    deadline = min(deadline, finished_at + 0.1)
            if now >= deadline:
                if finished_at is None:
                    self.killed_for = "time" if self.compiled else "start"
                    self.killed_at = now
                break
            cpu_before_wait = self.cgroup.cpu_seconds() if self.cgroup is not None else 0.0
            timeout_ms = max(1, math.ceil((deadline - now) * 1000))
            if pidfd is None:
                timeout_ms = min(timeout_ms, 20)
            if self.cgroup is not None:
                timeout_ms = min(timeout_ms, CPU_CHECK_MS)
            ready = poller.poll(timeout_ms)
            now = time.monotonic()
            if all(fd != results_r for fd, _mask in ready):
                self.cpu_quiet = cpu_before_wait
                if self.compiled and finished_at is None and self.cpu_overrun():
                    self.killed_for, self.killed_at = "time", now
                    break
            for fd, _mask in ready:
                if fd == job_w:
                    if self._write_job(fds) is None:
                        poller.unregister(fd)
                        job_w = None
                    continue
                if fd == pidfd:
                    exited = True
                    poller.unregister(pidfd)
                    continue
                try:
                    data = os.read(fd, 1 << 16)
                except BlockingIOError:
                    continue
                if fd == results_r:
                    if data:
                        self.feed(data, now)
                    else:
                        poller.unregister(fd)
                        results_open = False
                elif data and len(self.stderr) < _STDERR_CAP:
                    self.stderr += data[: _STDERR_CAP - len(self.stderr)]
                else:
                    # End of stderr, or enough of it: stop reading (later writes fail with EPIPE).
                    poller.unregister(fd)
                    fds.close("stderr_r")
            if pidfd is None and not exited and sandbox.wait(timeout=0):
                exited = True
        if self.complete:
            return  # everything is in: the caller ends the sandbox for its figures
        sandbox.kill()
        # Lines the harness wrote before it ended still count (the namespace is gone: EOF comes).
        if self.killed_for != "output" and results_open:
            self._drain(results_r, time.monotonic())

    def _write_job(self, fds: _Fds) -> int | None:
        """A pre-started sandbox gets its job through a pipe: write what fits without blocking;
        at the end close it (the harness reads to EOF). Returns the fd while more is to come."""
        if self.job_out is None:
            return None
        fd = fds["job_w"]
        os.set_blocking(fd, False)
        try:
            while self.job_out:
                self.job_out = self.job_out[os.write(fd, self.job_out) :]
        except BlockingIOError:
            return fd
        except OSError:  # the sandbox is gone (EPIPE): the run reports it
            pass
        self.job_out = None
        fds.close("job_w")
        return None

    def _drain(self, fd: int, now: float) -> None:
        with contextlib.suppress(OSError):
            while self.killed_for != "output":
                data = os.read(fd, 1 << 16)
                if not data:
                    break
                self.feed(data, now)

    # --- the verdict --------------------------------------------------------------------

    def _error(self, reason: str, started: float, sandbox: SandboxProcess | None = None) -> SandboxResult:
        return SandboxResult(
            status="error",
            tests=[],
            error=reason,
            wall_ms=int((time.monotonic() - started) * 1000),
            peak_memory_kb=self._peak(sandbox),
            isolation=self.level,
            warm=self.warm,
        )

    def _peak(self, sandbox: SandboxProcess | None) -> int:
        """The run's peak memory in KiB as the trusted side measured it from outside the sandbox
        (the wait4 rusage of its whole process tree: see isolation.Usage); 0 when unknown.
        Nothing the sandbox writes sets it."""
        if sandbox is None or sandbox.rusage is None:
            return 0
        return min(max(0, int(sandbox.rusage.ru_maxrss)), (MAX_MEMORY_MB + 4096) * 1024)

    def _stop_cause(self, sandbox: SandboxProcess) -> tuple[str, str]:
        """(outcome, error) for the test that was running when the program stopped."""
        if self.killed_for == "time":
            return "time_limit", "time limit exceeded"
        if self.killed_for == "output":
            return "output_limit", "output limit exceeded"
        number = sandbox.death_signal()
        cpu = sandbox.rusage.ru_utime + sandbox.rusage.ru_stime if sandbox.rusage is not None else 0.0
        if self.run.language == "javascript" and (
            number in (signal.SIGABRT, signal.SIGTRAP) or any(marker in self.stderr for marker in _NODE_OOM)
        ):
            return "memory_limit", "memory limit exceeded"
        if number == signal.SIGXCPU:
            return "time_limit", "time limit exceeded (CPU)"
        if number == signal.SIGKILL:
            limit = self.run.time_limit_ms / 1000 * (self.n + 1)
            if cpu >= limit:
                return "time_limit", "time limit exceeded (CPU)"
            return "memory_limit", "the program was killed (out of memory)"
        if number is not None:
            return "runtime_error", f"the program crashed ({_signal_name(number)})"
        code = sandbox.exit_code()
        if code == 70:
            return "runtime_error", "the program stopped during the test"
        return "runtime_error", f"the program exited during the test (exit code {code})"

    def _result_of(self, sandbox: SandboxProcess, started: float) -> SandboxResult:
        wall = int((time.monotonic() - started) * 1000)
        peak = self._peak(sandbox)

        def done(status: str, tests: list[SandboxTestResult], error: str | None = None) -> SandboxResult:
            return SandboxResult(status, tests, error, wall, peak, self.level, self.warm)

        if self.syntax_error is not None:
            return done("syntax_error", [], self.syntax_error)
        if not self.compiled:
            if self.killed_for == "start":
                logger.warning("sandbox did not start in time (%s)", self.level)
                return self._error("the sandbox did not start in time", started, sandbox)
            logger.warning(
                "sandbox failed to start (%s): status %s, stderr %r",
                self.level,
                sandbox.status,
                bytes(self.stderr[-2000:]),
            )
            return self._error(f"the sandbox failed to start (exit status {sandbox.exit_code()})", started, sandbox)
        if self.load_error is not None:
            outcome, error = self.load_error
            return done("completed", [SandboxTestResult(outcome, error=error) for _ in range(self.n)])
        if not self.loaded:
            outcome, error = self._stop_cause(sandbox)
            return done(
                "completed", [SandboxTestResult(outcome, error=f"{error} (while loading the program)") for _ in range(self.n)]
            )
        tests: list[SandboxTestResult] = []
        stopped_at: int | None = None
        cause = ("runtime_error", "")
        for index, result in enumerate(self.results):
            if result is not None and (self.timed_out_at is None or index <= self.timed_out_at):
                tests.append(result)
            elif self.timed_out_at is not None:
                tests.append(
                    SandboxTestResult("time_limit", error=f"not run: test {self.timed_out_at} exceeded the time limit", ran=False)
                )
            elif stopped_at is None:
                stopped_at = index
                cause = self._stop_cause(sandbox)
                spent = int((self.killed_at - self.mark) * 1000) if self.killed_for == "time" else 0
                tests.append(SandboxTestResult(cause[0], error=cause[1], time_ms=spent))
                if cause[0] == "time_limit":
                    self.timed_out_at = index
            else:
                tests.append(
                    SandboxTestResult(cause[0], error=f"not run: the program was stopped during test {stopped_at}", ran=False)
                )
        return done("completed", tests)


def run_in_sandbox(run: SandboxRun) -> SandboxResult:
    """Run the learner's code on every input, in one fresh sandboxed process.

    Raises SandboxUnavailable when this machine has no namespace isolation and this is
    production (fail closed); ValueError when `run` breaks the contract (see _validate)."""
    _validate(run)
    level = language_level(run.language)
    if level == "none" and getattr(settings, "IS_PRODUCTION", True):
        raise SandboxUnavailable(
            "no namespace isolation (install bubblewrap, or run the worker as root for the unshare fallback)"
        )
    if level != "none" and getattr(settings, "IS_PRODUCTION", True) and seccomp.available_program() is None:
        raise SandboxUnavailable("no seccomp filter for the sandbox (install libseccomp2 and the pyseccomp package)")
    cfg = current_config()
    pool = warm_pool()
    pool.run_started()  # the pool refills once no run is under way
    try:
        attempt = _Run(run, cfg, level)
        result = attempt.execute(allow_warm=True)
        if attempt.warm and attempt.events == 0 and result.status == "error":
            # The pre-started sandbox failed before it said anything about the job: start a fresh one.
            logger.warning("a pre-started sandbox failed (%s); running in a fresh one", result.error)
            result = _Run(run, cfg, level).execute(allow_warm=False)
    finally:
        pool.run_finished()
    return result


_WARM_UP_CODE = {"python": "def solve(a):\n    return a\n", "javascript": "function solve(a) {\n  return a;\n}\n"}


def sandbox_warm_up(*, memory_limit_mb: int, languages: tuple[str, ...] = ("python", "javascript")) -> None:
    """One tiny run per language when a grading process starts: the isolation probes and the fork
    helper start then, and the pool starts pre-starting sandboxes for that memory limit, instead
    of all of it happening on a learner's first verdict. Failures are logged, never raised."""
    cfg = current_config()
    for language in languages:
        if (cfg.node if language == "javascript" else cfg.python) is None:
            continue
        try:
            run_in_sandbox(SandboxRun(language, _WARM_UP_CODE[language], "solve", ["a"], [{"a": 1}], 1000, memory_limit_mb))
        except (SandboxUnavailable, OSError) as exc:
            logger.warning("could not warm up the %s sandbox: %s", language, exc)
