"""The trusted side of the fork helper (zygote_helper.py): Python runs start by a fork, not an
interpreter start-up.

Isolation level `zygote` (Python only; this process must be root, as for `unshare`): a clean
helper interpreter, started once per process with an empty environment before it could hold
anything secret, forks each run's sandbox. Each sandbox gets what the other levels give — new
mount, pid, network, ipc, uts and cgroup namespaces, a minimal read-only root with a private
scratch tmpfs, a real unprivileged uid of its own (its uid slot), no capabilities, no_new_privs,
a new session, an empty environment, the run's rlimits — and is pid 1 of its namespace. The job
reaches the sandbox through the fd we pass, never through the helper, so no sandbox forked later
can find an earlier run's inputs in the memory it inherits. Node cannot be forked once started
(V8's threads): JavaScript keeps bubblewrap.

A run costs a fork and its namespaces instead of bubblewrap plus an interpreter start, on the
verdict's path or, pre-started (warm.py), in the background.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import select
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

from grading.sandbox import seccomp
from grading.sandbox.cgroups import RunCgroup
from grading.sandbox.isolation import (
    SANDBOX_ENV,
    Rlimits,
    SandboxConfig,
    SandboxProcess,
    Usage,
    _interpreter_binds,
    _root_entries,
    hidden_dirs,
    signal_of,
)
from grading.sandbox.results import EncodedInputs

logger = logging.getLogger("co.sandbox")

_HELPER = Path(__file__).resolve().parent / "zygote_helper.py"
_HARNESS = Path(__file__).resolve().parent / "harness_python.py"
_START_SECONDS = 10.0
# Reads the helper, the harness and the seccomp filter from stdin (NUL after each of the first
# two: the filter, binary, comes last) and runs the helper.
_BOOTSTRAP = (
    "import sys;helper,_,rest=sys.stdin.buffer.read().partition(b'\\0');harness,_,bpf=rest.partition(b'\\0');"
    "exec(compile(helper,'/sandbox/zygote_helper.py','exec'),"
    "{'__name__':'__main__','HARNESS_SOURCE':harness,'SECCOMP_FILTER':bpf})"
)
FAILED_SETUP = 71  # the sandbox could not be built (zygote_helper.FAILED_SETUP)


class ZygoteUnavailable(OSError):
    pass


class ZygoteSandbox:
    """A run's sandbox forked by the helper; the same interface as isolation.SandboxProcess.

    Its pid 1 (the harness) is the helper's child, not ours: we hold its pidfd (no pid-reuse
    race: the helper opened it before it could reap it) and learn its end from the helper, which
    reaps it and reports the wait status and CPU times on the run's control socket."""

    level = "zygote"
    scratch = None
    cgroup: RunCgroup | None = None

    def __init__(self, pid: int, pidfd: int, control: socket.socket) -> None:
        self.pid = pid
        self._pidfd: int | None = pidfd
        self._control: socket.socket | None = control
        self.status: int | None = None
        self.rusage: Usage | None = None

    def open_pidfd(self) -> int:
        if self._pidfd is None:
            raise OSError("the sandbox is gone")
        return os.dup(self._pidfd)

    def interpreter_pid(self, timeout: float) -> int | None:
        return self.pid

    def foreground(self) -> None:
        """A pre-started sandbox was built at a low priority (zygote_helper._background):
        back to normal before its job, so the learner's code runs like any other run's."""
        os.setpriority(os.PRIO_PROCESS, self.pid, 0)
        try:
            autogroup = os.open(f"/proc/{self.pid}/autogroup", os.O_WRONLY)
        except FileNotFoundError:
            return  # no autogroups here
        try:
            os.write(autogroup, b"0")
        finally:
            os.close(autogroup)

    def kill(self, *, wait: bool = True) -> None:
        """Kill its pid 1, so the kernel kills its whole pid namespace; `wait`: until it is gone."""
        if self.status is not None:
            return
        if self._pidfd is not None:
            with contextlib.suppress(OSError):
                signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)
        if wait:
            self.reap()

    def reap(self) -> None:
        if not self.wait(timeout=5.0):
            self.kill(wait=False)
            self.wait(timeout=None)

    def wait(self, timeout: float | None) -> bool:
        """The sandbox's end, as the helper reports it (True), or False after `timeout`.
        When pid 1 of a pid namespace is reaped, everything in the namespace is gone."""
        if self.status is not None:
            return True
        control = self._control
        if control is None:
            return False
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not select.select([control], [], [], left)[0]:
                return False
            try:
                message = control.recv(256)
            except OSError:
                message = b""
            if message.startswith(b"exit "):
                status, utime, stime, maxrss = message.split()[1:5]
                self.status = int(status)
                self.rusage = Usage(float(utime), float(stime), int(maxrss))
                return True
            if not message:
                # The helper died without a word: its sandbox died with it (parent-death signal).
                self.status = signal.SIGKILL
                self.rusage = Usage(0.0, 0.0, 0)
                return True

    def death_signal(self) -> int | None:
        """The signal that ended it: its own wait status (no wrapper process in between)."""
        return signal_of(self.status)

    exit_code = SandboxProcess.exit_code

    def cleanup(self) -> None:
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None
        if self._control is not None:
            self._control.close()
            self._control = None
        if self.cgroup is not None:
            self.cgroup.remove()
            self.cgroup = None


@functools.lru_cache(maxsize=8)
def _host_layout(python: str) -> tuple[str, tuple[str, ...]]:
    """(the interpreter's real path, the root's links and binds as request fields): looked up once
    per interpreter, not per run (a dozen file-system calls)."""
    fields = [f"link={name}:{target}" for kind, name, target in _root_entries() if kind == "link"]
    fields += [f"bind={target}" for kind, _, target in _root_entries() if kind == "dir"]
    fields += [f"bind={directory}" for directory in _interpreter_binds(python)]
    return os.path.realpath(python), tuple(fields)


class Zygote:
    """This process's fork helper: started on first use, restarted when it died, never shared
    with a forked child of ours (the child starts its own)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen | None = None
        self._requests: socket.socket | None = None
        self._python: str | None = None

    def _start(self, python: str) -> None:
        program = seccomp.available_program()  # none (development only): the sandboxes go without
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            process = subprocess.Popen(  # our interpreter, our helper, nothing else
                [python, "-I", "-S", "-B", "-c", _BOOTSTRAP, str(theirs.fileno())],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                pass_fds=(theirs.fileno(),),
                env=dict(SANDBOX_ENV),
                cwd="/",
                start_new_session=True,
            )
        except OSError:
            ours.close()
            raise
        finally:
            theirs.close()
        assert process.stdin is not None and process.stdout is not None
        with contextlib.suppress(OSError):
            process.stdin.write(_HELPER.read_bytes() + b"\0" + _HARNESS.read_bytes() + b"\0" + (program or b""))
            process.stdin.close()
        ready = select.select([process.stdout], [], [], _START_SECONDS)[0] and process.stdout.readline() == b"ready\n"
        process.stdout.close()
        if not ready:
            process.kill()
            process.wait()
            ours.close()
            raise ZygoteUnavailable("the fork helper did not start")
        self._process, self._requests, self._python = process, ours, python

    def _stop(self) -> None:
        if self._requests is not None:
            self._requests.close()
        if self._process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(timeout=5)
            if self._process.returncode is None:
                self._process.kill()
                self._process.wait()
        self._process = self._requests = self._python = None

    def stop(self) -> None:
        with self._lock:
            self._stop()

    def _send(self, python: str, message: bytes, fds: list[int]) -> None:
        with self._lock:
            for attempt in range(2):
                if self._requests is None or self._python != python or self._process.poll() is not None:
                    self._stop()
                    self._start(python)
                try:
                    socket.send_fds(self._requests, [message], fds)
                    return
                except OSError as exc:  # it died: one fresh start
                    logger.warning("the sandbox fork helper is gone (%s); restarting it", exc)
                    self._stop()
                    if attempt:
                        raise ZygoteUnavailable(f"the fork helper does not take requests: {exc}") from exc

    def spawn(
        self,
        cfg: SandboxConfig,
        rlimits: Rlimits,
        *,
        stdin: int,
        results: int,
        stderr: int,
        harness_args: tuple[str, ...],
        cgroup: RunCgroup | None = None,
    ) -> ZygoteSandbox:
        """Fork a sandbox that runs the harness: the job on `stdin`, events to `results`; it
        enters `cgroup` before anything else."""
        assert cfg.python is not None
        fields = [f"uid={cfg.uid}", f"gid={cfg.gid}", f"scratch_bytes={cfg.scratch_bytes}"]
        limits = {
            "RLIMIT_CPU": rlimits.cpu_seconds,
            "RLIMIT_NPROC": rlimits.processes,
            "RLIMIT_NOFILE": rlimits.open_files,
            "RLIMIT_FSIZE": rlimits.file_bytes,
            "RLIMIT_STACK": rlimits.stack_bytes,
            "RLIMIT_CORE": 0,
        }
        if rlimits.address_space is not None:
            limits["RLIMIT_AS"] = rlimits.address_space
        fields += [f"{name}={value}" for name, value in limits.items()]
        fields += [f"arg={arg}" for arg in harness_args]
        fields += [f"cgroup={path}" for path in (cgroup.procs_files if cgroup is not None else ())]
        python, layout = _host_layout(cfg.python)
        fields += layout
        hidden = hidden_dirs(cfg.python)
        fields += [f"hide={directory}" for directory in hidden.hide] + [f"bind={directory}" for directory in hidden.rebind]
        if any(" " in field for field in fields):
            raise ValueError("fork helper fields must not contain spaces")
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self._send(python, " ".join(fields).encode(), [stdin, results, stderr, theirs.fileno()])
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        try:
            if not select.select([ours], [], [], cfg.startup_ms / 1000)[0]:
                raise ZygoteUnavailable("the fork helper did not answer in time")
            message, fds, _, _ = socket.recv_fds(ours, 256, 1)
            if not message.startswith(b"pid ") or len(fds) != 1:
                for fd in fds:
                    os.close(fd)
                raise ZygoteUnavailable(f"the fork helper failed: {message[:300].decode(errors='replace') or 'no answer'}")
        except BaseException:
            ours.close()
            raise
        return ZygoteSandbox(int(message.split()[1]), fds[0], ours)


_zygote = Zygote()


def _forget_in_child() -> None:
    """A forked child of ours (Celery's prefork pool) starts its own helper; the parent's stays
    the parent's (our copies of its socket and pipe are closed, the process is not touched)."""
    global _zygote
    requests = _zygote._requests
    if requests is not None:
        with contextlib.suppress(OSError):
            requests.close()
    _zygote = Zygote()


os.register_at_fork(after_in_child=_forget_in_child)


def zygote() -> Zygote:
    return _zygote


_PROBE_CODE = "def probe():\n    import os\n    return [os.getuid(), os.getgid(), os.getpid()]\n"


def zygote_probe(cfg: SandboxConfig) -> bool:
    """Fork one sandbox and run a tiny job in it: True when it runs as pid 1 of its own pid
    namespace under the real (host) sandbox uid and gid."""
    from grading.sandbox.runner import _encode_job, _framed

    job = _framed(
        *_encode_job(
            {
                "code": _PROBE_CODE,
                "entrypoint": "probe",
                "parameters": [],
                "time_limit_ms": 5000,
                "wall_limit_ms": 10000,
                "output_limit_bytes": 4096,
            },
            EncodedInputs.of([{}]),
            "python",
        )
    )
    job_fd = os.memfd_create("probe", os.MFD_CLOEXEC)
    results_r, results_w = os.pipe()
    sandbox = None
    try:
        os.write(job_fd, job)
        os.lseek(job_fd, 0, os.SEEK_SET)
        rlimits = Rlimits(address_space=None, cpu_seconds=10, processes=cfg.max_processes, open_files=64, file_bytes=1 << 20)
        sandbox = zygote().spawn(cfg, rlimits, stdin=job_fd, results=results_w, stderr=results_w, harness_args=())
        os.close(results_w)
        results_w = None
        output, deadline = b"", time.monotonic() + 20
        # Up to the harness's last report: after it the harness waits to be killed, not exits.
        while b'"e":"done"' not in output and select.select([results_r], [], [], max(0.0, deadline - time.monotonic()))[0]:
            chunk = os.read(results_r, 4096)
            if not chunk:
                break
            output += chunk
        expected = b'"value":[%d,%d,1]' % (cfg.uid, cfg.gid)
        ok = expected in output
    except (OSError, ValueError) as exc:
        logger.info("sandbox isolation zygote unavailable: %s", exc)
        ok = False
    finally:
        for fd in (job_fd, results_r, results_w):
            if fd is not None:
                os.close(fd)
        if sandbox is not None:
            sandbox.kill()
            sandbox.cleanup()
    if not ok:
        logger.info("sandbox isolation zygote unavailable")
    return ok
